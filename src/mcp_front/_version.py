"""The installed package's version, readable from any module without importing the package root."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcp-front")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
