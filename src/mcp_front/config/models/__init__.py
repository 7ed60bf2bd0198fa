"""Pydantic models of the configuration, one module per block of the file."""

from mcp_front.config.models.auth import (
    AuthConfig,
    IdentityProviderConfig,
    MemoryStorage,
    PostgresStorage,
    RedisStorage,
    SQLiteStorage,
    StorageConfig,
)
from mcp_front.config.models.gateway import RESERVED_SERVICE_NAMES, GatewayConfig
from mcp_front.config.models.inline import InlineConfig, InlineHttpCall, InlineTool
from mcp_front.config.models.limits import RateLimitRule, RateLimitsConfig
from mcp_front.config.models.policy import AuditConfig, PolicyRule, ServicePolicy, ToolPolicy
from mcp_front.config.models.proxy import MetricsConfig, ProxyConfig, SessionsConfig, TLSConfig
from mcp_front.config.models.sandbox import SandboxConfig
from mcp_front.config.models.servers import (
    DiscoveryConfig,
    ServerConfig,
    ServerOptions,
    ToolFilter,
    TransportType,
)
from mcp_front.config.models.service_auth import BasicServiceAuth, BearerServiceAuth, ServiceAuth
from mcp_front.config.models.user_auth import (
    ManualUserAuthentication,
    MCPOAuthUserAuthentication,
    OAuthUserAuthentication,
    UserAuthentication,
)

__all__ = [
    "RESERVED_SERVICE_NAMES",
    "AuditConfig",
    "AuthConfig",
    "BasicServiceAuth",
    "BearerServiceAuth",
    "DiscoveryConfig",
    "GatewayConfig",
    "IdentityProviderConfig",
    "InlineConfig",
    "InlineHttpCall",
    "InlineTool",
    "MCPOAuthUserAuthentication",
    "ManualUserAuthentication",
    "MemoryStorage",
    "MetricsConfig",
    "OAuthUserAuthentication",
    "PolicyRule",
    "PostgresStorage",
    "ProxyConfig",
    "RateLimitRule",
    "RateLimitsConfig",
    "RedisStorage",
    "SQLiteStorage",
    "SandboxConfig",
    "ServerConfig",
    "ServerOptions",
    "ServiceAuth",
    "ServicePolicy",
    "SessionsConfig",
    "StorageConfig",
    "TLSConfig",
    "ToolFilter",
    "ToolPolicy",
    "TransportType",
    "UserAuthentication",
]
