"""MCP protocol revisions, and how a message tells which one it speaks.

Two families: the handshake revisions (up to 2025-11-25), where a session starts with
`initialize`, and the 2026-07-28 revision, where every request is self-contained and
carries its protocol version, client info and capabilities in `params._meta` (the
envelope). A request of the latter names its revision there, and nowhere else needs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from mcp_front._version import __version__

__all__ = [
    "ENVELOPE_KEYS",
    "GATEWAY_CLIENT_INFO",
    "HANDSHAKE_VERSIONS",
    "LATEST_HANDSHAKE_VERSION",
    "PRIMING_VERSION",
    "SELF_CONTAINED_VERSIONS",
    "envelope",
    "envelope_version",
    "is_self_contained",
    "negotiated_version",
    "without_envelope",
]

HANDSHAKE_VERSIONS: Final = HANDSHAKE_PROTOCOL_VERSIONS
"""Revisions whose sessions begin with `initialize`, oldest first."""
SELF_CONTAINED_VERSIONS: Final = MODERN_PROTOCOL_VERSIONS
"""Revisions whose requests each carry their envelope (2026-07-28 on): no handshake, no session."""
PRIMING_VERSION: Final = "2025-11-25"
"""The first revision whose clients expect an empty event that only primes an event id."""

ENVELOPE_KEYS: Final = (PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY)
"""The `params._meta` keys that make up a self-contained request's envelope."""

GATEWAY_CLIENT_INFO: Final[Mapping[str, str]] = {"name": "mcp-front", "version": __version__}
"""How the gateway introduces itself to a backend when it speaks for no particular client."""


def is_self_contained(version: str | None) -> bool:
    """Whether `version` (from a header or an envelope) is a 2026-07-28-era revision."""
    return version in SELF_CONTAINED_VERSIONS


def negotiated_version(offered: object) -> str:
    """The handshake revision a server answers `initialize` with: the client's, when it is
    one the gateway speaks, else the latest."""
    return offered if isinstance(offered, str) and offered in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION


def envelope_version(message: Mapping[str, Any]) -> str | None:
    """The 2026-07-28-era revision a request's envelope names, or `None`."""
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    meta = params.get("_meta")
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    return version if isinstance(version, str) and is_self_contained(version) else None


def envelope(message: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope of a request's `_meta`, for requests the gateway sends on its behalf."""
    meta = (message.get("params") or {}).get("_meta") or {}
    return {key: meta[key] for key in ENVELOPE_KEYS if key in meta}


def without_envelope(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A `_meta` with the envelope's keys taken out, as a handshake-era backend expects it."""
    return {key: value for key, value in meta.items() if key not in ENVELOPE_KEYS}
