"""mcp-front: an OAuth 2.1 authentication gateway for MCP servers."""

from mcp_front._version import __version__
from mcp_front.app import create_app
from mcp_front.audit import AuditEvent, AuditLog
from mcp_front.auth import ANONYMOUS, Principal, ResourceGuard, StaticCredentials
from mcp_front.auth.audience import AudienceValidator
from mcp_front.auth.server import AuthorizationServer
from mcp_front.auth.service_policy import ServiceAccess
from mcp_front.auth.sign_in_policy import SignInPolicy
from mcp_front.auth.tokens import SigningKey, SigningKeys, TokenIssuer
from mcp_front.backends import BackendError, BackendFactory, MessageSink, Upstream, UpstreamOpener
from mcp_front.backends.aggregate import AggregateRegistry
from mcp_front.backends.inline import InlineToolRegistry
from mcp_front.backends.sse import SSEForwarder
from mcp_front.backends.stdio import StdioLimits, StdioSession, StdioSessionPool
from mcp_front.backends.streamable_http import StreamableHTTPForwarder
from mcp_front.config import (
    AuthConfig,
    ConfigError,
    GatewayConfig,
    ProxyConfig,
    ServerConfig,
    ServicePolicy,
    load_config,
)
from mcp_front.crypto import Keyring
from mcp_front.errors import MCPFrontError
from mcp_front.gateway import Gateway, GatewayError, RevokedUser
from mcp_front.idp import (
    AzureProvider,
    GitHubProvider,
    GoogleProvider,
    Identity,
    IdentityProvider,
    IdentityProviderError,
    OIDCProvider,
)
from mcp_front.storage import MemoryStore, SQLiteStore, Store, StoreUnavailable, open_store
from mcp_front.transports.session import FrontSession, SessionRegistry

__all__ = [
    "ANONYMOUS",
    "AggregateRegistry",
    "AudienceValidator",
    "AuditEvent",
    "AuditLog",
    "AuthConfig",
    "AuthorizationServer",
    "AzureProvider",
    "BackendError",
    "BackendFactory",
    "ConfigError",
    "FrontSession",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GitHubProvider",
    "GoogleProvider",
    "Identity",
    "IdentityProvider",
    "IdentityProviderError",
    "InlineToolRegistry",
    "Keyring",
    "MCPFrontError",
    "MemoryStore",
    "MessageSink",
    "OIDCProvider",
    "Principal",
    "ProxyConfig",
    "ResourceGuard",
    "RevokedUser",
    "SQLiteStore",
    "SSEForwarder",
    "ServerConfig",
    "ServiceAccess",
    "ServicePolicy",
    "SessionRegistry",
    "SignInPolicy",
    "SigningKey",
    "SigningKeys",
    "StaticCredentials",
    "StdioLimits",
    "StdioSession",
    "StdioSessionPool",
    "Store",
    "StoreUnavailable",
    "StreamableHTTPForwarder",
    "TokenIssuer",
    "Upstream",
    "UpstreamOpener",
    "__version__",
    "create_app",
    "load_config",
    "open_store",
]
