import mcp_front


def test_all_is_explicit_sorted_and_importable() -> None:
    names = mcp_front.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(mcp_front, name), name


def test_version_is_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert mcp_front.__version__ == version("mcp-front")


def test_policy_and_audit_are_public() -> None:
    assert {"AuditEvent", "AuditLog", "ServiceAccess", "ServicePolicy"} <= set(mcp_front.__all__)


def test_every_backend_is_public() -> None:
    backends = {"AggregateRegistry", "InlineToolRegistry", "SSEForwarder", "StdioSessionPool"}
    assert backends | {"StreamableHTTPForwarder"} <= set(mcp_front.__all__)
