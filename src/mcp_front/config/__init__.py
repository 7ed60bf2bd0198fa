"""The gateway's configuration: pydantic models, and the loader for the JSON file format.

The file format is the Go mcp-front's `config.json`. `load_config` reads it, resolves
`{"$env": ...}` and `{"$file": ...}` references, validates it, and reports every problem
at once with its key path; the models can also be built directly in Python.
"""

from mcp_front.config.durations import Duration, PositiveDuration, format_duration, parse_duration
from mcp_front.config.errors import ConfigError, ConfigIssue
from mcp_front.config.loader import load_config
from mcp_front.config.models import (
    RESERVED_SERVICE_NAMES,
    AuditConfig,
    AuthConfig,
    BasicServiceAuth,
    BearerServiceAuth,
    DiscoveryConfig,
    GatewayConfig,
    IdentityProviderConfig,
    InlineConfig,
    InlineHttpCall,
    InlineTool,
    ManualUserAuthentication,
    MemoryStorage,
    OAuthUserAuthentication,
    PolicyRule,
    ProxyConfig,
    RateLimitRule,
    RateLimitsConfig,
    RedisStorage,
    ServerConfig,
    ServerOptions,
    ServiceAuth,
    ServicePolicy,
    SessionsConfig,
    SQLiteStorage,
    StorageConfig,
    ToolFilter,
    ToolPolicy,
    TransportType,
    UserAuthentication,
)
from mcp_front.config.references import (
    PRINCIPAL_PLACEHOLDERS,
    USER_TOKEN_PLACEHOLDER,
    UserTokenTemplate,
    render_principal_placeholders,
)
from mcp_front.config.starter import starter_config

__all__ = [
    "PRINCIPAL_PLACEHOLDERS",
    "RESERVED_SERVICE_NAMES",
    "USER_TOKEN_PLACEHOLDER",
    "AuditConfig",
    "AuthConfig",
    "BasicServiceAuth",
    "BearerServiceAuth",
    "ConfigError",
    "ConfigIssue",
    "DiscoveryConfig",
    "Duration",
    "GatewayConfig",
    "IdentityProviderConfig",
    "InlineConfig",
    "InlineHttpCall",
    "InlineTool",
    "ManualUserAuthentication",
    "MemoryStorage",
    "OAuthUserAuthentication",
    "PolicyRule",
    "PositiveDuration",
    "ProxyConfig",
    "RateLimitRule",
    "RateLimitsConfig",
    "RedisStorage",
    "SQLiteStorage",
    "ServerConfig",
    "ServerOptions",
    "ServiceAuth",
    "ServicePolicy",
    "SessionsConfig",
    "StorageConfig",
    "ToolFilter",
    "ToolPolicy",
    "TransportType",
    "UserAuthentication",
    "UserTokenTemplate",
    "format_duration",
    "load_config",
    "parse_duration",
    "render_principal_placeholders",
    "starter_config",
]
