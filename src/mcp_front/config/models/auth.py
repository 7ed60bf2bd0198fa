"""The `proxy.auth` block: sign-in with an identity provider, and the tokens issued after it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from mcp_front.config.durations import PositiveDuration
from mcp_front.config.errors import config_value_error
from mcp_front.config.models._base import ConfigModel, Problem, raise_problems
from mcp_front.config.models.values import EmailDomain, HttpUrlText, Origin
from mcp_front.crypto.keyring import Keyring

_ENCRYPTION_KEY_BYTES: Final = 32
_MIN_JWT_SECRET_BYTES: Final = 32

# The Go mcp-front's first schema had Google's settings flat in the auth block.
_LEGACY_GOOGLE_KEYS: Final = {
    "googleClientId": "clientId",
    "googleClientSecret": "clientSecret",
    "googleRedirectUri": "redirectUri",
}


class IdentityProviderConfig(ConfigModel):
    """The organisation's identity provider, where users sign in."""

    provider: Literal["google", "azure", "github", "oidc"]
    """The identity provider: Google, Microsoft Entra ID (`azure`), GitHub, or any OpenID Connect one."""
    client_id: str = Field(min_length=1, examples=[{"$env": "GOOGLE_CLIENT_ID"}])
    """The OAuth client registered with the provider for the gateway."""
    client_secret: SecretStr = Field(min_length=1, examples=[{"$env": "GOOGLE_CLIENT_SECRET"}])
    """That client's secret."""
    redirect_uri: HttpUrlText = Field(examples=["https://mcp.example.com/oauth/callback"])
    """Where the provider sends users back, as registered with it: `<baseURL>/oauth/callback`."""
    discovery_url: HttpUrlText | None = None
    """OIDC only: the provider's `.well-known/openid-configuration` URL."""
    authorization_url: HttpUrlText | None = None
    """The provider's authorization endpoint, in place of the known or discovered one; required for OIDC
    without `discoveryUrl`."""
    token_url: HttpUrlText | None = None
    """The provider's token endpoint, in place of the known or discovered one; required for OIDC without
    `discoveryUrl`."""
    user_info_url: HttpUrlText | None = None
    """The provider's userinfo endpoint (GitHub: its API's `/user`), in place of the known or discovered one;
    required for OIDC without `discoveryUrl`."""
    scopes: list[str] | None = None
    """Scopes to request; without it, the provider's usual ones."""
    tenant_id: str | None = Field(default=None, min_length=1)
    """Azure only: the directory (tenant) users belong to."""
    allowed_orgs: list[str] = Field(default_factory=list)
    """GitHub only: users must belong to one of these organisations (or `org/team` teams)."""
    hosted_domain: str | None = Field(default=None, min_length=1)
    """Google only: the Workspace domain users must belong to (checked in the ID token)."""
    issuer: HttpUrlText | None = None
    """OIDC without discovery: the issuer its ID tokens name."""
    jwks_url: HttpUrlText | None = None
    """OIDC without discovery: where its signing keys are, so ID tokens can be checked."""
    groups_claim: str = Field(default="groups", min_length=1)
    """The ID-token or userinfo claim that lists the user's groups."""

    @model_validator(mode="after")
    def _has_what_the_provider_needs(self) -> IdentityProviderConfig:
        problems: list[Problem] = []
        if self.provider == "azure" and self.tenant_id is None:
            problems.append(
                Problem(("tenantId",), "is required for Azure", fix="add your directory (tenant) id")
            )
        if self.provider != "azure" and self.tenant_id is not None:
            problems.append(Problem(("tenantId",), 'is only used with "provider": "azure"', fix="remove it"))
        if self.provider != "github" and self.allowed_orgs:
            problems.append(
                Problem(("allowedOrgs",), 'is only used with "provider": "github"', fix="remove it")
            )
        if self.provider == "oidc" and self.discovery_url is None:
            problems.extend(
                Problem((key,), "is required for OIDC without a discoveryUrl", fix='or add "discoveryUrl"')
                for key, url in (
                    ("authorizationUrl", self.authorization_url),
                    ("tokenUrl", self.token_url),
                    ("userInfoUrl", self.user_info_url),
                )
                if url is None
            )
        raise_problems(self, problems)
        return self


class MemoryStorage(ConfigModel):
    """State kept in memory: lost on restart, for trying things out."""

    kind: Literal["memory"] = "memory"
    """Selects in-memory storage."""


class SQLiteStorage(ConfigModel):
    """State in an embedded SQLite database file."""

    kind: Literal["sqlite"] = "sqlite"
    """Selects SQLite storage."""
    path: str = Field(default="mcp-front.sqlite3", min_length=1)
    """The database file; a relative path is taken from the gateway's working directory."""


class RedisStorage(ConfigModel):
    """State in Redis, shared by several gateway replicas."""

    kind: Literal["redis"] = "redis"
    """Selects Redis storage."""
    url: SecretStr = Field(examples=[{"$env": "REDIS_URL"}])
    """A redis:// or rediss:// URL; a secret, as it usually carries a password."""
    prefix: str = Field(default="mcp-front:", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9:._-]+$")
    """What every key and channel of this gateway starts with: several deployments can
    share one Redis database under different prefixes."""

    @field_validator("url")
    @classmethod
    def _is_a_redis_url(cls, url: SecretStr) -> SecretStr:
        if urlsplit(url.get_secret_value()).scheme not in {"redis", "rediss", "unix"}:
            raise config_value_error("url", "must be a redis://, rediss:// or unix:// URL")
        return url


class PostgresStorage(ConfigModel):
    """State in PostgreSQL, shared by several gateway replicas; the gateway creates and
    migrates its own tables."""

    kind: Literal["postgres"] = "postgres"
    """Selects PostgreSQL storage."""
    url: SecretStr = Field(examples=[{"$env": "DATABASE_URL"}])
    """A postgresql:// URL; a secret, as it usually carries a password."""

    @field_validator("url")
    @classmethod
    def _is_a_postgres_url(cls, url: SecretStr) -> SecretStr:
        if urlsplit(url.get_secret_value()).scheme not in {"postgres", "postgresql"}:
            raise config_value_error("url", "must be a postgresql:// URL")
        return url


StorageConfig: TypeAlias = Annotated[
    MemoryStorage | SQLiteStorage | RedisStorage | PostgresStorage, Field(discriminator="kind")
]
"""Where the gateway keeps its state: OAuth clients, refresh tokens, users' service tokens."""


class AuthConfig(ConfigModel):
    """OAuth 2.1 sign-in: who may get in, and the tokens the gateway issues to clients."""

    kind: Literal["oauth"]
    """`"oauth"`, the only kind: OAuth 2.1, users signing in with an identity provider."""
    issuer: HttpUrlText = Field(examples=["https://mcp.example.com"])
    """The OAuth issuer the gateway names in its tokens and metadata; normally the same as `proxy.baseURL`."""
    idp: IdentityProviderConfig | None = None
    """Where users sign in. Required when the gateway builds its identity provider from
    the configuration, as `mcp-front serve` always does; a program that hands the gateway
    an `IdentityProvider` of its own leaves it out."""
    allowed_domains: list[EmailDomain] = Field(default_factory=list, examples=[["example.com"]])
    """Only users whose email is in one of these domains may sign in."""
    allowed_origins: list[Origin] = Field(default_factory=list)
    """Browser origins allowed to call the gateway (CORS); merged with `proxy.allowedOrigins`."""
    allowed_redirect_uri_hosts: list[Origin] = Field(default_factory=list, examples=[["https://claude.ai"]])
    """Origins that OAuth clients may redirect back to; a host without a port matches any port."""
    allow_any_redirect_uri_host: bool = False
    """Says that no `allowedRedirectUriHosts` list is intended, which silences the warning about it; not
    together with such a list."""
    token_ttl: PositiveDuration = timedelta(hours=1)
    """How long the access tokens the gateway issues are valid."""
    refresh_token_ttl: PositiveDuration = timedelta(days=30)
    """How long refresh tokens are valid."""
    refresh_token_scopes: list[str] = Field(default_factory=list)
    """When set, refresh tokens are only issued to requests asking for one of these scopes."""
    storage: StorageConfig = Field(default_factory=SQLiteStorage)
    """Where the gateway keeps its state: clients, tokens, users' service credentials. A string names a kind
    with its defaults (`"sqlite"`, `"memory"`)."""
    jwt_secret: SecretStr | None = Field(default=None, examples=[{"$env": "JWT_SECRET"}])
    """Accepted so configurations of the Go mcp-front keep loading; unused, since access
    tokens are signed with asymmetric keys (see `signingKey`)."""
    encryption_key: SecretStr = Field(examples=[{"$env": "ENCRYPTION_KEY"}])
    """Encrypts secrets at rest (AES-256-GCM): exactly 32 bytes."""
    previous_encryption_keys: list[SecretStr] = Field(default_factory=list)
    """Keys that encrypted stored secrets before `encryptionKey`; still decrypt, never encrypt."""
    signing_key: SecretStr | None = Field(default=None, examples=[{"$file": "/run/secrets/signing-key.pem"}])
    """A PEM private key (EC P-256 or RSA) that signs access tokens; without one, a key is
    generated and kept encrypted in the storage."""
    allowed_emails: list[str] = Field(default_factory=list, examples=[["contractor@partner.io"]])
    """People who may sign in although their email domain is not in `allowedDomains`."""
    allowed_groups: list[str] = Field(default_factory=list, examples=[["mcp-users"]])
    """Users must be in one of these groups (the identity provider's groups claim)."""
    require_verified_email: bool = True
    """Refuse users whose email address the identity provider has not verified."""
    trusted_clients: list[str] = Field(default_factory=list)
    """Client ids (or client metadata document URLs) that skip the consent page."""
    allow_private_client_metadata_hosts: bool = False
    """Let client metadata documents (https `client_id` URLs) live on private or loopback
    addresses, for clients hosted inside your network. Off by default: the gateway would
    otherwise fetch internal URLs on anyone's request."""
    resource_fallback: bool = False
    """Issue an issuer-wide token to clients that send no RFC 8707 `resource`. A
    compatibility switch for such clients: the token then opens every service. The Go
    mcp-front's `dangerouslyAcceptIssuerAudience` is read as this key."""
    gcp_project: str | None = None
    """Go mcp-front only (Firestore storage, GCP IAM): read and ignored, with a warning."""
    firestore_database: str | None = None
    """Go mcp-front only: read and ignored, with a warning (Firestore storage is not available)."""
    firestore_collection: str | None = None
    """Go mcp-front only: read and ignored, with a warning (Firestore storage is not available)."""

    @model_validator(mode="before")
    @classmethod
    def _read_legacy_google_keys(cls, data: Any) -> Any:
        """Map `googleClientId`, `googleClientSecret` and `googleRedirectUri` to an `idp` block."""
        if not isinstance(data, dict) or not _LEGACY_GOOGLE_KEYS.keys() & data.keys():
            return data
        if "idp" in data:
            raise config_value_error(
                "legacy_google_keys",
                'has both "idp" and the older "googleClientId"/"googleClientSecret"/"googleRedirectUri"',
                fix="move them into idp and remove them",
            )
        rest = {key: value for key, value in data.items() if key not in _LEGACY_GOOGLE_KEYS}
        idp = {"provider": "google"} | {
            new: data[old] for old, new in _LEGACY_GOOGLE_KEYS.items() if old in data
        }
        return rest | {"idp": idp}

    @model_validator(mode="before")
    @classmethod
    def _read_dangerously_accept_issuer_audience(cls, data: Any) -> Any:
        """The Go mcp-front's `dangerouslyAcceptIssuerAudience` is `resourceFallback`."""
        if not isinstance(data, dict) or "dangerouslyAcceptIssuerAudience" not in data:
            return data
        rest = {key: value for key, value in data.items() if key != "dangerouslyAcceptIssuerAudience"}
        value = data["dangerouslyAcceptIssuerAudience"]
        for key in ("resourceFallback", "resource_fallback"):
            if key in rest and rest[key] != value:
                raise config_value_error(
                    "conflicting_keys",
                    "has both dangerouslyAcceptIssuerAudience and resourceFallback, with different values",
                    fix="keep resourceFallback, the name this gateway documents",
                )
        return rest | {"resourceFallback": value}

    @field_validator("storage", mode="before")
    @classmethod
    def _read_storage_shorthand(cls, value: Any) -> Any:
        """Accept `"storage": "sqlite"` for `{"kind": "sqlite"}`, as the Go format writes it."""
        if value == "firestore":
            raise config_value_error(
                "storage",
                "Firestore storage is not supported",
                fix='use "sqlite" (the default), or {"kind": "redis", "url": ...} for several replicas',
            )
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_is_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().encode()) < _MIN_JWT_SECRET_BYTES:
            raise config_value_error(
                "secret_length",
                f"must be at least {_MIN_JWT_SECRET_BYTES} bytes long",
                fix="generate one with: openssl rand -base64 32",
            )
        return secret

    @field_validator("encryption_key", "previous_encryption_keys")
    @classmethod
    def _encryption_keys_are_32_bytes(cls, keys: SecretStr | list[SecretStr]) -> SecretStr | list[SecretStr]:
        for key in keys if isinstance(keys, list) else [keys]:
            try:
                Keyring.from_secret(key.get_secret_value())
            except ValueError:
                raise config_value_error(
                    "secret_length",
                    f"must be exactly {_ENCRYPTION_KEY_BYTES} bytes: 32 characters, 64 hex digits, "
                    "or the base64 of 32 bytes",
                    fix="generate one with: openssl rand -base64 32",
                ) from None
        return keys

    @property
    def allowed_orgs(self) -> list[str]:
        """GitHub organisations and teams whose members may sign in (`idp.allowedOrgs`)."""
        return self.idp.allowed_orgs if self.idp is not None else []

    @property
    def callback_url(self) -> str:
        """Where the identity provider sends users back: `idp.redirectUri`, or the
        gateway's own callback below the issuer when there is no `idp` block."""
        return self.idp.redirect_uri if self.idp is not None else f"{self.issuer.rstrip('/')}/oauth/callback"

    @model_validator(mode="after")
    def _restricts_who_gets_in(self) -> AuthConfig:
        problems: list[Problem] = []
        if not (self.allowed_domains or self.allowed_emails or self.allowed_groups or self.allowed_orgs):
            problems.append(
                Problem(
                    ("allowedDomains",),
                    "nobody is restricted from signing in",
                    fix='list your email domains, e.g. ["example.com"], or set allowedEmails, '
                    "allowedGroups, or idp.allowedOrgs for GitHub",
                )
            )
        if self.allow_any_redirect_uri_host and self.allowed_redirect_uri_hosts:
            problems.append(
                Problem(
                    ("allowAnyRedirectUriHost",),
                    "cannot be true together with a list of allowedRedirectUriHosts",
                    fix="keep one of the two",
                )
            )
        raise_problems(self, problems)
        return self
