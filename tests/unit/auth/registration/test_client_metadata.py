"""Client ID Metadata Documents: fetched from a real HTTPS server on loopback, and the address guard."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from mcp_front.auth.client_metadata import (
    RESERVED_PER_REQUESTER,
    ClientMetadataDocuments,
    ClientMetadataError,
    check_address,
    check_client_id_url,
)
from mcp_front.rate_limit import MemoryRateLimiter, RateLimit
from tests.support.net import free_port
from tests.support.tls import TLS, DocumentServer, make_tls, serving_documents


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tls: TLS) -> Iterator[DocumentServer]:
    documents = DocumentServer(free_port())
    with serving_documents(tls, documents):
        yield documents


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http(tls: TLS) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(verify=tls.client_context(), trust_env=False) as client:
        yield client


def document(url: str, **change: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "Example MCP client",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **change,
    }


def documents_for(http: httpx2.AsyncClient, clock: FakeClock, **kwargs: Any) -> ClientMetadataDocuments:
    return ClientMetadataDocuments(http, allow_private_addresses=True, clock=clock, **kwargs)


async def test_fetch_validate_and_cache(server: DocumentServer, http: httpx2.AsyncClient) -> None:
    clock = FakeClock()
    url = server.url("/oauth/client.json")
    server.serve_document("/oauth/client.json", document(url), {"cache-control": "public, max-age=600"})
    documents = documents_for(http, clock)
    client = await documents.get(url)
    assert client is not None
    assert client.client_id == url
    assert client.token_endpoint_auth_method == "none"
    assert client.client_name == "Example MCP client"
    assert [str(u) for u in client.redirect_uris or []] == ["http://127.0.0.1:33418/callback"]
    clock.now += 599
    assert await documents.get(url) == client
    assert server.hits["/oauth/client.json"] == 1
    clock.now += 2
    assert await documents.get(url) == client
    assert server.hits["/oauth/client.json"] == 2


async def test_fetches_are_limited_per_requester_and_for_everyone(
    server: DocumentServer, http: httpx2.AsyncClient
) -> None:
    clock = FakeClock()
    urls = [
        server.serve_document(
            f"/c{n}.json", document(server.url(f"/c{n}.json")), {"cache-control": "max-age=1"}
        )
        for n in range(12)
    ]
    per_requester = documents_for(
        http,
        clock,
        limiter=MemoryRateLimiter(clock=clock),
        fetches_per_requester=RateLimit(2, timedelta(minutes=1)),
    )
    assert await per_requester.get(urls[0], requester="198.51.100.1") is not None
    assert await per_requester.get(urls[1], requester="198.51.100.1") is not None
    with pytest.raises(ClientMetadataError, match="too many document fetches"):
        await per_requester.fetch(urls[2], requester="198.51.100.1")
    assert server.hits.get("/c2.json", 0) == 0
    # Someone else is not held back by that requester, and the limit refills.
    assert await per_requester.get(urls[2], requester="192.0.2.9") is not None
    clock.now += 60
    assert await per_requester.get(urls[3], requester="198.51.100.1") is not None

    everyone = documents_for(
        http, clock, limiter=MemoryRateLimiter(clock=clock), fetches=RateLimit(2, timedelta(minutes=1))
    )
    reserved = RESERVED_PER_REQUESTER.requests
    # One requester takes its reserve and the whole shared budget...
    found = [await everyone.get(urls[4 + n % 8], requester="203.0.113.5") for n in range(reserved + 3)]
    assert [client is not None for client in found] == [True] * (reserved + 2) + [False]
    # ...and a newcomer still gets its first fetches from its reserve.
    assert await everyone.get(urls[11], requester="203.0.113.99") is not None


async def test_a_refused_address_draws_nothing_from_the_budget_of_everyone(http: httpx2.AsyncClient) -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    budget = RateLimit(1, timedelta(minutes=1))

    async def private(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    documents = ClientMetadataDocuments(http, clock=clock, limiter=limiter, fetches=budget, resolver=private)
    for n in range(5):
        with pytest.raises(ClientMetadataError, match="not public"):
            await documents.fetch(f"https://internal.example/c{n}.json")
    assert await limiter.wait("metadata-fetches", budget) == 0


async def test_cache_lifetime_is_bounded(server: DocumentServer, http: httpx2.AsyncClient) -> None:
    clock = FakeClock()
    url = server.serve_document("/c.json", document(server.url("/c.json")), {"cache-control": "no-store"})
    documents = documents_for(http, clock, min_cache=timedelta(seconds=30), max_cache=timedelta(hours=1))
    assert await documents.get(url) is not None
    clock.now += 29
    assert await documents.get(url) is not None
    assert server.hits["/c.json"] == 1
    clock.now += 2
    server.serve_document("/c.json", document(url), {"cache-control": "max-age=99999999"})
    assert await documents.get(url) is not None
    clock.now += 3601
    assert await documents.get(url) is not None
    assert server.hits["/c.json"] == 3


async def test_stale_copy_when_host_answers_5xx(
    server: DocumentServer, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    url = server.serve_document("/c.json", document(server.url("/c.json")), {"cache-control": "max-age=60"})
    documents = documents_for(http, clock, max_stale=timedelta(days=1))
    first = await documents.get(url)
    server.routes["/c.json"] = (503, {}, b"down")
    clock.now += 120
    with caplog.at_level(logging.WARNING, logger="mcp_front.auth.client_metadata"):
        assert await documents.get(url) == first
    assert "serving the copy cached 120 seconds ago" in caplog.text
    clock.now += timedelta(days=2).total_seconds()
    assert await documents.get(url) is None


async def test_stale_copy_when_host_is_gone(
    tls: TLS, http: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    server = DocumentServer(free_port())
    documents = documents_for(http, clock)
    with serving_documents(tls, server):
        url = server.serve_document("/c.json", document(server.url("/c.json")))
        first = await documents.get(url)
        assert first is not None
    clock.now += 3600
    with caplog.at_level(logging.WARNING, logger="mcp_front.auth.client_metadata"):
        assert await documents.get(url) == first
    assert "could not be fetched" in caplog.text
    assert await documents_for(http, clock).get(url) is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"client_id": "https://localhost/other.json"}, "client_id"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "non-loopback"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "not allowed"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "token_endpoint_auth_method"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
        ({"client_secret": "s3cret"}, "client secret"),
        ({"grant_types": ["client_credentials"]}, "grant_types"),
    ],
)
async def test_invalid_documents(
    server: DocumentServer, http: httpx2.AsyncClient, change: dict[str, Any], needle: str
) -> None:
    url = server.serve_document("/c.json", document(server.url("/c.json"), **change))
    with pytest.raises(ClientMetadataError, match=needle):
        await documents_for(http, FakeClock()).fetch(url)


async def test_omitted_auth_method_means_public(server: DocumentServer, http: httpx2.AsyncClient) -> None:
    doc = document(server.url("/c.json"))
    del doc["token_endpoint_auth_method"]
    url = server.serve_document("/c.json", doc)
    client = await documents_for(http, FakeClock()).fetch(url)
    assert client.token_endpoint_auth_method == "none"


async def test_no_redirects_size_and_time_caps(server: DocumentServer, http: httpx2.AsyncClient) -> None:
    documents = documents_for(http, FakeClock(), max_bytes=1024, timeout=timedelta(seconds=0.5))
    target = server.serve_document("/real.json", document(server.url("/real.json")))
    server.routes["/moved.json"] = (302, {"location": target}, b"")
    with pytest.raises(ClientMetadataError, match="redirects are not followed"):
        await documents.fetch(server.url("/moved.json"))
    assert "/real.json" not in server.hits
    big = server.serve_document("/big.json", document(server.url("/big.json"), client_name="x" * 2000))
    with pytest.raises(ClientMetadataError, match="exceeds 1024 bytes"):
        await documents.fetch(big)
    server.routes["/missing.json"] = (404, {}, b"")
    with pytest.raises(ClientMetadataError, match="404"):
        await documents.fetch(server.url("/missing.json"))
    server.routes["/junk.json"] = (200, {}, b"<html>")
    with pytest.raises(ClientMetadataError, match="not JSON"):
        await documents.fetch(server.url("/junk.json"))
    server.delay = 2.0
    started = time.monotonic()
    with pytest.raises(ClientMetadataError, match="no answer within"):
        await documents.fetch(target)
    assert time.monotonic() - started < 1.5


async def test_loopback_refused_by_default(server: DocumentServer, http: httpx2.AsyncClient) -> None:
    url = server.serve_document("/c.json", document(server.url("/c.json")))
    documents = ClientMetadataDocuments(http)
    with pytest.raises(ClientMetadataError, match="not public"):
        await documents.fetch(url)
    with pytest.raises(ClientMetadataError, match="not public"):
        await documents.fetch(f"https://127.0.0.1:{server.port}/c.json")
    assert "/c.json" not in server.hits
    assert await documents.get(url) is None


async def test_every_resolved_address_is_checked() -> None:
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.216.34", "10.1.2.3"]

    documents = ClientMetadataDocuments(httpx2.AsyncClient(), resolver=resolver)
    with pytest.raises(ClientMetadataError, match=r"10\.1\.2\.3 is not public"):
        await documents.fetch("https://client.example:8443/meta.json")
    assert asked == [("client.example", 8443)]
    await documents.aclose()


async def test_resolution_failure_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    async def empty(host: str, port: int) -> list[str]:
        return []

    async with ClientMetadataDocuments(resolver=resolver) as documents:
        with pytest.raises(ClientMetadataError, match="cannot resolve"):
            await documents.fetch("https://client.example/meta.json")
    async with ClientMetadataDocuments(resolver=empty) as documents:
        with pytest.raises(ClientMetadataError, match="no address"):
            await documents.fetch("https://client.example/meta.json")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        # IPv6 addresses that lead to a private IPv4 one: 6to4, Teredo, NAT64.
        "2002:c0a8:101::1",
        "2002:7f00:1::",
        "2002:a00:1:ffff::1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        "64:ff9b::7f00:1",
        "64:ff9b::c0a8:101",
        "64:ff9b:1::a00:1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(ClientMetadataError):
        check_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    check_address(address)


def test_private_allowed_when_configured() -> None:
    assert str(check_address("127.0.0.1", allow_private=True)) == "127.0.0.1"
    assert str(check_address("10.0.0.1", allow_private=True)) == "10.0.0.1"
    with pytest.raises(ClientMetadataError, match="unicast"):
        check_address("224.0.0.1", allow_private=True)
    with pytest.raises(ClientMetadataError, match="not an IP"):
        check_address("example.com")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://client.example/meta.json", "https"),
        ("https:///meta.json", "https"),
        ("https://client.example", "path"),
        ("https://client.example/", "path"),
        ("https://client.example/a/../meta.json", "path"),
        ("https://client.example/./meta.json", "path"),
        ("https://client.example/meta.json#x", "fragment"),
        ("https://user@client.example/meta.json", "credentials"),
        ("https://client.example:99999/meta.json", "port"),
        ("https://client.example/a b", "whitespace"),
        ("https://a\uff0f\u202eFORGED/x", "ASCII"),
        ("https://[::1/x", "not a valid URL"),
    ],
)
def test_client_id_url_form(url: str, needle: str) -> None:
    with pytest.raises(ClientMetadataError, match=needle):
        check_client_id_url(url)


def test_client_id_url_accepted() -> None:
    assert check_client_id_url("https://Client.Example:8443/oauth/meta.json?v=1") == ("client.example", 8443)
