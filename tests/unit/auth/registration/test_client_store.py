"""`StoredClients`: registration, reuse, authentication and expiry of unused clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest
from mcp.shared.auth import OAuthClientInformationFull

from mcp_front.auth.client_store import CLIENTS_NAMESPACE, REGISTRATIONS_NAMESPACE, StoredClients
from mcp_front.auth.clients import RegisteredClients
from mcp_front.auth.rfc7591 import validate_client_metadata
from mcp_front.storage import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def metadata(**change: Any) -> Any:
    return validate_client_metadata(
        {"redirect_uris": ["http://127.0.0.1:5555/cb"], "client_name": "App", **change}
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def clients(store: MemoryStore, clock: FakeClock) -> StoredClients:
    return StoredClients(store, unused_client_ttl=timedelta(days=30), clock=clock)


def test_is_registered_clients(clients: StoredClients) -> None:
    implementation: RegisteredClients = clients
    assert implementation is clients


async def test_public_client(clients: StoredClients, clock: FakeClock) -> None:
    result = await clients.register(metadata(token_endpoint_auth_method="none"))
    assert result.client_secret is None
    assert not result.reused
    client = result.client
    assert len(client.client_id) >= 32
    assert client.client_id_issued_at == int(clock.now)
    assert client.token_endpoint_auth_method == "none"
    assert await clients.get(client.client_id) == client
    assert await clients.authenticate(client.client_id, None) == client
    assert await clients.authenticate(client.client_id, "anything") is None


async def test_confidential_client_secret_is_stored_hashed(
    clients: StoredClients, store: MemoryStore
) -> None:
    result = await clients.register(metadata(token_endpoint_auth_method="client_secret_post"))
    secret = result.client_secret
    assert secret is not None
    assert len(secret) >= 40
    assert "hidden" in repr(result)
    assert secret not in repr(result)
    client_id = result.client.client_id
    raw = await store.get(CLIENTS_NAMESPACE, client_id)
    assert raw is not None
    assert secret.encode() not in raw
    stored = await clients.get(client_id)
    assert stored is not None
    assert stored.client_secret is None
    assert await clients.authenticate(client_id, secret) == stored
    assert await clients.authenticate(client_id, secret + "x") is None
    assert await clients.authenticate(client_id, None) is None


async def test_default_method_is_client_secret_basic(clients: StoredClients) -> None:
    result = await clients.register(metadata())
    assert result.client.token_endpoint_auth_method == "client_secret_basic"
    assert result.client_secret is not None


async def test_unknown_and_junk_client_ids(clients: StoredClients) -> None:
    for client_id in ("nope", "", "a\x00b", "x" * 1000, "\ud800"):
        assert await clients.get(client_id) is None
        assert await clients.authenticate(client_id, None) is None
        await clients.touch(client_id)
    assert await clients.get("https://client.example/meta.json") is None


async def test_identical_registration_reuses_public_client(clients: StoredClients) -> None:
    first = await clients.register(metadata(token_endpoint_auth_method="none", scope="a b"))
    again = await clients.register(
        metadata(
            token_endpoint_auth_method="none",
            scope="b a",
            grant_types=["refresh_token", "authorization_code"],
        )
    )
    assert again.reused
    assert again.client.client_id == first.client.client_id
    assert again.client_secret is None


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uris": ["http://127.0.0.1:5556/cb"]},
        {"client_name": "Other"},
        {"scope": "a"},
        {"application_type": "web"},
        {"token_endpoint_auth_method": "client_secret_post"},
        {"grant_types": ["authorization_code"]},
    ],
)
async def test_different_registration_is_a_new_client(clients: StoredClients, change: dict[str, Any]) -> None:
    first = await clients.register(metadata(token_endpoint_auth_method="none"))
    other = await clients.register(metadata(**{"token_endpoint_auth_method": "none", **change}))
    assert not other.reused
    assert other.client.client_id != first.client.client_id


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_identical_confidential_registration_is_a_new_client(
    clients: StoredClients, store: MemoryStore, method: str
) -> None:
    """Whoever knows a confidential client's name and redirect URIs gets a client of their
    own, never a secret for the existing one; the existing secret keeps working."""
    first = await clients.register(metadata(token_endpoint_auth_method=method))
    await clients.touch(first.client.client_id)
    seen = {first.client.client_id}
    for _ in range(8):
        again = await clients.register(metadata(token_endpoint_auth_method=method))
        assert not again.reused
        assert again.client.client_id not in seen
        seen.add(again.client.client_id)
        assert await clients.authenticate(first.client.client_id, again.client_secret) is None
    assert await clients.authenticate(first.client.client_id, first.client_secret) is not None
    assert await store.scan(REGISTRATIONS_NAMESPACE) == []


async def test_an_index_entry_never_hands_out_a_confidential_client(
    clients: StoredClients, store: MemoryStore
) -> None:
    """A fingerprint index entry naming a confidential client (as an earlier version wrote
    them) is ignored: the registration gets a new client."""
    first = await clients.register(metadata(token_endpoint_auth_method="client_secret_basic"))
    from mcp_front.auth.client_store import fingerprint

    public = metadata(token_endpoint_auth_method="none")
    await store.put(REGISTRATIONS_NAMESPACE, fingerprint(public), first.client.client_id.encode())
    result = await clients.register(public)
    assert not result.reused
    assert result.client.client_id != first.client.client_id
    assert result.client_secret is None


async def test_concurrent_identical_registrations_make_one_client(clients: StoredClients) -> None:
    ids: list[str] = []

    async def register() -> None:
        ids.append((await clients.register(metadata(token_endpoint_auth_method="none"))).client.client_id)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(register)
    assert len(set(ids)) == 1


async def test_unused_client_expires(clients: StoredClients, clock: FakeClock) -> None:
    result = await clients.register(metadata(token_endpoint_auth_method="none"))
    clock.now += timedelta(days=29).total_seconds()
    assert await clients.get(result.client.client_id) is not None
    clock.now += timedelta(days=2).total_seconds()
    assert await clients.get(result.client.client_id) is None
    fresh = await clients.register(metadata(token_endpoint_auth_method="none"))
    assert not fresh.reused


async def test_reregistration_restarts_the_unused_clock(clients: StoredClients, clock: FakeClock) -> None:
    result = await clients.register(metadata(token_endpoint_auth_method="none"))
    clock.now += timedelta(days=20).total_seconds()
    assert (await clients.register(metadata(token_endpoint_auth_method="none"))).reused
    clock.now += timedelta(days=20).total_seconds()
    assert await clients.get(result.client.client_id) is not None


async def test_touched_client_never_expires(
    clients: StoredClients, clock: FakeClock, store: MemoryStore
) -> None:
    result = await clients.register(metadata(token_endpoint_auth_method="client_secret_post"))
    client_id = result.client.client_id
    await clients.touch(client_id)
    await clients.touch(client_id)
    clock.now += timedelta(days=400).total_seconds()
    assert await clients.authenticate(client_id, result.client_secret) is not None
    public = await clients.register(metadata(token_endpoint_auth_method="none"))
    await clients.touch(public.client.client_id)
    clock.now += timedelta(days=400).total_seconds()
    again = await clients.register(metadata(token_endpoint_auth_method="none"))
    assert again.reused
    assert again.client.client_id == public.client.client_id
    assert len(await store.scan(REGISTRATIONS_NAMESPACE)) == 1


async def test_delete(clients: StoredClients) -> None:
    result = await clients.register(metadata(token_endpoint_auth_method="none"))
    assert await clients.delete(result.client.client_id)
    assert not await clients.delete(result.client.client_id)
    assert await clients.get(result.client.client_id) is None
    assert not (await clients.register(metadata(token_endpoint_auth_method="none"))).reused


class FakeDocuments:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get(self, client_id: str, *, requester: str | None = None) -> OAuthClientInformationFull | None:
        self.asked.append(client_id)
        return OAuthClientInformationFull(
            client_id=client_id, redirect_uris=["http://localhost/cb"], token_endpoint_auth_method="none"
        )


async def test_url_client_ids_go_to_metadata_documents(store: MemoryStore) -> None:
    documents = FakeDocuments()
    clients = StoredClients(store, metadata_documents=documents)  # type: ignore[arg-type]
    url = "https://client.example/oauth/client.json"
    client = await clients.get(url)
    assert client is not None
    assert client.client_id == url
    assert await clients.authenticate(url, None) is not None
    assert await clients.authenticate(url, "secret") is None
    assert documents.asked == [url, url, url]


def test_ttl_must_be_positive(store: MemoryStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        StoredClients(store, unused_client_ttl=timedelta(0))
