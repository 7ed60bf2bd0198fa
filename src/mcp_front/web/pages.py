"""Rendering the gateway's HTML pages.

Templates ship inside the package (``mcp_front/web/templates``) and are always autoescaped,
so a client's `client_name` or a user's email can never become markup. Every page carries
the same headers: a Content-Security-Policy that allows nothing but the page's own inline
style (by nonce) and form posts to the gateway (plus the origins a form's answer redirects
to, since browsers apply `form-action` to that redirect too), no framing, no referrer and
no caching.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

__all__ = [
    "environment",
    "error_page",
    "form_action_source",
    "host_label",
    "render",
    "security_headers",
    "shown_time",
]

_SOURCE = re.compile(r"[A-Za-z0-9.:\[\]/+-]+")

environment = Environment(
    loader=PackageLoader("mcp_front.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
"""The Jinja2 environment of the gateway's pages (autoescape on for every template)."""


def form_action_source(uri: str) -> str | None:
    """The CSP source that allows a form's answer to redirect to `uri`, or None if unusable.

    The origin for http(s) (``https://app.example``); the scheme for any other
    (``claude:``), which is all a CSP source can say about a private-use scheme.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            return None
        source = f"{scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    elif scheme:
        source = f"{scheme}:"
    else:
        return None
    return source if _SOURCE.fullmatch(source) else None


def security_headers(nonce: str, form_targets: Iterable[str] = ()) -> dict[str, str]:
    """The headers every page is served with."""
    form_action = " ".join(["'self'", *dict.fromkeys(form_targets)])
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def render(
    template: str, *, status_code: int = 200, form_targets: Iterable[str] = (), **context: Any
) -> HTMLResponse:
    """`template` rendered with `context`, served with the security headers.

    `form_targets` are CSP sources (see `form_action_source`) a form on the page may end up
    redirecting to. The template gets `csp_nonce` for its ``<style>`` element.
    """
    nonce = secrets.token_urlsafe(16)
    html = environment.get_template(template).render(csp_nonce=nonce, **context)
    return HTMLResponse(html, status_code=status_code, headers=security_headers(nonce, form_targets))


def error_page(
    title: str, message: str, *, status_code: int = 400, back_to: str | None = None
) -> HTMLResponse:
    """A page telling a person what went wrong and what to do; never a redirect.

    `back_to` is where a link on the page returns the person to their application (with the
    error for it), showing the host it leads to: following it is their choice.
    """
    back_host = host_label(back_to) if back_to is not None else None
    return render(
        "error.html",
        status_code=status_code,
        form_targets=(),
        title=title,
        message=message,
        back_to=back_to,
        back_host=back_host,
    )


def shown_time(timestamp: float) -> str:
    """A moment as the pages show it: to the minute, in UTC, said so."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def host_label(uri: str) -> str:
    """How a person recognises where `uri` leads: its host (with a port other than the
    scheme's own), or its scheme for an application link."""
    parts = urlsplit(uri)
    if parts.scheme.lower() in ("http", "https"):
        return parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme}: (an application on this device)"
