"""The example exchanges of docs/http-api.md, replayed against a running gateway.

Every `http` block of the page that starts with a complete request (no `…` in it) is sent,
in page order, to a gateway signing users in through a real OpenID provider, with the
page's host (`mcp.example.com`) and the client id its registration example returns put
in their places. The answer must have the status shown; each header shown (but those
holding `…`) with the value shown; an error body, or a `GET`'s JSON body, equal to the
one shown; and a page, the title shown. Blocks that start with a response, or whose
request holds values only a live sign-in makes, are left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from tests.support.gateway import running_gateway, stdio_service
from tests.support.markdown_blocks import CodeBlock, code_blocks
from tests.support.oidc import OIDCServer, gateway_auth_config

pytestmark = pytest.mark.e2e

PAGE = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
PAGE_ORIGIN = "https://mcp.example.com"
ELLIPSIS = "…"
COMPARED_HEADERS = ("www-authenticate", "allow", "retry-after", "cache-control", "content-type", "location")
TITLE = re.compile(r"<title>(.*?)</title>")


@dataclass(frozen=True)
class Exchange:
    block: CodeBlock
    method: str
    target: str
    request_headers: dict[str, str]
    request_body: str
    status: int
    headers: dict[str, str]
    body: str

    @property
    def where(self) -> str:
        return f"{self.block.where(PAGE.parent)} ({self.method} {self.target})"


def header_lines(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """The headers up to the first empty line, and the lines after it."""
    headers: dict[str, str] = {}
    for position, line in enumerate(lines):
        if not line.strip():
            return headers, lines[position + 1 :]
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, []


def parse(block: CodeBlock) -> Exchange | None:
    """The block's exchange, if it starts with a complete request and shows its response."""
    lines = block.text.splitlines()
    request_line = re.fullmatch(r"(GET|POST|DELETE|PUT|PATCH) (\S+) HTTP/1\.1", lines[0]) if lines else None
    response_at = next((i for i, line in enumerate(lines) if line.startswith("HTTP/1.1 ")), None)
    if request_line is None or response_at is None:
        return None
    request_headers, request_body = header_lines(lines[1:response_at])
    request_text = "\n".join(request_body).strip()
    if (
        ELLIPSIS in lines[0]
        or ELLIPSIS in request_text
        or any(ELLIPSIS in v for v in request_headers.values())
    ):
        return None
    headers, body = header_lines(lines[response_at + 1 :])
    return Exchange(
        block=block,
        method=request_line[1],
        target=request_line[2],
        request_headers=request_headers,
        request_body=request_text,
        status=int(lines[response_at].split()[1]),
        headers=headers,
        body="\n".join(body).strip(),
    )


def exchanges() -> list[Exchange]:
    found = [parse(block) for block in code_blocks(PAGE) if block.language == "http"]
    return [exchange for exchange in found if exchange is not None]


class Places:
    """What the page's examples name, and what stands in their place here."""

    def __init__(self, origin: str) -> None:
        self.replacements = {
            PAGE_ORIGIN: origin,
            quote(PAGE_ORIGIN, safe=""): quote(origin, safe=""),
            "mcp.example.com": origin.removeprefix("http://"),
        }

    def learn(self, shown: str, actual: str) -> None:
        self.replacements[shown] = actual

    def __call__(self, text: str) -> str:
        for shown, actual in self.replacements.items():
            text = text.replace(shown, actual)
        return text


def compares_body(exchange: Exchange) -> bool:
    """Whether the shown body is the whole answer: an error, or a document a GET reads (a
    success of another method holds what the gateway has just minted)."""
    shown = exchange.body
    whole = shown.startswith("{") and ELLIPSIS not in shown
    return whole and (exchange.status >= 400 or exchange.method == "GET")


def check(exchange: Exchange, response: httpx2.Response, places: Places) -> list[str]:
    problems = []
    if response.status_code != exchange.status:
        problems.append(f"status {response.status_code}, shown {exchange.status}: {response.text[:300]}")
    for name, shown in exchange.headers.items():
        if name in COMPARED_HEADERS and ELLIPSIS not in shown:
            actual = response.headers.get(name)
            if actual != places(shown):
                problems.append(f"{name}: {actual!r}, shown {places(shown)!r}")
    body = exchange.body
    if compares_body(exchange) and response.json() != json.loads(places(body)):
        problems.append(f"body {response.text}, shown {places(body)}")
    title = TITLE.search(body)
    if title is not None:
        actual_title = TITLE.search(response.text)
        if actual_title is None or actual_title[1] != title[1]:
            problems.append(f"page title {actual_title and actual_title[1]!r}, shown {title[1]!r}")
    return problems


def test_the_page_has_exchanges_to_replay() -> None:
    replayed = {(exchange.method, exchange.target.split("?")[0]) for exchange in exchanges()}
    assert {
        ("GET", "/nope"),
        ("POST", "/register"),
        ("POST", "/token"),
        ("POST", "/revoke"),
        ("POST", "/linear/mcp"),
        ("PUT", "/ci/mcp"),
        ("POST", "/ci/message"),
    } <= replayed


async def test_the_examples_are_what_a_gateway_answers(port: int, oidc: OIDCServer) -> None:
    origin = f"http://127.0.0.1:{port}"
    servers: dict[str, Any] = {
        "linear": stdio_service(),
        # The page's examples of a script with a static credential.
        "ci": stdio_service(
            serviceAuths=[{"type": "basic", "username": "ci-bot", "password": "ci-bot-password"}]
        ),
        "sentry": {
            "transportType": "streamable-http",
            "url": "https://sentry.example.com/mcp",
            "requiresUserToken": True,
            "userAuthentication": {"type": "mcp-oauth", "displayName": "Sentry"},
        },
    }
    proxy = {"auth": gateway_auth_config(origin, oidc), "metrics": {"token": "metrics-token-0123456789"}}
    places = Places(origin)
    problems: list[str] = []
    async with (
        running_gateway(servers, proxy=proxy, port=port),
        httpx2.AsyncClient(timeout=60, follow_redirects=False) as http,
    ):
        for exchange in exchanges():
            headers = {
                name: places(value) for name, value in exchange.request_headers.items() if name != "host"
            }
            response = await http.request(
                exchange.method,
                origin + places(exchange.target),
                headers=headers,
                content=places(exchange.request_body).encode() or None,
            )
            problems += [f"{exchange.where}: {problem}" for problem in check(exchange, response, places)]
            if exchange.status == 201 and response.status_code == 201:
                shown_client = json.loads(exchange.body)["client_id"]
                places.learn(shown_client, response.json()["client_id"])
    assert not problems, "\n".join(problems)
