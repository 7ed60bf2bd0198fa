"""The conformance suite's authorization-server scenarios (`conformance authorization`).

Only `@modelcontextprotocol/conformance@0.2.0-alpha.12` has them; `tests/node/package.json`
installs it as `conformance-next`. The `authorization-code-grant` scenario prints an
authorization URL, listens on `http://127.0.0.1:<port>/callback` and waits for a browser to
sign in there; `run_authorization_suite()` hands that URL to a `browse` callable, which must
follow the sign-in and finally load the callback URL.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx2

from tests.servers.conformance import (
    ANSI_ESCAPE,
    NODE_BIN_DIR,
    NODE_MODULES,
    NODE_PROJECT,
    REPO_ROOT,
    ConformanceRunError,
    NodeToolsMissingError,
    SuiteResult,
    load_checks,
    node_environment,
    suite_result,
)
from tests.support.oidc import consent_form

AUTHORIZATION_CLI = NODE_MODULES / "conformance-next" / "dist" / "index.js"
CALLBACK_PATH = "/callback"
MAX_HOPS = 15

_BROWSER_PROMPT = "Access the following URL in your browser"


def require_authorization_suite() -> None:
    """Raise `NodeToolsMissingError`, saying how to install them, unless Node 22 and the suite are present."""
    missing = [path for path in (NODE_BIN_DIR / "node", AUTHORIZATION_CLI) if not path.is_file()]
    if missing:
        raise NodeToolsMissingError(
            f"{', '.join(str(path.relative_to(REPO_ROOT)) for path in missing)} not found: "
            "install the pinned Node.js test tools with `npm ci --prefix tests/node`"
        )


def callback_url(port: int) -> str:
    """The redirect URI the suite's `authorization-code-grant` scenario uses."""
    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


def sign_in(authorization_url: str, redirect_uri: str, *, approve_as: str, timeout: float = 15.0) -> str:
    """Follow the sign-in like a browser: redirects, the provider's login, the gateway's consent.

    Approves the consent page (which must name `approve_as`), then loads the final redirect to
    `redirect_uri`, so that whoever listens there receives it. Returns that final URL.
    """
    with httpx2.Client(timeout=timeout) as browser:
        url = authorization_url
        for _ in range(MAX_HOPS):
            if url.startswith(redirect_uri):
                _deliver(browser, url)
                return url
            response = browser.get(url)
            if response.status_code == 200 and "<form" in response.text:
                response = _approve(browser, url, response.text, approve_as)
            if not response.is_redirect:
                raise AssertionError(f"{response.status_code} at {url}: {response.text[:400]}")
            url = urljoin(url, response.headers["location"])
    raise AssertionError(f"no redirect to {redirect_uri} after {MAX_HOPS} hops")


def _deliver(browser: httpx2.Client, url: str, patience: float = 5.0) -> None:
    """Load the final redirect; the suite may print its URL just before its listener is up."""
    deadline = time.monotonic() + patience
    while True:
        try:
            browser.get(url)
            return
        except httpx2.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _approve(browser: httpx2.Client, page_url: str, page: str, user: str) -> httpx2.Response:
    if user not in page:
        raise AssertionError(f"the consent page at {page_url} does not name {user}: {page[:400]}")
    action, fields = consent_form(page)
    return browser.post(urljoin(page_url, action), data={**fields, "decision": "approve"})


def run_authorization_suite(
    issuer: str,
    *,
    client_id: str,
    port: int,
    browse: Callable[[str], object],
    resource: str | None = None,
    timeout: float = 120.0,
    output_dir: Path | None = None,
) -> SuiteResult:
    """Run every authorization-server scenario against `issuer`, signing in with `browse`.

    `client_id` must be registered with `callback_url(port)` as a redirect URI. When the
    suite prints the authorization URL, `browse(url)` is called; an exception it raises stops
    the suite and is re-raised. Raises `ConformanceRunError` when the suite prints no summary
    or outlives `timeout`.
    """
    require_authorization_suite()
    arguments = ["authorization", "--url", issuer, "--client-id", client_id, "--port", str(port)]
    if resource is not None:
        arguments += ["--resource", resource]
    with tempfile.TemporaryDirectory(prefix="conformance-authorization-") as scratch:
        results_dir = output_dir if output_dir is not None else Path(scratch)
        arguments += ["--output-dir", str(results_dir)]
        process = subprocess.Popen(
            [str(NODE_BIN_DIR / "node"), str(AUTHORIZATION_CLI), *arguments],
            cwd=NODE_PROJECT,
            env=node_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        lines: list[str] = []
        try:
            assert process.stdout is not None
            prompted = False
            for line in process.stdout:
                lines.append(line)
                text = ANSI_ESCAPE.sub("", line).strip()
                if prompted and text.startswith(("http://", "https://")):
                    prompted = False
                    try:
                        browse(text)
                    except BaseException:
                        process.kill()
                        raise
                elif _BROWSER_PROMPT in text:
                    prompted = True
            exit_code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        checks = load_checks(results_dir, prefix="authorization-server")

    if expired.is_set():
        raise ConformanceRunError(
            f"`conformance authorization` ran longer than {timeout}s:\n{''.join(lines)}"
        )
    return suite_result(issuer, "".join(lines), checks, exit_code, "authorization")
