import pytest

from mcp_front.auth.audience import AudienceValidator, normalise


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://example.com/svc", "https://example.com/svc"),
        ("HTTPS://Example.COM/svc", "https://example.com/svc"),
        ("https://example.com/Svc", "https://example.com/Svc"),
        ("https://example.com:443/svc", "https://example.com/svc"),
        ("http://example.com:80/svc", "http://example.com/svc"),
        ("https://example.com:80/svc", "https://example.com:80/svc"),
        ("http://localhost:8080/svc/", "http://localhost:8080/svc"),
        ("https://example.com/svc//", "https://example.com/svc"),
        ("https://example.com/", "https://example.com"),
        ("https://example.com", "https://example.com"),
        ("https://example.com/a/./svc", "https://example.com/a/svc"),
        ("https://example.com/svc/../other", "https://example.com/other"),
        ("https://example.com/svc/%2E%2E/other", "https://example.com/other"),
        ("https://example.com/%73vc", "https://example.com/svc"),
        ("https://example.com/svc%2fmcp", "https://example.com/svc%2Fmcp"),
        ("https://[::1]:8443/svc", "https://[::1]:8443/svc"),
    ],
)
def test_normalise(uri: str, expected: str) -> None:
    assert normalise(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://example.com/svc", "http or https"),
        ("example.com/svc", "http or https"),
        ("/svc", "http or https"),
        ("", "non-empty"),
        ("https://user:pw@example.com/svc", "userinfo"),
        ("https://example.com/svc?x=1", "query"),
        ("https://example.com/svc?", "query"),
        ("https://example.com/svc#frag", "fragment"),
        ("https:///svc", "host"),
        ("https://example.com:99999/svc", "port"),
        ("https://example.com/s vc", "whitespace"),
    ],
)
def test_normalise_rejects(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise(uri)


def test_resources_with_a_base_url_that_has_a_path() -> None:
    audiences = AudienceValidator("https://Gateway.example.com:443/mcp-front/", ["notion", "linear"])
    assert audiences.base_url == "https://gateway.example.com/mcp-front"
    assert audiences.resource_for("notion") == "https://gateway.example.com/mcp-front/notion"
    assert dict(audiences.resources) == {
        "notion": "https://gateway.example.com/mcp-front/notion",
        "linear": "https://gateway.example.com/mcp-front/linear",
    }
    with pytest.raises(KeyError, match="github"):
        audiences.resource_for("github")


@pytest.mark.parametrize(
    ("resource", "service"),
    [
        ("https://gw.example.com/base/notion", "notion"),
        ("https://GW.example.com:443/base/notion/", "notion"),
        ("https://gw.example.com/base/notion/mcp", "notion"),
        ("https://gw.example.com/base/notion/sse", "notion"),
        ("https://gw.example.com/base/notion/message", None),
        ("https://gw.example.com/base/notion2", None),
        ("https://gw.example.com/base", None),
        ("https://gw.example.com/notion", None),
        ("http://gw.example.com/base/notion", None),
        ("https://gw.example.com:8443/base/notion", None),
        ("https://gw.example.com/base/linear/../notion", "notion"),
    ],
)
def test_service_for(resource: str, service: str | None) -> None:
    audiences = AudienceValidator("https://gw.example.com/base", ["notion", "linear"])
    assert audiences.service_for(resource) == service


def test_service_for_rejects_invalid_resources() -> None:
    audiences = AudienceValidator("https://gw.example.com", ["notion"])
    with pytest.raises(ValueError, match="query"):
        audiences.service_for("https://gw.example.com/notion?x=1")


@pytest.mark.parametrize("name", ["", "a/b", ".", "..", "with space", "é"])
def test_service_names_must_be_path_segments(name: str) -> None:
    with pytest.raises(ValueError, match="path segment"):
        AudienceValidator("https://gw.example.com", [name])


AUD = "https://gw.example.com/svc"


@pytest.mark.parametrize(
    ("request_url", "covered"),
    [
        ("https://gw.example.com/svc", True),
        ("https://gw.example.com/svc/", True),
        ("https://gw.example.com/svc/mcp", True),
        ("https://gw.example.com/svc/sse", True),
        ("https://gw.example.com/svc/message?sessionId=abc", True),
        ("https://GW.EXAMPLE.COM:443/svc/mcp", True),
        ("https://gw.example.com/%73vc/mcp", True),
        ("https://gw.example.com/svc2", False),
        ("https://gw.example.com/svc2/mcp", False),
        ("https://gw.example.com/svc-other/mcp", False),
        ("https://gw.example.com/sv", False),
        ("https://gw.example.com/", False),
        ("https://gw.example.com/svc/../other/mcp", False),
        ("https://gw.example.com/svc/%2e%2e/other", False),
        ("https://gw.example.com/svc%2Fmcp", False),
        ("https://gw.example.com/Svc/mcp", False),
        ("http://gw.example.com/svc/mcp", False),
        ("https://gw.example.com:8443/svc/mcp", False),
        ("https://other.example.com/svc/mcp", False),
        ("https://gw.example.com.evil.test/svc/mcp", False),
        ("https://user@gw.example.com/svc/mcp", False),
        ("not a url", False),
    ],
)
def test_covers_is_a_path_boundary_match(request_url: str, covered: bool) -> None:
    assert AudienceValidator.covers(AUD, request_url) is covered


def test_covers_normalises_the_audience_and_refuses_invalid_ones() -> None:
    assert AudienceValidator.covers("HTTPS://gw.example.com:443/svc/", "https://gw.example.com/svc/mcp")
    assert not AudienceValidator.covers("https://gw.example.com/svc?x", "https://gw.example.com/svc/mcp")
    assert not AudienceValidator.covers("", "https://gw.example.com/svc/mcp")


def test_a_base_url_with_a_path_bounds_coverage() -> None:
    audiences = AudienceValidator("https://gw.example.com/base", ["svc"])
    aud = audiences.resource_for("svc")
    assert audiences.covers(aud, "https://gw.example.com/base/svc/mcp")
    assert not audiences.covers(aud, "https://gw.example.com/svc/mcp")
    assert not audiences.covers(aud, "https://gw.example.com/base2/svc/mcp")
