"""How an aggregate names its members' tools, prompts and resources, reversibly.

Tools and prompts are `<member><delimiter><name>` ("linear.create_issue"). Resource URIs
get a prefix that is itself a valid URI whatever the member's name or the original URI:
`mcp-front://<member>/<original>` ("mcp-front://files/file:///tmp/a.txt"). Both forms are
prefixes, so a resource template keeps its variables and the URI a client expands
from it maps back to its member by the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

URI_SCHEME: Final = "mcp-front"


class Namespace:
    """The names of one aggregate's members, and how their items are qualified."""

    def __init__(self, members: Iterable[str], delimiter: str) -> None:
        self.delimiter = delimiter
        # Longest first: with "-" as the delimiter, "db-replica-query" belongs to a member
        # "db-replica" before a member "db".
        self.members = tuple(sorted(members, key=len, reverse=True))

    def qualify(self, member: str, name: str) -> str:
        return f"{member}{self.delimiter}{name}"

    def resolve(self, qualified: str) -> tuple[str, str] | None:
        """The member and its own name for a qualified name; `None` if no member has it."""
        for member in self.members:
            prefix = member + self.delimiter
            if qualified.startswith(prefix) and len(qualified) > len(prefix):
                return member, qualified[len(prefix) :]
        return None

    @staticmethod
    def qualify_uri(member: str, uri: str) -> str:
        return f"{URI_SCHEME}://{member}/{uri}"

    def resolve_uri(self, qualified: str) -> tuple[str, str] | None:
        """The member and its own URI for a qualified URI; `None` if no member has it."""
        scheme = f"{URI_SCHEME}://"
        if not qualified.startswith(scheme):
            return None
        member, slash, uri = qualified[len(scheme) :].partition("/")
        if not slash or not uri or member not in self.members:
            return None
        return member, uri

    def qualify_result(self, member: str, result: dict[str, Any]) -> dict[str, Any]:
        """A member's result with every resource URI in it (read contents, resource links
        and embedded resources) in the aggregate's form, so the client can read them back."""
        changed: dict[str, Any] = {}
        for key in ("contents", "content", "messages"):
            value = result.get(key)
            if isinstance(value, list):
                changed[key] = [self._qualified_content(member, item) for item in value]
        return {**result, **changed} if changed else result

    def _qualified_content(self, member: str, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        if isinstance(item.get("content"), dict):  # a prompt message
            return {**item, "content": self._qualified_content(member, item["content"])}
        if isinstance(item.get("resource"), dict):  # an embedded resource
            return {**item, "resource": self._qualified_content(member, item["resource"])}
        if isinstance(item.get("uri"), str):  # read contents, or a resource link
            return {**item, "uri": self.qualify_uri(member, item["uri"])}
        return item
