import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_front.auth.audience import AudienceValidator
from mcp_front.auth.tokens import (
    AccessTokenClaims,
    ExpiredToken,
    InvalidToken,
    InvalidTokenReason,
    SigningKey,
    SigningKeys,
    TokenIssuer,
)
from mcp_front.auth.tokens.keys import _public_members, _thumbprint
from mcp_front.crypto.keyring import Keyring

ISSUER = "https://gw.example.com"
AUD = "https://gw.example.com/svc"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


KEY = SigningKey.generate()


def make_issuer(keys: SigningKeys | None = None, clock: Clock | None = None) -> TokenIssuer:
    return TokenIssuer(keys or SigningKeys(KEY), ISSUER, clock=clock or Clock())


def issue(issuer: TokenIssuer, **overrides: Any) -> str:
    params: dict[str, Any] = {
        "subject": "alice",
        "audience": AUD,
        "client_id": "client-1",
        "scope": ["read", "write"],
        "email": "alice@example.com",
    }
    params.update(overrides)
    return issuer.issue_access_token(**params).token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def covering(request_url: str) -> Callable[[str], bool]:
    return lambda aud: AudienceValidator.covers(aud, request_url)


def refused(issuer: TokenIssuer, token: str, audience: Any = AUD) -> InvalidTokenReason:
    with pytest.raises(InvalidToken) as caught:
        issuer.verify_access_token(token, audience=audience)
    return caught.value.reason


def test_issue_then_verify_round_trip() -> None:
    issuer = make_issuer()
    issued = issuer.issue_access_token(
        subject="alice",
        audience=AUD,
        client_id="client-1",
        scope=["read", "write"],
        email="alice@example.com",
        extra={"groups": ["eng"]},
    )
    assert issued.expires_at == int(NOW) + 3600
    assert issued.token not in repr(issued)
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}
    claims = issuer.verify_access_token(issued.token, audience=AUD)
    assert claims == AccessTokenClaims(
        issuer=ISSUER,
        subject="alice",
        audience=AUD,
        client_id="client-1",
        scope=("read", "write"),
        email="alice@example.com",
        jti=issued.jti,
        issued_at=int(NOW),
        expires_at=int(NOW) + 3600,
        not_before=int(NOW),
        extra={"groups": ["eng"]},
    )
    raw = jwt.decode(issued.token, options={"verify_signature": False})
    assert raw["scope"] == "read write"
    assert set(raw) == {
        "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "email", "groups"
    }  # fmt: skip


def test_jti_is_random_and_email_optional() -> None:
    issuer = make_issuer()
    first = issuer.issue_access_token(subject="s", audience=AUD, client_id="c", scope=[], email=None)
    second = issuer.issue_access_token(subject="s", audience=AUD, client_id="c", scope=[], email=None)
    assert first.jti != second.jti
    claims = issuer.verify_access_token(first.token, audience=AUD)
    assert (claims.email, claims.scope) == (None, ())


def test_issue_rejects_bad_scope_and_reserved_extra_claims() -> None:
    issuer = make_issuer()
    with pytest.raises(ValueError, match="scope"):
        issue(issuer, scope=["read write"])
    with pytest.raises(TypeError):
        issue(issuer, scope="read")
    with pytest.raises(ValueError, match="aud"):
        issue(issuer, extra={"aud": "https://elsewhere"})


def test_audience_predicate_with_path_boundary() -> None:
    issuer = make_issuer()
    token = issue(issuer)
    for url in [AUD, AUD + "/mcp", AUD + "/sse", AUD + "/message?sessionId=1"]:
        issuer.verify_access_token(token, audience=covering(url))
    for url in [AUD + "2", AUD + "2/mcp", "https://gw.example.com/other/mcp"]:
        assert refused(issuer, token, covering(url)) is InvalidTokenReason.WRONG_AUDIENCE


def test_wrong_audience_exact_and_svc2() -> None:
    issuer = make_issuer()
    assert refused(issuer, issue(issuer), AUD + "2") is InvalidTokenReason.WRONG_AUDIENCE
    assert refused(issuer, issue(issuer, audience=AUD + "2"), AUD) is InvalidTokenReason.WRONG_AUDIENCE


def test_aud_as_a_single_element_list_is_accepted_but_not_several() -> None:
    issuer = make_issuer()
    base = jwt.decode(issue(issuer), options={"verify_signature": False})
    headers = {"typ": "at+jwt", "kid": KEY.kid}
    single = jwt.encode({**base, "aud": [AUD]}, KEY.private_key, algorithm="ES256", headers=headers)
    assert issuer.verify_access_token(single, audience=AUD).audience == AUD
    several = jwt.encode(
        {**base, "aud": [AUD, AUD + "2"]}, KEY.private_key, algorithm="ES256", headers=headers
    )
    assert refused(issuer, several) is InvalidTokenReason.WRONG_AUDIENCE


def test_tampered_payload_is_a_bad_signature() -> None:
    issuer = make_issuer()
    header, payload, signature = issue(issuer).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    assert refused(issuer, f"{header}.{b64json(claims)}.{signature}") is InvalidTokenReason.BAD_SIGNATURE


def test_tampered_signature_is_a_bad_signature() -> None:
    issuer = make_issuer()
    header, payload, signature = issue(issuer).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 0x01
    assert refused(issuer, f"{header}.{payload}.{b64(bytes(raw))}") is InvalidTokenReason.BAD_SIGNATURE


def test_alg_none_is_refused() -> None:
    issuer = make_issuer()
    payload = issue(issuer).split(".")[1]
    for alg in ["none", "None", "NONE"]:
        token = f"{b64json({'alg': alg, 'typ': 'at+jwt', 'kid': KEY.kid})}.{payload}."
        assert refused(issuer, token) is InvalidTokenReason.UNSUPPORTED_ALG


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    issuer = make_issuer()
    payload = issue(issuer).split(".")[1]
    public_pem = KEY.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'at+jwt', 'kid': KEY.kid})}.{payload}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert refused(issuer, f"{signing_input}.{b64(signature)}") is InvalidTokenReason.UNSUPPORTED_ALG


def test_alg_that_does_not_match_the_key_is_refused() -> None:
    issuer = make_issuer()
    _, payload, signature = issue(issuer).split(".")
    forged = b64json({"alg": "RS256", "typ": "at+jwt", "kid": KEY.kid})
    assert refused(issuer, f"{forged}.{payload}.{signature}") is InvalidTokenReason.UNSUPPORTED_ALG


def test_unknown_kid_is_refused() -> None:
    issuer = make_issuer()
    other = make_issuer(SigningKeys(SigningKey.generate()))
    assert refused(issuer, issue(other)) is InvalidTokenReason.UNKNOWN_KID
    _, payload, signature = issue(issuer).split(".")
    no_kid = b64json({"alg": "ES256", "typ": "at+jwt"})
    assert refused(issuer, f"{no_kid}.{payload}.{signature}") is InvalidTokenReason.UNKNOWN_KID


def test_expired_with_leeway() -> None:
    clock = Clock()
    issuer = make_issuer(clock=clock)
    token = issue(issuer)
    clock.now = NOW + 3600 + 29
    issuer.verify_access_token(token, audience=AUD)
    clock.now = NOW + 3600 + 30
    with pytest.raises(ExpiredToken) as caught:
        issuer.verify_access_token(token, audience=AUD)
    assert caught.value.reason is InvalidTokenReason.EXPIRED


def test_not_yet_valid() -> None:
    clock = Clock(NOW + 120)
    issuer = make_issuer(clock=clock)
    token = issue(issuer)
    clock.now = NOW + 91
    issuer.verify_access_token(token, audience=AUD)
    clock.now = NOW
    assert refused(issuer, token) is InvalidTokenReason.NOT_YET_VALID


def test_wrong_issuer() -> None:
    other = TokenIssuer(SigningKeys(KEY), "https://evil.example.com", clock=Clock())
    assert refused(make_issuer(), issue(other)) is InvalidTokenReason.WRONG_ISSUER


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT-foo", None])
def test_other_token_types_are_refused(typ: str | None) -> None:
    issuer = make_issuer()
    base = jwt.decode(issue(issuer), options={"verify_signature": False})
    headers: dict[str, Any] = {"kid": KEY.kid, "typ": typ}
    token = jwt.encode(base, KEY.private_key, algorithm="ES256", headers=headers)
    assert refused(issuer, token) is InvalidTokenReason.WRONG_TYPE


def test_an_id_token_is_refused() -> None:
    issuer = make_issuer()
    id_claims = {"iss": ISSUER, "sub": "alice", "aud": AUD, "exp": NOW + 60, "iat": NOW, "nonce": "n"}
    id_token = jwt.encode(id_claims, KEY.private_key, algorithm="ES256", headers={"kid": KEY.kid})
    assert refused(issuer, id_token) is InvalidTokenReason.WRONG_TYPE


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "!!!.???.###", "a.b.c.d"])
def test_malformed(token: str) -> None:
    assert refused(make_issuer(), token) is InvalidTokenReason.MALFORMED


def test_missing_required_claim_is_malformed() -> None:
    issuer = make_issuer()
    base = jwt.decode(issue(issuer), options={"verify_signature": False})
    del base["client_id"]
    token = jwt.encode(base, KEY.private_key, algorithm="ES256", headers={"typ": "at+jwt", "kid": KEY.kid})
    assert refused(issuer, token) is InvalidTokenReason.MALFORMED


def test_error_messages_do_not_contain_the_token() -> None:
    issuer = make_issuer()
    token = issue(issuer)
    with pytest.raises(InvalidToken) as caught:
        issuer.verify_access_token(token, audience=AUD + "2")
    assert token not in str(caught.value)
    assert token.split(".")[1] not in str(caught.value)


def test_rotation_keeps_previous_keys_verifying() -> None:
    old = SigningKeys(KEY)
    issuer = make_issuer(old)
    old_token = issue(issuer)
    new_key = SigningKey.generate()
    issuer.keys = old.rotate(new_key)
    assert issuer.keys.current is new_key
    assert issuer.verify_access_token(old_token, audience=AUD).subject == "alice"
    new_token = issue(issuer)
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert refused(make_issuer(old), new_token) is InvalidTokenReason.UNKNOWN_KID
    dropped = issuer.keys.rotate(SigningKey.generate(), keep=1)
    assert [k.kid for k in dropped.previous] == [new_key.kid]
    issuer.keys = dropped
    assert refused(issuer, old_token) is InvalidTokenReason.UNKNOWN_KID


def test_jwks_has_public_members_only() -> None:
    rsa_key = SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    keys = SigningKeys(KEY, [rsa_key, KEY])
    jwks = keys.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [KEY.kid, rsa_key.kid]
    ec_jwk, rsa_jwk = jwks["keys"]
    assert set(ec_jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert set(rsa_jwk) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (ec_jwk["alg"], rsa_jwk["alg"], ec_jwk["use"]) == ("ES256", "RS256", "sig")
    for jwk in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    assert isinstance(jwt.PyJWK(ec_jwk).key, ec.EllipticCurvePublicKey)


def test_kid_is_the_rfc7638_thumbprint() -> None:
    jwk = KEY.public_jwk()
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    assert KEY.kid == b64(hashlib.sha256(canonical.encode()).digest())
    # The RFC 7638 §3.1 example key.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    rsa_public = rsa.RSAPublicNumbers(
        e=65537, n=int.from_bytes(base64.urlsafe_b64decode(n + "=="), "big")
    ).public_key()
    assert jwt.PyJWK({"kty": "RSA", "n": n, "e": "AQAB"}).key.public_numbers() == rsa_public.public_numbers()
    assert _thumbprint(_public_members(rsa_public)) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_pem_round_trip_sealed_by_the_keyring() -> None:
    ring = Keyring([bytes(32)])
    sealed = ring.encrypt(KEY.to_pem().encode(), context=b"signing-key")
    loaded = SigningKey.from_pem(ring.decrypt(sealed, context=b"signing-key").decode())
    assert loaded == KEY
    assert loaded.kid == KEY.kid
    assert "PRIVATE" not in repr(loaded)
    assert KEY.to_pem().startswith("-----BEGIN PRIVATE KEY-----")


def test_rs256_keys_from_pem_sign_and_verify() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    key = SigningKey.from_pem(pem)
    assert key.alg == "RS256"
    issuer = make_issuer(SigningKeys(key))
    token = issue(issuer)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert issuer.verify_access_token(token, audience=AUD).subject == "alice"


def test_unsupported_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="P-256"):
        SigningKey(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="2048"):
        SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505
    with pytest.raises(ValueError, match="PEM"):
        SigningKey.from_pem("not a key")


def test_ttl_is_configurable() -> None:
    issuer = TokenIssuer(SigningKeys(KEY), ISSUER, access_token_ttl=timedelta(minutes=5), clock=Clock())
    assert (
        issuer.issue_access_token(subject="s", audience=AUD, client_id="c", scope=[], email=None).expires_at
        == int(NOW) + 300
    )
    with pytest.raises(ValueError, match="positive"):
        TokenIssuer(SigningKeys(KEY), ISSUER, access_token_ttl=timedelta(0))
