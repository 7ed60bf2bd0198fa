"""What every form of the gateway's pages shares: reading it, bounded, and the answer to
one that did not come from the page it claims to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.account.browser_sessions import BrowserSession, BrowserSessions
from mcp_front.auth.errors import OAuthError
from mcp_front.auth.forms import read_urlencoded
from mcp_front.web.pages import error_page

__all__ = ["MAX_FORM_BYTES", "checked_post", "forbidden", "read_form"]

MAX_FORM_BYTES = 16 * 1024


async def read_form(request: Request) -> dict[str, str] | Response:
    """The form's fields (the last of a repeated one), or the page saying why it cannot be read."""
    try:
        fields = await read_urlencoded(request, max_body=MAX_FORM_BYTES)
    except OAuthError as error:
        return error_page("This form could not be read", error.description, status_code=error.status)
    return dict(fields)


def forbidden() -> Response:
    """A POST without the session's CSRF token: 403, and nothing done."""
    return error_page(
        "This form has expired",
        "The page you used is out of date or was not made by the gateway. Reload it and try again.",
        status_code=403,
    )


async def checked_post(
    request: Request, sessions: BrowserSessions
) -> tuple[BrowserSession, dict[str, str]] | Response:
    """The signed-in session and the fields of a POST that carries its CSRF token, or the
    page that refuses it (403): nothing a page does happens for a forged or stale form."""
    fields = await read_form(request)
    if isinstance(fields, Response):
        return fields
    session = await sessions.current(request)
    if session is None:
        return error_page("You are signed out", "Sign in again, then try again.", status_code=403)
    if not session.csrf_matches(fields.get("csrf_token")):
        return forbidden()
    return session, fields
