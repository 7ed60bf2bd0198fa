"""The host's login page and `HostSignIn`, in process: what the page accepts and refuses,
and what the one-time code it hands the gateway is bound to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import anyio
import host_sign_in
import httpx2
import pytest
from fastapi import FastAPI
from host_sign_in import FAILURES_PER_ACCOUNT, Expiring, HostSignIn, PendingSignIn, SealedSignIns
from users import User, UserDirectory, hash_password

from mcp_front import IdentityProviderError
from tests.browser import form_of, submit

pytestmark = pytest.mark.anyio

PASSWORD = "a long enough password"
CALLBACK = "http://testserver/oauth/callback"
VERIFIER = "v" * 43
ADA = User(
    "user-ada", "ada@example.com", hash_password(PASSWORD), name="Ada", groups=frozenset({"engineering"})
)


@pytest.fixture(scope="module")
def users() -> UserDirectory:
    return UserDirectory([ADA])


@pytest.fixture
def sign_in(users: UserDirectory) -> HostSignIn:
    return HostSignIn(users, login_url="http://testserver/login")


@pytest.fixture
async def browser(sign_in: HostSignIn) -> AsyncIterator[httpx2.AsyncClient]:
    app = FastAPI()
    app.include_router(sign_in.router)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app), base_url="http://testserver") as http:
        yield http


def start(sign_in: HostSignIn, *, state: str = "state-1", nonce: str = "nonce-1") -> str:
    """What the gateway does when a user connects: the login URL it sends the browser to."""
    return sign_in.authorization_url(redirect_uri=CALLBACK, state=state, nonce=nonce, code_verifier=VERIFIER)


def query(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def test_the_login_url_carries_nothing_but_a_random_request_id(sign_in: HostSignIn) -> None:
    url = urlsplit(start(sign_in))
    assert url.path == "/login"
    [request_id] = parse_qs(url.query)["request"]
    assert len(request_id) >= 43
    assert CALLBACK not in request_id
    assert "state-1" not in url.query
    assert "oauth" not in url.query


async def test_the_page_is_a_form_that_cannot_be_framed_or_cached(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(start(sign_in))
    assert page.status_code == 200
    form = form_of(page.text)
    assert set(form.fields) >= {"request", "csrf", "email", "password"}
    assert form.buttons["action"] == ["sign-in", "cancel"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert form.fields["csrf"] == browser.cookies["login-csrf"]


async def test_the_right_password_sends_a_code_the_gateway_exchanges_once(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(start(sign_in))
    answer = await submit(browser, page, email="Ada@Example.com", password=PASSWORD, action="sign-in")
    back = query(answer)
    assert back["state"] == "state-1"
    identity = await sign_in.complete(
        code=back["code"], redirect_uri=CALLBACK, code_verifier=VERIFIER, nonce="nonce-1"
    )
    assert (identity.subject, identity.email, identity.email_verified) == (
        "user-ada",
        "ada@example.com",
        True,
    )
    assert identity.groups == frozenset({"engineering"})
    with pytest.raises(IdentityProviderError, match="unknown, used or expired"):
        await sign_in.complete(
            code=back["code"], redirect_uri=CALLBACK, code_verifier=VERIFIER, nonce="nonce-1"
        )
    # The sign-in it finished is over: its page cannot be submitted again.
    again = await submit(browser, page, email="ada@example.com", password=PASSWORD, action="sign-in")
    assert again.status_code == 400
    assert "expired" in again.text


@pytest.mark.parametrize(
    "other",
    [
        {"code_verifier": "w" * 43},
        {"nonce": "another nonce"},
        {"redirect_uri": "https://attacker.example/cb"},
    ],
    ids=["verifier", "nonce", "callback"],
)
async def test_a_code_works_only_for_the_sign_in_it_was_issued_to(
    sign_in: HostSignIn, browser: httpx2.AsyncClient, other: dict[str, str]
) -> None:
    page = await browser.get(start(sign_in))
    code = query(await submit(browser, page, email="ada@example.com", password=PASSWORD, action="sign-in"))[
        "code"
    ]
    exchange = {"code": code, "redirect_uri": CALLBACK, "code_verifier": VERIFIER, "nonce": "nonce-1"}
    with pytest.raises(IdentityProviderError, match="another sign-in"):
        await sign_in.complete(**{**exchange, **other})
    with pytest.raises(IdentityProviderError, match="unknown, used or expired"):
        await sign_in.complete(**exchange)  # tried once, gone


@pytest.mark.parametrize("email", ["ada@example.com", "nobody@example.com"])
async def test_a_wrong_email_or_password_shows_the_form_again_and_no_code(
    sign_in: HostSignIn, browser: httpx2.AsyncClient, email: str
) -> None:
    page = await browser.get(start(sign_in))
    answer = await submit(browser, page, email=email, password="not the password", action="sign-in")
    assert answer.status_code == 401
    assert "Wrong email or password." in answer.text
    assert "location" not in answer.headers
    # The same sign-in can still finish.
    assert "code" in query(
        await submit(browser, answer, email="ada@example.com", password=PASSWORD, action="sign-in")
    )


async def test_repeated_failures_lock_the_account_even_with_the_right_password(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(start(sign_in))
    for _ in range(FAILURES_PER_ACCOUNT):
        page = await submit(browser, page, email="ada@example.com", password="guess", action="sign-in")
        assert page.status_code == 401
    locked = await submit(browser, page, email="ada@example.com", password=PASSWORD, action="sign-in")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed attempts" in locked.text


async def test_an_email_that_is_no_account_locks_as_an_account_does(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(start(sign_in))
    for _ in range(FAILURES_PER_ACCOUNT):
        page = await submit(browser, page, email="nobody@example.com", password="guess", action="sign-in")
        assert page.status_code == 401
    locked = await submit(browser, page, email="nobody@example.com", password="guess", action="sign-in")
    assert locked.status_code == 429


async def test_attempts_at_made_up_emails_do_not_flush_an_accounts_count(users: UserDirectory) -> None:
    sign_in = HostSignIn(users, login_url="http://testserver/login", max_kept=3)
    app = FastAPI()
    app.include_router(sign_in.router)

    def browser_at(address: str) -> httpx2.AsyncClient:
        # Each from an address of its own, as an attacker holding many would send them.
        transport = httpx2.ASGITransport(app, client=(address, 50000))
        return httpx2.AsyncClient(transport=transport, base_url="http://testserver")

    async with browser_at("192.0.2.1") as guesser:
        page = await guesser.get(start(sign_in))
        for _ in range(FAILURES_PER_ACCOUNT):
            page = await submit(guesser, page, email="ada@example.com", password="guess", action="sign-in")
            assert page.status_code == 401
    for number in range(2, 7):  # more made-up emails than the tables keep
        async with browser_at(f"192.0.2.{number}") as flooder:
            page = await flooder.get(start(sign_in))
            answer = await submit(
                flooder, page, email=f"made-up-{number}@example.com", password="x", action="sign-in"
            )
            assert answer.status_code == 401
    async with browser_at("192.0.2.99") as guesser:
        page = await guesser.get(start(sign_in))
        still = await submit(guesser, page, email="ada@example.com", password=PASSWORD, action="sign-in")
    assert still.status_code == 429


async def test_a_form_without_the_browsers_csrf_cookie_is_refused(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(start(sign_in))
    fields = {
        **form_of(page.text).fields,
        "email": "ada@example.com",
        "password": PASSWORD,
        "action": "sign-in",
    }
    # A page of another site posting the victim's browser into the attacker's sign-in.
    async with httpx2.AsyncClient(transport=browser._transport, base_url="http://testserver") as elsewhere:
        refused = await elsewhere.post("/login", data=fields)
    assert refused.status_code == 403
    forged = await browser.post("/login", data={**fields, "csrf": "x" * 43})
    assert forged.status_code == 403


async def test_cancel_sends_the_user_back_refused(sign_in: HostSignIn, browser: httpx2.AsyncClient) -> None:
    page = await browser.get(start(sign_in, state="state-9"))
    assert query(await submit(browser, page, action="cancel")) == {
        "error": "access_denied",
        "state": "state-9",
    }


async def test_an_unknown_sign_in_and_an_unreadable_form_are_refused(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    assert (await browser.get("/login?request=made-up")).status_code == 400
    page = await browser.get(start(sign_in))
    too_big = await browser.post("/login", data={**form_of(page.text).fields, "email": "a" * 5000})
    assert too_big.status_code == 400
    as_json = await browser.post("/login", json=form_of(page.text).fields)
    assert as_json.status_code == 400


async def test_over_https_the_cookie_is_secure_and_host_only(users: UserDirectory) -> None:
    sign_in = HostSignIn(users, login_url="https://host.example/login")
    app = FastAPI()
    app.include_router(sign_in.router)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app), base_url="https://host.example"
    ) as http:
        page = await http.get(start(sign_in))
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-login-csrf=")
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie


def test_pending_sign_ins_expire_and_are_bounded() -> None:
    expired: Expiring[str] = Expiring(seconds=0.0)
    assert expired.get(expired.add("gone")) is None
    bounded: Expiring[int] = Expiring(seconds=600.0, limit=3)
    keys = [bounded.add(number) for number in range(5)]
    assert [bounded.get(key) for key in keys] == [None, None, 2, 3, 4]
    assert bounded.take(keys[4]) == 4
    assert bounded.take(keys[4]) is None


async def test_a_tampered_or_expired_login_url_is_refused(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    request_id = parse_qs(urlsplit(start(sign_in)).query)["request"][0]
    flipped = request_id[:20] + ("A" if request_id[20] != "A" else "B") + request_id[21:]
    assert (await browser.get("/login", params={"request": flipped})).status_code == 400
    assert (await browser.get("/login", params={"request": "A" * 5000})).status_code == 400
    stale = SealedSignIns(seconds=0.0)
    assert stale.open(stale.seal(PendingSignIn(CALLBACK, "s", "n", "c"))) is None


async def test_a_burst_of_guesses_counts_whole(sign_in: HostSignIn, browser: httpx2.AsyncClient) -> None:
    page = await browser.get(start(sign_in))
    fields = {**form_of(page.text).fields, "email": "ada@example.com", "action": "sign-in"}
    answers: list[int] = []

    async def guess(number: int) -> None:
        answer = await browser.post("/login", data={**fields, "password": f"guess {number}"})
        answers.append(answer.status_code)

    async with anyio.create_task_group() as burst:
        for number in range(3 * FAILURES_PER_ACCOUNT):
            burst.start_soon(guess, number)
    assert answers.count(401) == FAILURES_PER_ACCOUNT
    assert answers.count(429) == 2 * FAILURES_PER_ACCOUNT


async def test_a_right_password_does_not_count_against_the_account(
    sign_in: HostSignIn, browser: httpx2.AsyncClient
) -> None:
    for _ in range(FAILURES_PER_ACCOUNT + 1):
        page = await browser.get(start(sign_in))
        assert "code" in query(
            await submit(browser, page, email="ada@example.com", password=PASSWORD, action="sign-in")
        )


async def test_when_too_many_checks_wait_the_page_says_to_try_again(
    sign_in: HostSignIn, browser: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_sign_in, "WAITING_PASSWORD_CHECKS", 0)
    page = await browser.get(start(sign_in))
    busy = await submit(browser, page, email="ada@example.com", password=PASSWORD, action="sign-in")
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "5"
