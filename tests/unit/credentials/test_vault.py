import json
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from mcp_front.credentials import CREDENTIALS_NAMESPACE, Credential, CredentialVault
from mcp_front.crypto import Keyring, digest, key_id
from mcp_front.storage import MemoryStore, SQLiteStore
from tests.support.counting_store import CountingStore

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
ALICE = "user:alice"
BOB = "user:bob"


ALICE_TOKEN = "secret_alice"


def notion(token: str = ALICE_TOKEN, **changes: object) -> Credential:
    values: dict[str, object] = {"service": "notion", "kind": "manual", "access_token": token}
    values["updated_at"] = 1.0
    values.update(changes)
    return Credential(**values)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_round_trip_and_nothing_readable_at_rest() -> None:
    store = MemoryStore()
    vault = CredentialVault(store, Keyring([NEW]))
    await vault.put(ALICE, notion(refresh_token="refresh_secret"))
    assert await vault.get(ALICE, "notion") == notion(refresh_token="refresh_secret")
    assert await vault.get(BOB, "notion") is None
    entries = await store.scan(CREDENTIALS_NAMESPACE)
    assert len(entries) == 1
    key, sealed = entries[0]
    assert "alice" not in key
    assert key.endswith("/notion")
    for secret in (b"secret_alice", b"refresh_secret", b"alice", b"connected", b"manual"):
        assert secret not in sealed
    assert "secret_alice" not in repr(notion())


async def test_a_record_moved_to_another_user_or_service_does_not_open() -> None:
    store = MemoryStore()
    vault = CredentialVault(store, Keyring([NEW]), cache_ttl=timedelta(0))
    await vault.put(ALICE, notion())
    await vault.put(BOB, notion("secret_bob"))
    await vault.put(ALICE, notion("linear_alice", service="linear"))
    by_key = dict(await store.scan(CREDENTIALS_NAMESPACE))
    alice_notion = next(k for k, v in by_key.items() if k.endswith("/notion") and vault_owner(k, ALICE))
    bob_notion = next(k for k in by_key if k.endswith("/notion") and k != alice_notion)
    alice_linear = next(k for k in by_key if k.endswith("/linear"))
    # Mallory with write access to the store copies Alice's sealed value into Bob's record.
    await store.put(CREDENTIALS_NAMESPACE, bob_notion, by_key[alice_notion])
    with pytest.raises(Exception, match="cannot be opened"):
        await vault.get(BOB, "notion")
    # ... or Alice's Linear token over her Notion one.
    await store.put(CREDENTIALS_NAMESPACE, alice_notion, by_key[alice_linear])
    with pytest.raises(Exception, match="cannot be opened"):
        await vault.get(ALICE, "notion")
    # The listing leaves the unreadable one out instead of failing.
    assert set(await vault.of_user(ALICE)) == {"linear"}


def vault_owner(key: str, user: str) -> bool:
    return key.startswith(digest(user).hex())


async def test_a_value_under_the_old_key_is_resealed_when_read_and_by_reseal_all() -> None:
    store = MemoryStore()
    await CredentialVault(store, Keyring([OLD])).put(ALICE, notion())
    await CredentialVault(store, Keyring([OLD])).put(BOB, notion("secret_bob"))
    rotated = CredentialVault(store, Keyring([NEW, OLD]))
    assert await rotated.get(ALICE, "notion") == notion()
    kids = {sealed.split(b".")[1].decode() for _, sealed in await store.scan(CREDENTIALS_NAMESPACE)}
    assert kids == {key_id(NEW), key_id(OLD)}
    assert await rotated.reseal_all() == 1
    kids = {sealed.split(b".")[1].decode() for _, sealed in await store.scan(CREDENTIALS_NAMESPACE)}
    assert kids == {key_id(NEW)}
    assert await rotated.reseal_all() == 0
    # The old key can go now: every credential still opens.
    only_new = CredentialVault(store, Keyring([NEW]))
    assert await only_new.get(BOB, "notion") == notion("secret_bob")
    assert await only_new.get(ALICE, "notion") == notion()


async def test_reads_are_cached_and_own_writes_seen_at_once() -> None:
    store = MemoryStore()
    clock = Clock()
    vault = CredentialVault(store, Keyring([NEW]), clock=clock)
    other = CredentialVault(store, Keyring([NEW]), clock=clock)
    await vault.put(ALICE, notion())
    await other.put(ALICE, notion("changed_elsewhere"))
    assert (await vault.get(ALICE, "notion")) == notion()  # cached
    clock.now += 31
    assert (await vault.get(ALICE, "notion")) == notion("changed_elsewhere")
    await vault.put(ALICE, notion("mine"))
    assert (await vault.get(ALICE, "notion")) == notion("mine")
    assert await vault.delete(ALICE, "notion") == notion("mine")
    assert await vault.get(ALICE, "notion") is None
    assert await vault.delete(ALICE, "notion") is None


async def test_swap_lets_exactly_one_of_two_writers_win(tmp_path: Path) -> None:
    async with SQLiteStore.open(tmp_path / "s.sqlite3") as store:
        first = CredentialVault(store, Keyring([NEW]))
        second = CredentialVault(store, Keyring([NEW]))
        await first.put(ALICE, notion("v1", kind="oauth", refresh_token="r1"))
        seen_first = await first.load(ALICE, "notion", fresh=True)
        seen_second = await second.load(ALICE, "notion", fresh=True)
        assert seen_first is not None
        assert seen_second is not None
        results: list[bool] = []

        async def write(vault: CredentialVault, seen: object, token: str) -> None:
            results.append(await vault.swap(ALICE, seen, notion(token, kind="oauth")))  # type: ignore[arg-type]

        async with anyio.create_task_group() as group:
            group.start_soon(write, first, seen_first, "v2a")
            group.start_soon(write, second, seen_second, "v2b")
        assert sorted(results) == [False, True]
        stored = await CredentialVault(store, Keyring([NEW])).get(ALICE, "notion")
        assert stored is not None
        assert stored.access_token in {"v2a", "v2b"}


def test_record_round_trips_through_bytes() -> None:
    credential = notion(
        kind="oauth", refresh_token="r", expires_at=5.0, scope="read", state="error", problem="x"
    )
    assert Credential.from_bytes(credential.to_bytes()) == credential
    assert json.loads(credential.to_bytes())["service"] == "notion"
    assert credential.expires_within(10, now=0.0)
    assert not credential.expires_within(1, now=0.0)
    assert not notion().expires_within(1e9, now=0.0)


async def test_a_change_on_another_replica_drops_the_cached_copy_at_once() -> None:
    store = CountingStore(MemoryStore())
    clock = Clock()
    mine = CredentialVault(store, Keyring([NEW]), clock=clock)
    theirs = CredentialVault(store, Keyring([NEW]), clock=clock)
    async with anyio.create_task_group() as group:
        group.start_soon(mine.run)
        group.start_soon(theirs.run)
        await anyio.wait_all_tasks_blocked()
        await mine.put(ALICE, notion())
        reads = store.calls["get"]
        clock.now += 300  # past the unlistened cache lifetime: still trusted while listening
        assert await mine.get(ALICE, "notion") == notion()
        assert store.calls["get"] == reads
        await theirs.put(ALICE, notion("renewed_elsewhere"))
        assert await mine.get(ALICE, "notion") == notion("renewed_elsewhere")
        await theirs.delete(ALICE, "notion")
        assert await mine.get(ALICE, "notion") is None
        # A vault's own writes do not empty its own cache.
        reads = store.calls["get"]
        await theirs.put(ALICE, notion("again"))
        assert await theirs.get(ALICE, "notion") == notion("again")
        assert store.calls["get"] == reads
        group.cancel_scope.cancel()
