import base64
import hashlib
import hmac

import pytest

from mcp_front.crypto.keyring import DecryptionError, Keyring, key_id

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
CONTEXT = b"credentials:notion:alice@example.com"


def test_round_trip_and_token_shape() -> None:
    ring = Keyring([NEW])
    token = ring.encrypt(b"secret value", context=CONTEXT)
    version, kid, nonce, _ = token.split(b".")
    assert version == b"v1"
    assert kid.decode() == ring.current_kid == key_id(NEW)
    assert len(base64.urlsafe_b64decode(nonce + b"=" * (-len(nonce) % 4))) == 12
    assert b"secret" not in token
    assert ring.decrypt(token, context=CONTEXT) == b"secret value"
    assert ring.decrypt(token.decode(), context=CONTEXT) == b"secret value"
    assert ring.encrypt(b"", context=CONTEXT) != ring.encrypt(b"", context=CONTEXT)
    assert ring.decrypt(ring.encrypt(b"", context=b""), context=b"") == b""


def test_key_id_is_truncated_hmac() -> None:
    expected = hmac.new(NEW, b"mcp-front key id", hashlib.sha256).digest()[:8].hex()
    assert key_id(NEW) == expected
    assert len(expected) == 16


def test_rotation_old_tokens_decrypt_new_ones_use_the_first_key() -> None:
    old_ring = Keyring([OLD])
    old_token = old_ring.encrypt(b"kept", context=CONTEXT)
    rotated = Keyring([NEW, OLD])
    assert rotated.kids == (key_id(NEW), key_id(OLD))
    assert rotated.decrypt(old_token, context=CONTEXT) == b"kept"
    assert rotated.needs_rotation(old_token)
    new_token = rotated.encrypt(b"kept", context=CONTEXT)
    assert new_token.split(b".")[1].decode() == key_id(NEW)
    assert not rotated.needs_rotation(new_token)
    assert rotated.needs_rotation(b"garbage")
    with pytest.raises(DecryptionError):
        old_ring.decrypt(new_token, context=CONTEXT)


def test_wrong_context_fails_and_names_the_kid() -> None:
    ring = Keyring([NEW])
    token = ring.encrypt(b"secret", context=CONTEXT)
    with pytest.raises(DecryptionError) as caught:
        ring.decrypt(token, context=b"credentials:notion:mallory@example.com")
    assert caught.value.kid == key_id(NEW)
    assert key_id(NEW) in str(caught.value)


def test_tampering_with_any_byte_fails() -> None:
    ring = Keyring([NEW])
    token = ring.encrypt(b"secret value", context=CONTEXT)
    for index in range(len(token)):
        if token[index : index + 1] == b".":
            continue
        for replacement in (b"A", b"B"):
            tampered = token[:index] + replacement + token[index + 1 :]
            if tampered == token:
                continue
            with pytest.raises(DecryptionError):
                ring.decrypt(tampered, context=CONTEXT)


def test_truncated_and_malformed_tokens_fail() -> None:
    ring = Keyring([NEW])
    token = ring.encrypt(b"secret value", context=CONTEXT)
    bad_tokens: list[bytes | str] = [
        token[:-1],
        token[:-22],
        b"",
        b"v2" + token[2:],
        token + b".x",
        b"v1.zz.aa.bb",
        "v1.é.a.b",
    ]
    for bad in bad_tokens:
        with pytest.raises(DecryptionError):
            ring.decrypt(bad, context=CONTEXT)


def test_unknown_kid_is_named() -> None:
    token = Keyring([OLD]).encrypt(b"secret", context=CONTEXT)
    with pytest.raises(DecryptionError, match=key_id(OLD)) as caught:
        Keyring([NEW]).decrypt(token, context=CONTEXT)
    assert caught.value.kid == key_id(OLD)
    assert "secret" not in str(caught.value)


def test_keys_must_be_32_distinct_bytes_and_errors_never_echo_them() -> None:
    short = b"short-key-material-0123456789"
    with pytest.raises(ValueError, match="32 bytes") as caught:
        Keyring([NEW, short])
    assert "short-key" not in str(caught.value)
    assert "key 1" in str(caught.value)
    with pytest.raises(ValueError, match="at least one"):
        Keyring([])
    with pytest.raises(ValueError, match="repeats"):
        Keyring([NEW, NEW])
    assert NEW.hex() not in repr(Keyring([NEW]))


@pytest.mark.parametrize(
    "text",
    [
        NEW.hex(),
        NEW.hex().upper(),
        base64.b64encode(NEW).decode(),
        base64.b64encode(NEW).decode().rstrip("="),
        base64.urlsafe_b64encode(NEW).decode(),
        f"  {NEW.hex()}\n",
    ],
)
def test_from_secret_hex_and_base64(text: str) -> None:
    assert Keyring.from_secret(text).current_kid == key_id(NEW)


def test_from_secret_raw_32_characters_and_previous_keys() -> None:
    raw = "0123456789abcdefghijklmnopqrstuv"
    ring = Keyring.from_secret(raw, previous=[OLD.hex()])
    assert ring.kids == (key_id(raw.encode()), key_id(OLD))


@pytest.mark.parametrize(
    "text",
    ["too-short-secret", "x" * 33, "g" * 64, base64.b64encode(b"\x01" * 31).decode(), "é" * 32, ""],
)
def test_from_secret_rejects_other_forms_without_echoing(text: str) -> None:
    with pytest.raises(ValueError, match="encryptionKey must be 32 bytes") as caught:
        Keyring.from_secret(text)
    if text:
        assert text not in str(caught.value)
