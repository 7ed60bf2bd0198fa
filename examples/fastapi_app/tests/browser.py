"""A browser for the tests: follows redirects, keeps cookies, fills in and submits forms.

It reads pages with the standard library's HTML parser, the way a browser would see them,
so the tests submit exactly the fields the pages carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx2


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, list[str]] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(found.get("action", "")))
        elif self.forms and tag == "input" and "name" in found:
            self.forms[-1].fields[found["name"]] = found.get("value", "")
        elif self.forms and tag == "button" and "name" in found:
            self.forms[-1].buttons.setdefault(found["name"], []).append(found.get("value", ""))


def form_of(page: str) -> Form:
    """The page's only form."""
    parser = _Forms()
    parser.feed(page)
    assert len(parser.forms) == 1, f"expected one form in: {page[:600]}"
    return parser.forms[0]


async def submit(http: httpx2.AsyncClient, page: httpx2.Response, **values: str) -> httpx2.Response:
    """Submit the page's form with `values` over its own fields, as its button would."""
    form = form_of(page.text)
    return await http.post(
        urljoin(str(page.url), form.action or str(page.url)), data={**form.fields, **values}
    )


async def follow(http: httpx2.AsyncClient, response: httpx2.Response, *, stop_at: str) -> httpx2.Response:
    """Follow redirects until a page, or a redirect to a URL starting with `stop_at`."""
    for _ in range(10):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(stop_at):
            return response
        response = await http.get(location)
    raise AssertionError("too many redirects")
