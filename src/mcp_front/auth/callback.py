"""The identity provider's callback, `/oauth/callback`: who is this user, and may they in?

The transaction is found by the `state` the identity provider echoes and must come from
the browser that started it (the login cookie; otherwise the request is a login CSRF
attempt and stops at an error page, the transaction untouched); only then is it taken, so
a callback works once. Then, in order: an `error`
from the identity provider, a failed code exchange or ID-token check, and a refusal by the
`SignInPolicy` each send the user back to the client with `access_denied` or
`server_error` and a sentence a person understands: at once for a trusted client, through
a page with a link back for any other. A user who may sign in gets a code
straight away when the client is trusted or already approved, and the consent page
otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from mcp_front.auth.authorize import error_redirect
from mcp_front.auth.clients import RegisteredClients
from mcp_front.auth.codes import AuthorizationCodes
from mcp_front.auth.consent import CONSENT_PATH, Consents, finish_authorization, show_consent
from mcp_front.auth.sign_in_hooks import AfterSignIn, SignInFlow
from mcp_front.auth.sign_in_policy import SignInPolicy
from mcp_front.auth.transactions import LoginCookie, Transactions
from mcp_front.idp.base import IdentityProvider, IdentityProviderError
from mcp_front.storage import Store
from mcp_front.web.pages import error_page

__all__ = ["callback_endpoint"]

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

_ERROR_CODE = re.compile(r"[a-z_]{1,64}")
_USER_REFUSED = frozenset({"access_denied", "consent_required", "login_required", "interaction_required"})
_DENIED_KINDS = frozenset({"hosted_domain_mismatch"})


def callback_endpoint(
    *,
    store: Store,
    idp: IdentityProvider,
    policy: SignInPolicy,
    codes: AuthorizationCodes,
    consents: Consents,
    trusted_clients: frozenset[str],
    issuer: str,
    clients: RegisteredClients,
    callback_url: str,
    consent_path: str = CONSENT_PATH,
    transactions: Transactions | None = None,
    other_flows: Sequence[SignInFlow] = (),
    after_sign_in: Sequence[AfterSignIn] = (),
) -> Endpoint:
    """The GET `/oauth/callback` endpoint.

    `callback_url` must be the URL `/authorize` gave the identity provider (the code
    exchange repeats it). `trusted_clients` are client ids that skip the consent page.
    A state no authorization started is offered to each of `other_flows` (read at each
    request, so flows may be added after the endpoint is made).
    """
    saved = transactions or Transactions(store)
    cookie = LoginCookie(issuer)

    async def callback(request: Request) -> Response:
        params = request.query_params
        state = params.get("state") or ""
        transaction = await saved.peek(state)
        if transaction is None:
            for flow in other_flows:
                answer = await flow.finish(request, state) if state else None
                if answer is not None:
                    return answer
            return _expired()
        if not cookie.matches(request, transaction):
            # Left in place: whoever holds the URL without the cookie cannot end the
            # sign-in of the browser that started it.
            return error_page(
                "This sign-in was started in another browser",
                "For your safety, a sign-in must finish in the browser where it started. "
                "Go back to your application and connect again.",
            )
        if await saved.take(state) is None:
            return _expired()  # another request of the same browser took it first

        def fail(error: str, description: str, *, for_the_user: str | None = None) -> Response:
            """Send the error back to the client: at once to a trusted one; for any other,
            through a page the user leaves by choice, since a sign-in at the provider may
            have been silent, and an automatic redirect would make this an open redirector."""
            back = error_redirect(transaction.redirect_uri, issuer, transaction.state, error, description)
            if transaction.client_id in trusted_clients:
                return back
            return error_page(
                "Signing in did not complete",
                for_the_user or description,
                status_code=403 if error == "access_denied" else 400,
                back_to=back.headers["location"],
            )

        idp_error = params.get("error")
        if idp_error:
            reported = idp_error if _ERROR_CODE.fullmatch(idp_error) else "error"
            if reported in _USER_REFUSED:
                return fail(
                    "access_denied", f"Signing in at {idp.name} was cancelled or refused ({reported})."
                )
            return fail("server_error", f"The identity provider {idp.name} reported an error ({reported}).")
        code = params.get("code")
        if not code:
            return fail("server_error", f"The identity provider {idp.name} sent no authorization code.")
        try:
            identity = await idp.complete(
                code=code,
                redirect_uri=callback_url,
                code_verifier=transaction.idp_code_verifier,
                nonce=transaction.nonce,
            )
        except IdentityProviderError as failure:
            logger.warning("sign-in at %s failed: %s", idp.name, failure.kind)
            error = "access_denied" if failure.kind in _DENIED_KINDS else "server_error"
            return fail(error, failure.message)

        decision = policy.check_sign_in(identity)
        if not decision.allowed:
            # The reason names the user: it is for them, not for the application.
            return fail(
                "access_denied", "The user may not sign in to this gateway.", for_the_user=decision.reason
            )

        signed_in = replace(
            transaction,
            subject=identity.subject,
            email=identity.email,
            groups=tuple(sorted(identity.groups)),
        )
        if transaction.client_id in trusted_clients or await consents.approved(
            identity.subject, transaction.client_id, transaction.redirect_uri, transaction.resource
        ):
            return await finish_authorization(signed_in, codes, issuer, request=request, after=after_sign_in)
        client = await clients.get(transaction.client_id)
        if client is None:
            return error_page(
                "Unknown application",
                "This application is no longer registered with the gateway. Reconnect it.",
            )
        return await show_consent(signed_in, client, saved, action=consent_path)

    return callback


def _expired() -> Response:
    return error_page(
        "This sign-in has expired",
        "This sign-in link was already used or is more than ten minutes old. "
        "Go back to your application and connect again.",
    )
