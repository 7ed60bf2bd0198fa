"""Checked strings the models share: URLs, origins, listen addresses, names."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Final
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator

from mcp_front.config.errors import config_value_error

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def _split_http_url(value: str, *, example: str) -> SplitResult:
    """`value` split into parts, if it is an absolute http(s) URL with a host and no fragment."""
    fix = f'for example "{example}"'
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise config_value_error("url", "is not a valid URL", fix=fix, show_input=True) from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise config_value_error(
            "url", "must be an absolute http:// or https:// URL", fix=fix, show_input=True
        )
    if parts.fragment:
        raise config_value_error("url", "must not have a #fragment", fix=fix, show_input=True)
    return parts


def check_http_url(value: str) -> str:
    """Accept an absolute http(s) URL, such as the address of a backend MCP server."""
    _split_http_url(value, example="https://mcp.example.com/sse")
    return value


def check_base_url(value: str) -> str:
    """Accept the gateway's public URL: absolute http(s), no query, no fragment."""
    example = "https://mcp.example.com"
    parts = _split_http_url(value, example=example)
    if parts.query or parts.username is not None:
        raise config_value_error(
            "url",
            "must be scheme://host[:port][/path], without a ?query or user:password@",
            fix=f'for example "{example}"',
            show_input=True,
        )
    return value


HttpUrlText = Annotated[str, AfterValidator(check_http_url)]
"""An absolute http:// or https:// URL, kept as the text the user wrote."""


def normalize_origin(value: str) -> str:
    """Accept a web origin, `scheme://host[:port]`, written the way browsers send it.

    Scheme and host are lowercased, a trailing slash and a default port are dropped, so
    that comparing with a request's `Origin` header is a plain string comparison.
    """
    fix = 'for example "https://claude.ai"'
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise config_value_error("origin", "is not a valid origin", fix=fix, show_input=True) from None
    if not parts.scheme or not parts.hostname:
        raise config_value_error("origin", "must be scheme://host[:port]", fix=fix, show_input=True)
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username is not None:
        raise config_value_error(
            "origin", "must be only scheme://host[:port], without a path", fix=fix, show_input=True
        )
    scheme = parts.scheme.lower()
    host = parts.hostname  # already lowercased by urlsplit
    if ":" in host:
        host = f"[{host}]"
    keep_port = port is not None and port != _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}" if keep_port else f"{scheme}://{host}"


Origin = Annotated[str, AfterValidator(normalize_origin)]
"""A web origin such as "https://claude.ai", normalised."""


def parse_listen_address(addr: str) -> tuple[str, int]:
    """Split a Go-style listen address into host and port.

    ":8080" listens on every interface ("0.0.0.0"), "127.0.0.1:9000" on one, and
    "[::1]:9000" on an IPv6 address. Raises `ValueError` for anything else.
    """
    host, separator, port_text = addr.rpartition(":")
    if not separator or not port_text.isdigit() or int(port_text) > 65_535:
        raise ValueError(f"{addr!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # raises ValueError
    elif not host:
        host = "0.0.0.0"  # noqa: S104 - ":port" means every interface, as in Go
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{host!r} is not a host name or IPv4 address")
    return host, int(port_text)


def check_listen_address(value: str) -> str:
    try:
        parse_listen_address(value)
    except ValueError:
        raise config_value_error(
            "listen_address",
            'must be "host:port" or ":port"',
            fix='for example ":8080", "127.0.0.1:9000" or "[::1]:9000"',
            show_input=True,
        ) from None
    return value


def normalize_email_domain(value: str) -> str:
    """Accept the domain part of email addresses, lowercased as addresses are compared."""
    domain = value.lower()
    if not _HOSTNAME.fullmatch(domain) or "." not in domain:
        raise config_value_error(
            "email_domain", "must be an email domain", fix='for example "example.com"', show_input=True
        )
    return domain


EmailDomain = Annotated[str, AfterValidator(normalize_email_domain)]


def check_tool_name(value: str) -> str:
    """Accept a name valid for an MCP tool: 1 to 128 of A-Z a-z 0-9 _ - ."""
    if not _TOOL_NAME.fullmatch(value):
        raise config_value_error(
            "tool_name", "may only use letters, digits, '_', '-' and '.' (at most 128)", show_input=True
        )
    return value


ToolName = Annotated[str, AfterValidator(check_tool_name)]


def check_regular_expression(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise config_value_error("regex", f"is not a valid regular expression: {error.msg}") from None
    return value


RegularExpression = Annotated[str, AfterValidator(check_regular_expression)]
