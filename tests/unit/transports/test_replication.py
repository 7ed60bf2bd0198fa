"""The replica directory, the forwarding header, and taking a dead replica's session over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest

from mcp_front.auth.principal import Principal
from mcp_front.config import GatewayConfig
from mcp_front.crypto import Keyring
from mcp_front.gateway import Gateway, GatewayError
from mcp_front.storage import MemoryStore
from mcp_front.transports.forwarding import ForwardingSeal
from mcp_front.transports.replicas import ReplicaDirectory, check_address, owner_of
from mcp_front.transports.replication import SessionReplication
from mcp_front.transports.session import SessionRegistry
from mcp_front.transports.session_records import SessionRecord, SessionRecords

ADA = Principal(subject="ada", email="ada@example.com")
GRACE = Principal(subject="grace", email="grace@example.com")
KEYRING = Keyring([b"k" * 32])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryStore):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.scans = 0

    async def scan(self, namespace: str, prefix: str = "", *, limit: int = 1000) -> list[tuple[str, bytes]]:
        self.scans += 1
        return await super().scan(namespace, prefix, limit=limit)


class FakeForwarder:
    """Replicas in `dead` refuse connections; the others answer, and are noted."""

    def __init__(self, dead: set[str]) -> None:
        self.dead = dead
        self.forwarded: list[str] = []

    async def forward(
        self, address: str, seal: str, scope: Any, body: bytes, receive: Any, send: Any
    ) -> bool:
        if address in self.dead:
            return False
        self.forwarded.append(address)
        return True

    async def aclose(self) -> None:
        return None


async def test_the_directory_finds_other_replicas_and_reads_the_store_at_most_once_a_second() -> None:
    clock = Clock()
    store = CountingStore(clock)
    first = ReplicaDirectory(store, "http://10.0.0.1:8080", replica_id="aaa", clock=clock)
    second = ReplicaDirectory(store, "http://10.0.0.2:8080/", replica_id="bbb", clock=clock)
    await first.heartbeat()
    await second.heartbeat()
    # `first` read the store before `second` registered: it learns of it when a session
    # names it, and `gone` reads the store at once, so a new replica is never taken for dead.
    assert await first.lookup("bbb") is None
    assert not await first.gone("bbb")
    assert await first.lookup("bbb") == "http://10.0.0.2:8080"
    assert await second.lookup("aaa") == "http://10.0.0.1:8080"
    assert await first.lookup("aaa") is None  # itself: never forwarded to
    clock.now += 1.5
    scans = store.scans
    for _ in range(5):
        assert await first.lookup("unknown") is None
    assert store.scans == scans + 1
    clock.now += 1.5
    assert await first.lookup("unknown") is None
    assert store.scans == scans + 2
    # A replica that stops renewing its entry drops out; one that refused a connection is
    # skipped without reading the store.
    clock.now += 30
    await first.heartbeat()
    assert await first.lookup("bbb") is None
    assert await first.gone("bbb")
    await second.heartbeat()
    await first.read()
    first.unreachable("bbb")
    scans = store.scans
    assert await first.gone("bbb")
    assert store.scans == scans


def test_addresses_are_origins_and_session_ids_name_their_owner() -> None:
    for bad in ["ftp://x", "http://x/path", "http://user@x", "http://x?q=1", "x:80", "http://"]:
        with pytest.raises(ValueError, match="origin"):
            check_address(bad)
    assert owner_of("abc.def") == "abc"
    assert owner_of("abcdef") is None
    assert owner_of(".def") is None
    assert owner_of("abc." + "x" * 200) is None  # made by no replica: never looked up
    with pytest.raises(ValueError, match="origin") as refused:
        check_address("http://user:hunter2@x:80")
    assert "hunter2" not in str(refused.value)


def test_the_forwarding_header_is_bound_to_its_target_request_and_time() -> None:
    clock = Clock()
    seal = ForwardingSeal(KEYRING.derived_keys(b"forwarding"), clock=clock)
    value = seal.make("bbb", "POST", "/probe/mcp", "aaa.s1")
    assert seal.check(value, "bbb", "POST", "/probe/mcp", "aaa.s1")
    assert not seal.check(value, "ccc", "POST", "/probe/mcp", "aaa.s1")
    assert not seal.check(value, "bbb", "GET", "/probe/mcp", "aaa.s1")
    assert not seal.check(value, "bbb", "POST", "/other/mcp", "aaa.s1")
    assert not seal.check(value, "bbb", "POST", "/probe/mcp", "aaa.s2")
    other_keys = ForwardingSeal(Keyring([b"o" * 32]).derived_keys(b"forwarding"), clock=clock)
    assert not other_keys.check(value, "bbb", "POST", "/probe/mcp", "aaa.s1")
    # A replica holding the new key and the old one still checks what an old one signed.
    rotated = ForwardingSeal(Keyring([b"n" * 32, b"k" * 32]).derived_keys(b"forwarding"), clock=clock)
    assert rotated.check(value, "bbb", "POST", "/probe/mcp", "aaa.s1")
    clock.now += 120
    assert not seal.check(value, "bbb", "POST", "/probe/mcp", "aaa.s1")


def replica(
    store: MemoryStore, name: str, forwarder: FakeForwarder
) -> tuple[SessionReplication, SessionRegistry]:
    registry = SessionRegistry()
    directory = ReplicaDirectory(store, f"http://{name}:8080", replica_id=name)
    records = SessionRecords(store, KEYRING, timedelta(hours=1))
    seal = ForwardingSeal(KEYRING.derived_keys(b"forwarding"))
    return SessionReplication(directory, records, seal, forwarder, registry), registry  # type: ignore[arg-type]


def scope_for(session_id: str) -> dict[str, Any]:
    return {"method": "GET", "path": "/probe/mcp", "headers": [(b"mcp-session-id", session_id.encode())]}


async def no_body() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def test_two_replicas_taking_one_dead_session_over_at_once_make_one_owner() -> None:
    store = MemoryStore()
    forwarder = FakeForwarder(dead={"http://dead:8080"})
    dead = ReplicaDirectory(store, "http://dead:8080", replica_id="dead")
    await dead.register()
    records = SessionRecords(store, KEYRING, timedelta(hours=1))
    session_id = "dead.s1"
    await records.write(
        session_id, SessionRecord.of("probe", ADA, "2025-11-25", {"capabilities": {}}, "dead")
    )
    taken: list[str] = []
    started = anyio.Event()

    async def take_over(name: str, session_id: str, record: SessionRecord, principal: Principal) -> None:
        assert session_id == "dead.s1"
        taken.append(name)
        assert record.initialize_params == {"capabilities": {}}
        assert principal == ADA
        started.set()
        await anyio.sleep(0.05)

    b, _ = replica(store, "b", forwarder)
    c, _ = replica(store, "c", forwarder)
    for one in (b, c):
        await one.join()
    results: dict[str, Any] = {}

    async def route(one: SessionReplication, take: Any) -> None:
        results[one.id] = await one.route(
            scope_for(session_id), no_body, no_body, session_id, "probe", ADA, take
        )

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(route, b, lambda *a: take_over("b", *a))
        task_group.start_soon(route, c, lambda *a: take_over("c", *a))
    assert len(taken) == 1
    winner = taken[0]
    loser = "c" if winner == "b" else "b"
    assert results[winner] is not None  # served locally, by the new session
    assert results[loser] is None  # forwarded to the winner
    assert forwarder.forwarded == [f"http://{winner}:8080"]
    found = await records.read(session_id)
    assert found is not None
    assert found[0].owner == winner


async def test_another_principal_cannot_take_a_session_over() -> None:
    store = MemoryStore()
    forwarder = FakeForwarder(dead={"http://dead:8080"})
    records = SessionRecords(store, KEYRING, timedelta(hours=1))
    await records.write("dead.s1", SessionRecord.of("probe", ADA, None, {}, "dead"))
    b, _ = replica(store, "b", forwarder)
    await b.join()
    taken: list[Principal] = []

    async def take_over(name: str, record: SessionRecord, principal: Principal) -> None:
        taken.append(principal)

    for principal, service in [(GRACE, "probe"), (ADA, "other")]:
        carried_on = await b.route(
            scope_for("dead.s1"), no_body, no_body, "dead.s1", service, principal, take_over
        )
        assert carried_on is not None  # answered here: not found
    assert taken == []
    found = await records.read("dead.s1")
    assert found is not None
    assert found[0].owner == "dead"


async def test_a_record_is_sealed_and_bound_to_its_session_id() -> None:
    store = MemoryStore()
    records = SessionRecords(store, KEYRING, timedelta(hours=1))
    await records.write(
        "a.s1", SessionRecord.of("probe", ADA, None, {"clientInfo": {"name": "secret-ish"}}, "a")
    )
    stored = await store.get("front-sessions", "a.s1")
    assert stored is not None
    assert b"ada" not in stored
    assert b"secret-ish" not in stored
    await store.put("front-sessions", "a.s2", stored)
    assert await records.read("a.s2") is None


class QuietUpstream:
    def __init__(self) -> None:
        self.closed = False

    async def request(self, message: Any, related: Any) -> Any:
        return {"jsonrpc": "2.0", "id": message["id"], "result": {}}

    async def notify(self, message: Any) -> None:
        return None

    async def respond(self, message: Any) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


async def open_quiet(principal: Principal, sink: Any) -> QuietUpstream:
    return QuietUpstream()


async def test_a_live_owner_is_forwarded_to_and_never_taken_over() -> None:
    store = MemoryStore()
    forwarder = FakeForwarder(dead=set())
    owner, owner_registry = replica(store, "owner", forwarder)
    other, _ = replica(store, "other", forwarder)
    await owner.join()
    await other.join()  # after the owner: it knows it
    session = await owner_registry.create("probe", ADA, open_quiet)  # type: ignore[arg-type]
    assert session.id.startswith("owner.")
    await owner.remember(session, "2025-11-25", {})

    async def take_over(*args: Any) -> None:
        raise AssertionError("a live owner's session was taken over")

    answered = await other.route(scope_for(session.id), no_body, no_body, session.id, "probe", ADA, take_over)
    assert answered is None
    assert forwarder.forwarded == ["http://owner:8080"]


async def test_an_owner_that_lost_its_session_to_another_replica_closes_its_copy() -> None:
    store = MemoryStore()
    b, registry = replica(store, "b", FakeForwarder(dead=set()))
    await b.join()
    session = await registry.create("probe", ADA, open_quiet)  # type: ignore[arg-type]
    await b.remember(session, None, {})
    records = SessionRecords(store, KEYRING, timedelta(hours=1))
    found = await records.read(session.id)
    assert found is not None
    assert await records.claim(session.id, found[1], found[0], "c") is not None  # b was taken for dead
    b._renewal_interval = 0  # renew at once
    session.last_seen += 1
    await b._renew_records()
    assert registry.find(session.id) is None
    assert session.closed.is_set()
    still = await records.read(session.id)
    assert still is not None
    assert still[0].owner == "c"  # closing the copy left the new owner's record alone


async def test_deleting_a_session_removes_its_record() -> None:
    store = MemoryStore()
    b, registry = replica(store, "b", FakeForwarder(dead=set()))
    await b.join()
    session = await registry.create("probe", ADA, open_quiet)  # type: ignore[arg-type]
    await b.remember(session, None, {})
    await registry.close(session)
    assert await store.get("front-sessions", session.id) is None


def gateway_on(storage: dict[str, Any], **proxy: Any) -> Gateway:
    here = "http://127.0.0.1:9"
    auth = {
        "kind": "oauth",
        "issuer": here,
        "idp": {
            "provider": "oidc",
            "clientId": "c",
            "clientSecret": "s",
            "redirectUri": f"{here}/oauth/callback",
            "discoveryUrl": f"{here}/.well-known/openid-configuration",
        },
        "allowedDomains": ["example.com"],
        "encryptionKey": "k" * 32,
        "storage": storage,
    }
    config = {"proxy": {"baseURL": here, "addr": "127.0.0.1:9", "auth": auth, **proxy}, "mcpServers": {}}
    return Gateway(GatewayConfig.model_validate(config))


def test_a_single_replica_has_no_replication_and_plain_session_ids(tmp_path: Any) -> None:
    for storage in [{"kind": "memory"}, {"kind": "sqlite", "path": str(tmp_path / "state.db")}]:
        gateway = gateway_on(storage)
        assert gateway.replication is None
        assert owner_of(gateway.sessions.new_id()) is None


def test_replicas_on_a_shared_store_name_themselves_in_session_ids() -> None:
    gateway = gateway_on(
        {"kind": "redis", "url": "redis://127.0.0.1:6379/9"}, advertiseURL="http://10.0.0.5:8080"
    )
    assert gateway.replication is not None
    assert gateway.replication.directory.address == "http://10.0.0.5:8080"
    assert owner_of(gateway.sessions.new_id()) == gateway.replication.id
    with pytest.raises(GatewayError, match=r"proxy\.advertiseURL"):
        gateway_on({"kind": "redis", "url": "redis://127.0.0.1:6379/9"}, advertiseURL="http://10.0.0.5/path")
