import anyio

from mcp_front.auth.signing_keys import NAMESPACE, SigningKeysWatch, load_signing_keys, rotate_signing_keys
from mcp_front.auth.tokens import SigningKey, TokenIssuer
from mcp_front.crypto.keyring import Keyring
from mcp_front.storage import MemoryStore
from mcp_front.storage.redis import RedisStore
from tests.unit.storage.test_redis import prefix, reachable  # noqa: F401 - a fixture

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


async def test_a_rotation_on_one_replica_is_loaded_by_the_running_others(
    prefix: str,  # noqa: F811 - the fixture imported above
) -> None:
    """Two processes' stores on one Redis: a rotation elsewhere (the CLI's, say) reaches the
    running replica's issuer, and a token signed with the new key verifies there."""
    here = RedisStore(await reachable(), prefix=prefix)
    there = RedisStore(await reachable(), prefix=prefix)
    try:
        issuer = TokenIssuer(await load_signing_keys(here, KEYRING), "https://gw.example.com")
        watch = SigningKeysWatch(here, KEYRING, issuer)
        async with anyio.create_task_group() as group:
            group.start_soon(watch.run)
            await anyio.sleep(0.5)  # listening
            rotated = await rotate_signing_keys(there, KEYRING)
            with anyio.fail_after(10):
                while issuer.keys.current.kid != rotated.current.kid:
                    await anyio.sleep(0.02)
            other = TokenIssuer(rotated, "https://gw.example.com")
            token = other.issue_access_token(
                subject="ada",
                client_id="c",
                audience="https://gw.example.com/probe",
                scope=["mcp"],
                email=None,
            )
            claims = issuer.verify_access_token(token.token, audience=lambda audience: True)
            assert claims.subject == "ada"
            group.cancel_scope.cancel()
    finally:
        await here.aclose()
        await there.aclose()
