from mcp_front.auth.principal import Principal
from mcp_front.backends.child_process import child_environment
from mcp_front.backends.templating import render_principal


def test_child_sees_only_safe_gateway_variables_plus_configured_ones() -> None:
    gateway = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "AWS_SECRET_ACCESS_KEY": "x",
        "MCP_FRONT_JWT": "y",
        "LANG": "C",
    }
    env = child_environment({"API_URL": "https://api", "HOME": "/srv/home"}, base=gateway)
    assert env == {"PATH": "/usr/bin", "HOME": "/srv/home", "LANG": "C", "API_URL": "https://api"}


def test_principal_placeholders() -> None:
    principal = Principal(subject="u-1", email="ada@example.com")
    text = "--user={{principal.email}} --id={{principal.subject}}"
    assert render_principal(text, principal) == "--user=ada@example.com --id=u-1"
    assert render_principal("{{principal.email}}", Principal(subject="svc", kind="service")) == ""


def test_stderr_text_is_made_printable() -> None:
    from mcp_front.backends.child_process import _printable

    assert _printable("plain text") == "plain text"
    assert _printable("fake\r2026-01-01 INFO forged\x1b[31m") == "fake\\r2026-01-01 INFO forged\\x1b[31m"
