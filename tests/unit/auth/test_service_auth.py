import base64

from pydantic import SecretStr

from mcp_front import crypto
from mcp_front.auth.service_auth import StaticCredentials
from mcp_front.config import BasicServiceAuth, BearerServiceAuth


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def credentials() -> StaticCredentials:
    return StaticCredentials(
        "linear",
        [
            BearerServiceAuth(type="bearer", tokens=[SecretStr("tok-a"), SecretStr("tok-b")]),
            BearerServiceAuth(type="bearer", tokens=[SecretStr("ci-token")], user="ci-bot@example.com"),
            BasicServiceAuth(type="basic", username="admin", password=SecretStr("s3cret")),
        ],
    )


def test_bearer_tokens_map_to_their_principals() -> None:
    auth = credentials()
    first = auth.authenticate("Bearer tok-a")
    assert first is not None
    assert first.subject == "linear:serviceAuths[0]"
    assert first.kind == "service"
    assert auth.authenticate("bearer tok-b") == first
    bot = auth.authenticate("Bearer ci-token")
    assert bot is not None
    assert (bot.subject, bot.email) == ("ci-bot@example.com", "ci-bot@example.com")


def test_wrong_or_malformed_credentials_are_refused() -> None:
    auth = credentials()
    for header in [
        None,
        "",
        "Bearer",
        "Bearer tok-c",
        "Bearer tok-a tok-b",
        "Token tok-a",
        basic("admin", "nope"),
        basic("root", "s3cret"),
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ]:
        assert auth.authenticate(header) is None, header


def test_basic_password_is_verified_and_remembered() -> None:
    auth = credentials()
    principal = auth.authenticate(basic("admin", "s3cret"))
    assert principal is not None
    assert principal.subject == "linear:basic:admin"
    assert auth.authenticate(basic("admin", "s3cret")) == principal
    assert auth.schemes == ("Bearer", "Basic")


def test_password_hash_hides_its_secret() -> None:
    hashed = crypto.PasswordHash.of("hunter2")
    assert hashed.verify("hunter2")
    assert not hashed.verify("hunter3")
    assert "hunter2" not in repr(hashed)
    assert hashed != crypto.PasswordHash.of("hunter2")  # salted


def test_matches_any_finds_the_index() -> None:
    digests = [crypto.digest("a"), crypto.digest("b")]
    assert crypto.matches_any(crypto.digest("b"), digests) == 1
    assert crypto.matches_any(crypto.digest("c"), digests) is None
