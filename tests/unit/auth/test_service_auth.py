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
    second = auth.authenticate("bearer tok-b")
    assert second is not None
    # One identity (sessions, limits), but not one caller: a service in front of others may
    # find that their guards take only one of the two tokens.
    assert second.key == first.key
    assert second != first
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


def test_basic_password_is_verified() -> None:
    auth = credentials()
    principal = auth.authenticate(basic("admin", "s3cret"))
    assert principal is not None
    assert principal.subject == "linear:basic:admin"
    assert auth.authenticate(basic("admin", "s3cret")) == principal
    assert auth.authenticate(basic("admin", "s3cret" + "x")) is None
    assert auth.authenticate(basic("admin:s3cret", "")) is None
    assert auth.schemes == ("Bearer", "Basic")


def test_a_principal_carries_its_credentials_fingerprint_never_the_secret() -> None:
    auth = credentials()
    principal = auth.authenticate("Bearer ci-token")
    assert principal is not None
    assert principal.credential == crypto.fingerprint("bearer\0ci-token")
    assert "ci-token" not in repr(principal)
    assert principal.credential is not None
    assert principal.credential.hex() not in repr(principal)


def test_another_service_admits_a_caller_its_own_credentials_would_let_in() -> None:
    aggregate = StaticCredentials("all", [BearerServiceAuth(type="bearer", tokens=[SecretStr("shared")])])
    caller = aggregate.authenticate("Bearer shared")
    assert caller is not None
    member = StaticCredentials("db", [BearerServiceAuth(type="bearer", tokens=[SecretStr("shared")])])
    other = StaticCredentials("ops", [BearerServiceAuth(type="bearer", tokens=[SecretStr("different")])])
    assert caller.key != member.authenticate("Bearer shared").key  # type: ignore[union-attr]
    assert member.admits(caller)
    assert not other.admits(caller)
    named = StaticCredentials("x", [BearerServiceAuth(type="bearer", tokens=[SecretStr("t")], user="bot")])
    same_name = StaticCredentials(
        "y", [BearerServiceAuth(type="bearer", tokens=[SecretStr("u")], user="bot")]
    )
    bot = named.authenticate("Bearer t")
    assert bot is not None
    assert same_name.admits(bot)
