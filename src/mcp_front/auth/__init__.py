"""Authentication: who is calling, and whether they may."""

from mcp_front.auth.principal import ANONYMOUS, Principal
from mcp_front.auth.resource import ResourceGuard
from mcp_front.auth.service_auth import StaticCredentials

__all__ = ["ANONYMOUS", "Principal", "ResourceGuard", "StaticCredentials"]
