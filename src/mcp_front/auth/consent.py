"""Consent: the user approves an application before it gets a code, once per application.

After the identity provider has vouched for the user, the callback shows a page naming the
application (its `client_name`, which anyone can choose), the host the browser will be sent
back to (which the name cannot disguise), the host of its metadata document when its
`client_id` is a URL, with a warning when the two hosts differ, the service and the
signed-in user. The form posts
to `/oauth/consent` with a one-time CSRF token; the transaction is then taken again, checked
against the browser's login cookie and the token's digest (constant-time), and either a
code is issued or the client hears `access_denied`.

Approval is remembered per (user, client, redirect URI, service) in the `Store` namespace
``oauth.consents``, without expiry by default (pass `ttl` to ask again after a while). For
http loopback redirect URIs the port is left out of the key, since native apps pick a new
port on every run (RFC 8252 §7.3).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from mcp.shared.auth import OAuthClientInformationFull
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mcp_front.auth.authorize import error_redirect, redirect_to_client
from mcp_front.auth.codes import AuthorizationCode, AuthorizationCodes
from mcp_front.auth.errors import OAuthError
from mcp_front.auth.forms import read_urlencoded
from mcp_front.auth.sign_in_hooks import AfterSignIn
from mcp_front.auth.transactions import AuthorizationTransaction, LoginCookie, Transactions, is_loopback_http
from mcp_front.crypto import digest, random_token
from mcp_front.storage import Store
from mcp_front.web.pages import error_page, form_action_source, host_label, render

__all__ = ["CONSENTS_NAMESPACE", "Consents", "consent_endpoint", "finish_authorization", "show_consent"]

CONSENTS_NAMESPACE = "oauth.consents"
CONSENT_PATH = "/oauth/consent"

Endpoint = Callable[[Request], Awaitable[Response]]


class Consents:
    """Which (user, client, redirect URI, service) the user has approved: an approval for one
    service is not one for another, nor for an aggregate of several."""

    def __init__(self, store: Store, *, ttl: timedelta | None = None) -> None:
        self._store = store
        self.ttl = ttl

    async def remember(self, subject: str, client_id: str, redirect_uri: str, resource: str) -> None:
        value = json.dumps({"approved_at": time.time()}).encode()
        key = _key(subject, client_id, redirect_uri, resource)
        await self._store.put(CONSENTS_NAMESPACE, key, value, ttl=self.ttl)

    async def approved(self, subject: str, client_id: str, redirect_uri: str, resource: str) -> bool:
        key = _key(subject, client_id, redirect_uri, resource)
        return await self._store.get(CONSENTS_NAMESPACE, key) is not None

    async def forget(self, subject: str, client_id: str, redirect_uri: str, resource: str) -> bool:
        return await self._store.delete(CONSENTS_NAMESPACE, _key(subject, client_id, redirect_uri, resource))


def _key(subject: str, client_id: str, redirect_uri: str, resource: str) -> str:
    if is_loopback_http(redirect_uri):
        parts = urlsplit(redirect_uri)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        redirect_uri = urlunsplit((parts.scheme.lower(), host.lower(), parts.path, parts.query, ""))
    return digest(json.dumps([subject, client_id, redirect_uri, resource])).hex()


async def finish_authorization(
    transaction: AuthorizationTransaction,
    codes: AuthorizationCodes,
    issuer: str,
    *,
    request: Request | None = None,
    after: Sequence[AfterSignIn] = (),
) -> Response:
    """Issue the code for a signed-in transaction and send the browser back to the client,
    through what each of `after` makes of that answer."""
    if transaction.subject is None:
        raise ValueError("the transaction has no signed-in user yet")
    code = await codes.issue(
        AuthorizationCode(
            client_id=transaction.client_id,
            redirect_uri=transaction.redirect_uri,
            code_challenge=transaction.code_challenge,
            resource=transaction.resource,
            scope=transaction.scope,
            subject=transaction.subject,
            email=transaction.email,
            issued_at=time.time(),
            groups=transaction.groups,
        )
    )
    response: Response = redirect_to_client(
        transaction.redirect_uri, {"code": code, "state": transaction.state, "iss": issuer}
    )
    if request is not None:
        for hook in after:
            response = await hook.before_returning(request, transaction, response)
    return response


async def show_consent(
    transaction: AuthorizationTransaction,
    client: OAuthClientInformationFull,
    transactions: Transactions,
    *,
    action: str = CONSENT_PATH,
) -> HTMLResponse:
    """Store `transaction` under a new consent id with a CSRF token, and render the page."""
    consent_id = random_token(32)
    csrf_token = random_token(32)
    await transactions.save(consent_id, replace(transaction, consent_csrf=digest(csrf_token).hex()))
    target = form_action_source(transaction.redirect_uri)
    redirect_host = host_label(transaction.redirect_uri)
    document_host = (
        host_label(transaction.client_id) if transaction.client_id.startswith("https://") else None
    )
    return render(
        "consent.html",
        form_targets=[target] if target else [],
        client_name=client.client_name or transaction.client_id,
        redirect_host=redirect_host,
        document_host=document_host,
        hosts_differ=document_host is not None and document_host != redirect_host,
        service=_service_label(transaction.resource),
        resource=transaction.resource,
        user=transaction.email or transaction.subject,
        action=action,
        consent_id=consent_id,
        csrf_token=csrf_token,
    )


def _service_label(resource: str) -> str:
    path = urlsplit(resource).path.rstrip("/")
    return path.rpartition("/")[2] or urlsplit(resource).netloc


def consent_endpoint(
    *,
    store: Store,
    codes: AuthorizationCodes,
    consents: Consents,
    issuer: str,
    transactions: Transactions | None = None,
    after_sign_in: Sequence[AfterSignIn] = (),
) -> Endpoint:
    """The POST `/oauth/consent` endpoint: the user's answer on the consent page."""
    saved = transactions or Transactions(store)
    cookie = LoginCookie(issuer)

    async def consent(request: Request) -> Response:
        try:
            form = dict(await read_urlencoded(request))
        except OAuthError as error:
            return error_page("This request could not be read", error.description, status_code=error.status)
        consent_id = form.get("consent")
        csrf_token = form.get("csrf_token")
        decision = form.get("decision")
        transaction = await saved.take(consent_id) if isinstance(consent_id, str) else None
        if transaction is None:
            return error_page(
                "This page has expired",
                "This approval page was already used or has expired. Connect again from your application.",
            )
        presented = digest(csrf_token).hex() if isinstance(csrf_token, str) and csrf_token else ""
        if (
            not cookie.matches(request, transaction)
            or transaction.consent_csrf is None
            or not hmac.compare_digest(presented.encode(), transaction.consent_csrf.encode())
            or transaction.subject is None
        ):
            return error_page(
                "This request was not sent from the approval page",
                "The gateway could not confirm that you made this choice yourself, so nothing was "
                "approved. Connect again from your application.",
            )
        if decision == "approve":
            await consents.remember(
                transaction.subject, transaction.client_id, transaction.redirect_uri, transaction.resource
            )
            return await finish_authorization(
                transaction, codes, issuer, request=request, after=after_sign_in
            )
        return error_redirect(
            transaction.redirect_uri,
            issuer,
            transaction.state,
            "access_denied",
            "The user declined to give this application access.",
        )

    return consent
