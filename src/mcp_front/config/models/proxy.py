"""The gateway itself: where it listens, its public address, its sessions."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator

from mcp_front.config.durations import Duration, PositiveDuration
from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel
from mcp_front.config.models.auth import AuthConfig
from mcp_front.config.models.limits import ProxyAddress, RateLimitsConfig
from mcp_front.config.models.policy import AuditConfig
from mcp_front.config.models.values import (
    Origin,
    check_base_url,
    check_listen_address,
    normalize_origin,
    parse_listen_address,
)


class SessionsConfig(ConfigModel):
    """Limits and lifetimes of MCP sessions and of the stdio processes behind them."""

    timeout: PositiveDuration = timedelta(minutes=30)
    """How long an idle session keeps its backend (a stdio process) before it is reaped."""
    cleanup_interval: PositiveDuration = timedelta(minutes=1)
    """How often idle sessions are looked for."""
    max_per_user: int = Field(default=10, ge=1)
    """Concurrent sessions one principal may hold."""
    max_processes: int = Field(default=256, ge=1)
    """Stdio child processes the gateway runs at once, all users together."""
    retention: Duration = timedelta(hours=24)
    """How long a reaped session's record is kept so its client can resume it."""


_MIN_METRICS_TOKEN_BYTES = 16


class MetricsConfig(ConfigModel):
    """`/metrics` in the Prometheus text format, for a scraper that sends `token`."""

    token: SecretStr = Field(examples=[{"$env": "METRICS_TOKEN"}])
    """The bearer token the scraper sends (`Authorization: Bearer …`); at least 16 bytes."""

    @field_validator("token")
    @classmethod
    def _token_is_long_enough(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value().encode()) < _MIN_METRICS_TOKEN_BYTES:
            raise config_value_error(
                "secret_length",
                f"must be at least {_MIN_METRICS_TOKEN_BYTES} bytes long",
                fix="generate one with: openssl rand -hex 32",
            )
        return token


class TLSConfig(ConfigModel):
    """HTTPS served by `mcp-front serve` itself, for deployments without a terminating proxy."""

    cert_file: str = Field(min_length=1, examples=["/etc/mcp-front/tls/fullchain.pem"])
    """The certificate chain, PEM: the server's certificate first."""
    key_file: str = Field(min_length=1, examples=["/etc/mcp-front/tls/privkey.pem"])
    """Its private key, PEM (unencrypted)."""


class AdminConfig(ConfigModel):
    """The Go mcp-front's admin pages: read and ignored here, with a warning. Users manage
    their own clients and credentials on the gateway's `/my/…` pages."""

    enabled: bool = False
    """Go mcp-front only: whether its admin pages were on."""
    admin_emails: list[str] = Field(default_factory=list)
    """Go mcp-front only: who could use its admin pages."""


class ProxyConfig(ConfigModel):
    """The `proxy` block: the gateway's addresses, sessions and sign-in."""

    base_url: Annotated[str, AfterValidator(check_base_url)] = Field(
        default="http://localhost:8080", alias="baseURL", examples=["https://mcp.example.com"]
    )
    """The public URL clients use; services live under it at `<base_url>/<service>/`."""
    addr: Annotated[str, AfterValidator(check_listen_address)] = Field(default=":8080", examples=[":8080"])
    """Where to listen, Go style: ":8080", "127.0.0.1:9000", "[::1]:9000"."""
    advertise_url: str | None = Field(default=None, alias="advertiseURL", examples=["http://10.0.0.5:8080"])
    """Where the other replicas reach this one, with `redis` or `postgres` storage shared by
    several: an http(s) origin. By default the listen address (the host name when it
    listens on every interface), `https://` when the gateway serves TLS itself."""
    name: str = Field(default="mcp-front", min_length=1)
    """The implementation name the gateway gives MCP clients."""
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    """Limits and lifetimes of MCP sessions and of the stdio processes behind them."""
    auth: AuthConfig | None = None
    """Sign-in with an identity provider; without it only `serviceAuths` credentials get in."""
    allowed_origins: list[Origin] = Field(default_factory=list, examples=[["https://claude.ai"]])
    """Browser origins allowed to call the gateway (CORS)."""
    audit: AuditConfig | None = None
    """Where tool calls and denials are recorded; without it, the `mcp_front.audit` logger."""
    trusted_proxies: list[ProxyAddress] = Field(default_factory=list, examples=[["10.0.0.0/8"]])
    """Addresses (or CIDR networks) of reverse proxies whose `X-Forwarded-For` and
    `X-Forwarded-Proto` headers are believed. From any other peer they are ignored, so a
    client cannot pick the address its rate limits are counted against."""
    rate_limits: RateLimitsConfig = Field(default_factory=RateLimitsConfig)
    """Per-address limits on the endpoints anyone can reach."""
    admin: AdminConfig | None = None
    """Go mcp-front only: read and ignored, with a warning."""
    metrics: MetricsConfig | None = None
    """`/metrics` for a Prometheus scraper; not served without it."""
    tls: TLSConfig | None = None
    """Serve HTTPS directly (`serve --tls-cert/--tls-key` say the same)."""
    request_read_timeout: PositiveDuration = timedelta(seconds=30)
    """How long a connection may take to send a complete request (headers and body) before
    `mcp-front serve` closes it. A host app's own server needs its own setting."""

    @property
    def base_path(self) -> str:
        """The path of `base_url` without its trailing slash: "" when served at the root."""
        return urlsplit(self.base_url).path.rstrip("/")

    @property
    def origin(self) -> str:
        """The origin of `base_url`, `scheme://host[:port]`, as browsers write it."""
        parts = urlsplit(self.base_url)
        return normalize_origin(f"{parts.scheme}://{parts.netloc}")

    @property
    def listen_host(self) -> str:
        """The interface to listen on; "0.0.0.0" for an `addr` like ":8080"."""
        return parse_listen_address(self.addr)[0]

    @property
    def listen_port(self) -> int:
        return parse_listen_address(self.addr)[1]

    @property
    def internal_url(self) -> str:
        """`advertise_url`, or the default it describes."""
        if self.advertise_url is not None:
            return self.advertise_url
        host = self.listen_host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - the wildcard is read, not bound
            host = socket.gethostname()
        scheme = "https" if self.tls is not None else "http"
        authority = f"[{host}]:{self.listen_port}" if ":" in host else f"{host}:{self.listen_port}"
        return f"{scheme}://{authority}"

    @property
    def cors_allowed_origins(self) -> tuple[str, ...]:
        """Every allowed browser origin: `allowed_origins` and, as in the Go mcp-front,
        `auth.allowed_origins`."""
        from_auth = self.auth.allowed_origins if self.auth else []
        return tuple(dict.fromkeys([*self.allowed_origins, *from_auth]))
