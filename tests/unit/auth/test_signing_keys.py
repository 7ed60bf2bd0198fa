import anyio

from mcp_front.auth.signing_keys import NAMESPACE, load_signing_keys, rotate_signing_keys
from mcp_front.auth.tokens import SigningKey
from mcp_front.crypto.keyring import Keyring
from mcp_front.storage import MemoryStore

KEYRING = Keyring([b"k" * 32])


async def test_the_first_load_generates_and_later_loads_read_the_same_key() -> None:
    store = MemoryStore()
    first = await load_signing_keys(store, KEYRING)
    second = await load_signing_keys(store, KEYRING)
    assert first.current.kid == second.current.kid
    sealed = await store.get(NAMESPACE, "keys")
    assert sealed is not None
    assert b"PRIVATE KEY" not in sealed


async def test_replicas_starting_together_agree_on_one_key() -> None:
    store = MemoryStore()
    kids: list[str] = []

    async def start() -> None:
        kids.append((await load_signing_keys(store, KEYRING)).current.kid)

    async with anyio.create_task_group() as replicas:
        for _ in range(10):
            replicas.start_soon(start)
    assert len(set(kids)) == 1


async def test_rotation_keeps_old_keys_for_verification() -> None:
    store = MemoryStore()
    before = await load_signing_keys(store, KEYRING)
    rotated = await rotate_signing_keys(store, KEYRING, keep=1)
    assert rotated.current.kid != before.current.kid
    assert [key.kid for key in rotated.previous] == [before.current.kid]
    assert (await load_signing_keys(store, KEYRING)).current.kid == rotated.current.kid


async def test_a_rotated_encryption_key_reseals_the_stored_keys() -> None:
    store = MemoryStore()
    original = await load_signing_keys(store, KEYRING)
    new_ring = Keyring([b"n" * 32, b"k" * 32])
    assert (await load_signing_keys(store, new_ring)).current.kid == original.current.kid
    sealed = await store.get(NAMESPACE, "keys")
    assert sealed is not None
    assert not new_ring.needs_rotation(sealed)
    assert (await load_signing_keys(store, Keyring([b"n" * 32]))).current.kid == original.current.kid


async def test_a_configured_key_wins() -> None:
    configured = SigningKey.generate()
    keys = await load_signing_keys(MemoryStore(), KEYRING, configured_pem=configured.to_pem())
    assert keys.current.kid == configured.kid
