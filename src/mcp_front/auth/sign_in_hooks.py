"""How other parts of the gateway take part in a sign-in without the authorization server
knowing them: the gateway's own pages sign people in through the same identity-provider
callback, and may show a page before the browser goes back to an MCP client."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.transactions import AuthorizationTransaction

__all__ = ["AfterSignIn", "SignInFlow"]


class SignInFlow(Protocol):
    """Another sign-in that comes back through the identity provider's callback (the one
    URL registered with it), such as a person signing in to the gateway's own pages."""

    async def finish(self, request: Request, state: str) -> Response | None:
        """The answer for a callback carrying `state`, if this flow started it; else None."""
        ...


class AfterSignIn(Protocol):
    """Called when an MCP client's sign-in is complete, its code issued."""

    async def before_returning(
        self, request: Request, transaction: AuthorizationTransaction, back_to_client: Response
    ) -> Response:
        """What the browser gets instead of `back_to_client` (the redirect carrying the code):
        that response itself, changed (a cookie set), or a page that leads to it."""
        ...
