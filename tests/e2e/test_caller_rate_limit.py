"""`proxy.rateLimits.mcpRequests`: each caller's requests to a service, limited for the
whole deployment; two gateways on one Redis or PostgreSQL enforce one limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.e2e.test_shared_stores import storage  # noqa: F401 - a fixture
from tests.support.gateway import running_gateway, stdio_service
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config
from tests.support.process import gateway_process_on

pytestmark = pytest.mark.e2e

TOKEN = "deployment-limit-token"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def probe(**extra: Any) -> dict[str, Any]:
    credential = {"type": "bearer", "tokens": [TOKEN], "user": "ci@example.com"}
    return stdio_service(serviceAuths=[credential], **extra)


async def test_one_callers_requests_alternating_between_replicas_meet_one_limit(
    storage: dict[str, Any],  # noqa: F811 - the fixture imported above
    port: int,
    oidc: OIDCServer,
    tmp_path: Path,
) -> None:
    """Two `mcp-front serve` processes on one store."""
    other_port = free_port()
    limits = {"mcpRequests": {"requests": 6, "per": "1m"}}
    services = {"probe": probe(), "other": probe()}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_auth = gateway_auth_config(f"http://127.0.0.1:{port}", oidc, storage=storage)
    second_auth = gateway_auth_config(f"http://127.0.0.1:{other_port}", oidc, storage=storage)
    with (
        gateway_process_on(port, tmp_path / "a", services, auth=first_auth, rateLimits=limits) as first,
        gateway_process_on(
            other_port, tmp_path / "b", services, auth=second_auth, rateLimits=limits
        ) as second,
    ):
        async with httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await check_one_limit(http, first.url, second.url)


async def check_one_limit(http: httpx2.AsyncClient, first: str, second: str) -> None:
    """One caller's requests alternating between `first` and `second` meet one limit."""
    urls = [f"{first}/probe/mcp", f"{second}/probe/mcp"] * 5
    answers = [await http.post(url, json=PING) for url in urls]
    statuses = [answer.status_code for answer in answers]
    assert 429 not in statuses[:6], statuses
    assert statuses[6:] == [429] * 4, statuses
    refused = answers[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["message"].startswith("Too many requests to service 'probe'")
    # Counted per service: the other one still answers the same caller.
    other = await http.post(f"{second}/other/mcp", json=PING)
    assert other.status_code != 429
    # And per caller: someone without credentials is not held back by it (401, not 429).
    async with httpx2.AsyncClient(timeout=30) as stranger:
        assert (await stranger.post(urls[0], json=PING)).status_code == 401


async def test_a_services_own_rate_limit_takes_the_place_of_the_proxys() -> None:
    """`rateLimit` on a service replaces `mcpRequests` there (`null`: no limit); an open
    service counts each address."""
    proxy = {"rateLimits": {"mcpRequests": {"requests": 4, "per": "1m"}}}
    services = {
        "tight": probe(rateLimit={"requests": 2, "per": "1m"}),
        "unlimited": probe(rateLimit=None),
        "default": probe(),
        "open": stdio_service(),
    }
    async with (
        running_gateway(services, proxy=proxy) as gateway,
        httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):

        async def statuses(service: str, count: int) -> list[int]:
            return [
                (await http.post(f"{gateway.url}/{service}/mcp", json=PING)).status_code for _ in range(count)
            ]

        def refused_from(answers: list[int]) -> int | None:
            """The first request refused, once every one from it on is."""
            first = answers.index(429) if 429 in answers else None
            return first if first is not None and set(answers[first:]) == {429} else None

        assert refused_from(await statuses("tight", 3)) == 2
        assert 429 not in await statuses("unlimited", 12)
        assert refused_from(await statuses("default", 5)) == 4
        # No principal: the address is counted, under the proxy's limit.
        assert refused_from(await statuses("open", 5)) == 4


async def test_guesses_sent_all_at_once_to_two_replicas_are_counted_before_they_are_checked(
    storage: dict[str, Any],  # noqa: F811 - the fixture imported above
    port: int,
    oidc: OIDCServer,
) -> None:
    """Forty wrong static credentials at once, half to each replica, against a limit of three
    a minute: three are checked (401), every other one is refused unchecked (429), and then
    the right credential too, from that address."""
    base = f"http://127.0.0.1:{port}"
    auth = gateway_auth_config(base, oidc, storage=storage)
    proxy = {"auth": auth, "rateLimits": {"failedAuthentication": {"requests": 3, "per": "1m"}}}
    other_port = free_port()
    async with (
        running_gateway({"probe": probe()}, proxy=proxy, port=port),
        running_gateway(
            {"probe": probe()},
            proxy={**proxy, "baseURL": base, "addr": f"127.0.0.1:{other_port}"},
            port=other_port,
        ),
        httpx2.AsyncClient(timeout=60) as http,
    ):
        urls = [f"{base}/probe/mcp", f"http://127.0.0.1:{other_port}/probe/mcp"]
        statuses: list[int] = []

        async def guess(n: int) -> None:
            headers = {"Authorization": f"Bearer guess-{n}"}
            statuses.append((await http.post(urls[n % 2], json=PING, headers=headers)).status_code)

        async with anyio.create_task_group() as group:
            for n in range(40):
                group.start_soon(guess, n)
        assert sorted(set(statuses)) == [401, 429], statuses
        assert statuses.count(401) == 3, statuses
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.post(urls[0], json=PING, headers=right)).status_code == 429
