"""The host application as the gateway's identity provider: its own login form, its own users.

The gateway sends a user who connects an MCP client to `authorization_url()`: here, the
host's `/login` page. The user signs in with the host's email and password; the page sends
the browser back to the gateway's callback with a one-time code, and the gateway calls
`complete()` with that code to learn who signed in. From there the gateway decides, as for
any provider, whether the user may in (`allowedDomains`, `allowedGroups`, ...).

What keeps it safe:

- the gateway's callback URL, state and nonce travel sealed in the login URL (AES-GCM
  under a key of this process), so the page cannot be made to send a code elsewhere, the
  URL reveals nothing, and there is no table of pending sign-ins to fill; each works once;
- the code is random, single-use, good for a minute, and bound to the gateway's PKCE
  verifier, nonce and callback URL;
- the form carries a CSRF token that must match a cookie set with the page (login CSRF);
- attempts are limited per account and per client address, counted before the password
  is checked so that a burst counts whole; password checks run in worker threads a few
  at a time, with a bounded queue, and a request body is read up to 4 KiB;
- the pages forbid framing, scripts and referrers, and are never cached.

Codes, ended sign-ins and the attempt counts live in this process's memory, and the
sealing key is made at start: a host with several replicas shares them (its store, a key
from its secrets), or routes `/login` and the gateway's callback to one replica.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from users import UserDirectory

from mcp_front import Identity, IdentityProvider, IdentityProviderError
from mcp_front.rate_limit import address_key

SIGN_IN_SECONDS = 600.0
CODE_SECONDS = 60.0
MAX_PENDING = 10_000
MAX_FORM_BYTES = 4096
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_ADDRESS = 50
FAILURE_WINDOW_SECONDS = 900.0
CONCURRENT_PASSWORD_CHECKS = 4
WAITING_PASSWORD_CHECKS = 32
MAX_REQUEST_CHARS = 2048
CSRF_TOKEN_LENGTH = 43  # secrets.token_urlsafe(32)

T = TypeVar("T")


class Expiring(Generic[T]):
    """Values that expire, under random keys or given ones, at most `limit` of them (the oldest go first)."""

    def __init__(self, seconds: float, limit: int = MAX_PENDING) -> None:
        self._seconds = seconds
        self._limit = limit
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def add(self, value: T, key: str | None = None) -> str:
        now = time.monotonic()
        while self._items and (len(self._items) >= self._limit or next(iter(self._items.values()))[0] <= now):
            self._items.popitem(last=False)
        key = key if key is not None else secrets.token_urlsafe(32)
        self._items[key] = (now + self._seconds, value)
        return key

    def get(self, key: str) -> T | None:
        found = self._items.get(key)
        return found[1] if found is not None and found[0] > time.monotonic() else None

    def take(self, key: str) -> T | None:
        found = self._items.pop(key, None)
        return found[1] if found is not None and found[0] > time.monotonic() else None


class FailureLimit:
    """At most `limit` failures per key in a sliding window; a key over it waits for old ones to age out."""

    def __init__(
        self, limit: int, window: float = FAILURE_WINDOW_SECONDS, max_keys: int | None = MAX_PENDING
    ) -> None:
        """Past `max_keys` keys, the one that failed longest ago is forgotten; with None,
        none is (for keys whose number is bounded otherwise)."""
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        failures = self._recent(key)
        if len(failures) < self._limit:
            return 0.0
        return failures[-self._limit] + self._window - time.monotonic()

    def record(self, key: str) -> float:
        """Count an attempt as failed, and return its stamp for `forgive()`. Counting it
        before the password is checked means attempts sent together count together."""
        failures = self._recent(key)
        stamp = time.monotonic()
        failures.append(stamp)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while self._max_keys is not None and len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)
        return stamp

    def forgive(self, key: str, stamp: float) -> None:
        """Uncount an attempt that turned out right."""
        failures = self._failures.get(key)
        if failures is not None and stamp in failures:
            failures.remove(stamp)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque())
        cutoff = time.monotonic() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures


@dataclass(frozen=True)
class PendingSignIn:
    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str


@dataclass(frozen=True)
class SignInCode:
    subject: str
    redirect_uri: str
    nonce: str
    code_challenge: str


class SealedSignIns:
    """Pending sign-ins carried in the login URL itself, encrypted and authenticated
    (AES-256-GCM, a key of this process): the page cannot be made to send a code anywhere
    but the gateway's callback, the URL shows nothing of the sign-in, and no table of
    pending sign-ins exists for anyone to fill or flush."""

    def __init__(self, seconds: float = SIGN_IN_SECONDS) -> None:
        self._seconds = seconds
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, pending: PendingSignIn) -> str:
        payload = json.dumps({**asdict(pending), "expires": time.time() + self._seconds}).encode()
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, payload, b"host-sign-in")
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(self, request_id: str) -> PendingSignIn | None:
        if not 0 < len(request_id) <= MAX_REQUEST_CHARS:
            return None
        try:
            sealed = base64.urlsafe_b64decode(request_id + "=" * (-len(request_id) % 4))
            fields = json.loads(self._aead.decrypt(sealed[:12], sealed[12:], b"host-sign-in"))
        except (ValueError, InvalidTag):
            return None
        if fields.pop("expires") <= time.time():
            return None
        return PendingSignIn(**fields)


def _challenge(code_verifier: str) -> str:
    return hashlib.sha256(code_verifier.encode()).hexdigest()


def _digest(request_id: str) -> str:
    return hashlib.sha256(request_id.encode()).hexdigest()


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


class HostSignIn(IdentityProvider):
    """An `IdentityProvider` whose sign-in page is the host's own `/login`.

    `login_url` is where browsers reach that page (the host's public origin + `/login`);
    `router` serves it and belongs in the host app.
    """

    name = "host"

    def __init__(self, users: UserDirectory, *, login_url: str, max_kept: int = MAX_PENDING) -> None:
        """`max_kept` bounds each table in memory: codes, ended sign-ins, and the attempt
        counters of addresses and of emails that are no account."""
        self._users = users
        self._login_url = login_url
        secure = urlsplit(login_url).scheme == "https"
        # `__Host-` makes browsers refuse the cookie unless it is Secure, host-only and for "/".
        self._csrf_cookie = "__Host-login-csrf" if secure else "login-csrf"
        self._secure = secure
        self._pending = SealedSignIns()
        # Sign-ins that ended, so that a login URL works once.
        self._finished: Expiring[bool] = Expiring(SIGN_IN_SECONDS, max_kept)
        self._codes: Expiring[SignInCode] = Expiring(CODE_SECONDS, max_kept)
        # One counter per account of the file, never forgotten: were they evicted oldest
        # first, guesses at one account interleaved with attempts at thousands of made-up
        # emails would flush its counter. Made-up emails are counted apart, evicted first,
        # only so that they lock as accounts do and the page does not tell which exist.
        self._per_account = FailureLimit(FAILURES_PER_ACCOUNT, max_keys=None)
        self._per_unknown_email = FailureLimit(FAILURES_PER_ACCOUNT, max_keys=max_kept)
        self._per_address = FailureLimit(FAILURES_PER_ADDRESS, max_keys=max_kept)
        self._password_checks = anyio.CapacityLimiter(CONCURRENT_PASSWORD_CHECKS)
        self.router = APIRouter()
        path = urlsplit(login_url).path
        self.router.add_api_route(path, self._show, methods=["GET"], include_in_schema=False)
        self.router.add_api_route(path, self._submit, methods=["POST"], include_in_schema=False)

    # The IdentityProvider side, called by the gateway.

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        request_id = self._pending.seal(PendingSignIn(redirect_uri, state, nonce, _challenge(code_verifier)))
        return _with_query(self._login_url, request=request_id)

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        granted = self._codes.take(code)
        if granted is None:
            raise IdentityProviderError("exchange_failed", "The sign-in code is unknown, used or expired.")
        bound = (
            hmac.compare_digest(granted.code_challenge, _challenge(code_verifier))
            and hmac.compare_digest(granted.nonce, nonce)
            and granted.redirect_uri == redirect_uri
        )
        if not bound:
            raise IdentityProviderError("exchange_failed", "The sign-in code was issued for another sign-in.")
        user = self._users.get(granted.subject)
        if user is None:
            raise IdentityProviderError("exchange_failed", "The account no longer exists.")
        return Identity(
            subject=user.subject,
            email=user.email,
            # The host's own directory is the authority on its users' addresses.
            email_verified=True,
            name=user.name,
            groups=user.groups,
        )

    # The page's side, served by the host.

    def _pending_sign_in(self, request_id: str) -> PendingSignIn | None:
        if self._finished.get(_digest(request_id)) is not None:
            return None
        return self._pending.open(request_id)

    def _finish(self, request_id: str) -> bool:
        """Mark the sign-in ended; False when it already had."""
        if self._finished.get(_digest(request_id)) is not None:
            return False
        self._finished.add(True, key=_digest(request_id))
        return True

    async def _show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        if self._pending_sign_in(request_id) is None:
            return _expired()
        return self._form(request, request_id, error=None, status=200)

    async def _submit(self, request: Request) -> Response:
        form = await _read_form(request)
        if form is None:
            return _page("This form could not be read", "<p>Go back and try again.</p>", status=400)
        cookie = request.cookies.get(self._csrf_cookie, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), form.get("csrf", "").encode()):
            return _page("This form has expired", "<p>Reload the sign-in page and try again.</p>", status=403)
        request_id = form.get("request", "")
        pending = self._pending_sign_in(request_id)
        if pending is None:
            return _expired()
        if form.get("action") == "cancel":
            self._finish(request_id)
            return self._back(pending, error="access_denied")

        email = form.get("email", "").strip().lower()
        address = f"address:{address_key(request.client.host if request.client else None)}"
        account = f"account:{email}"
        per_account = self._per_account if email in self._users else self._per_unknown_email
        wait = max(per_account.retry_after(account), self._per_address.retry_after(address))
        if wait > 0:
            page = self._form(
                request, request_id, error="Too many failed attempts. Try again later.", status=429
            )
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        if self._password_checks.statistics().tasks_waiting >= WAITING_PASSWORD_CHECKS:
            page = self._form(request, request_id, error="Too many sign-ins at once. Try again.", status=503)
            page.headers["Retry-After"] = "5"
            return page
        attempt = per_account.record(account), self._per_address.record(address)
        password = form.get("password", "")
        async with self._password_checks:
            user = await anyio.to_thread.run_sync(self._users.authenticate, email, password)
        if user is None:
            return self._form(request, request_id, error="Wrong email or password.", status=401)
        per_account.forgive(account, attempt[0])
        self._per_address.forgive(address, attempt[1])
        if not self._finish(request_id):  # finished meanwhile by another submission
            return _expired()
        code = self._codes.add(
            SignInCode(user.subject, pending.redirect_uri, pending.nonce, pending.code_challenge)
        )
        return self._back(pending, code=code)

    def _back(self, pending: PendingSignIn, **params: str) -> Response:
        response = RedirectResponse(
            _with_query(pending.redirect_uri, **params, state=pending.state), status_code=303
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def _form(self, request: Request, request_id: str, *, error: str | None, status: int) -> Response:
        # One token per browser, so that two sign-ins open in two tabs both work.
        token = request.cookies.get(self._csrf_cookie, "")
        if len(token) != CSRF_TOKEN_LENGTH:
            token = secrets.token_urlsafe(32)
        body = LOGIN_FORM.format(
            request=html.escape(request_id),
            csrf=html.escape(token),
            error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
        )
        response = _page("Sign in", body, status=status)
        response.set_cookie(
            self._csrf_cookie,
            token,
            max_age=int(SIGN_IN_SECONDS),
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )
        return response


async def _read_form(request: Request) -> dict[str, str] | None:
    """The fields of an urlencoded form of at most `MAX_FORM_BYTES`, or None."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
        return dict(parse_qsl(body.decode(), max_num_fields=10, strict_parsing=False))
    except (ClientDisconnect, UnicodeDecodeError, ValueError):
        return None


def _expired() -> Response:
    return _page(
        "This sign-in has expired",
        "<p>It was already used or is more than ten minutes old. "
        "Go back to your application and connect again.</p>",
        status=400,
    )


def _page(title: str, body: str, *, status: int) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;margin:.4rem 0;font-size:1rem}}.error{{color:#b00020}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""

LOGIN_FORM = """<p>Sign in to connect your MCP client.</p>{error}
<form method="post">
<input type="hidden" name="request" value="{request}">
<input type="hidden" name="csrf" value="{csrf}">
<label>Email <input type="email" name="email" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="sign-in">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</form>
"""
