"""`proxy.rateLimits.mcpRequests`: each caller's requests to a service, limited for the
whole deployment; two gateways on one Redis or PostgreSQL enforce one limit."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from tests.e2e.test_shared_stores import storage  # noqa: F401 - a fixture
from tests.support.gateway import running_gateway, stdio_service
from tests.support.net import free_port
from tests.support.oidc import OIDCServer, gateway_auth_config

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
) -> None:
    base = f"http://127.0.0.1:{port}"
    auth = gateway_auth_config(base, oidc, storage=storage)
    proxy = {"auth": auth, "rateLimits": {"mcpRequests": {"requests": 6, "per": "1m"}}}
    other_port = free_port()
    async with (
        running_gateway({"probe": probe(), "other": probe()}, proxy=proxy, port=port) as first,
        running_gateway(
            {"probe": probe(), "other": probe()},
            proxy={**proxy, "baseURL": base, "addr": f"127.0.0.1:{other_port}"},
            port=other_port,
        ),
        httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        urls = [f"{first.url}/probe/mcp", f"http://127.0.0.1:{other_port}/probe/mcp"] * 5
        answers = [await http.post(url, json=PING) for url in urls]
        statuses = [answer.status_code for answer in answers]
        assert 429 not in statuses[:6], statuses
        assert statuses[6:] == [429] * 4, statuses
        refused = answers[-1]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["message"].startswith("Too many requests to service 'probe'")
        # Counted per service: the other one still answers the same caller.
        other = await http.post(f"http://127.0.0.1:{other_port}/other/mcp", json=PING)
        assert other.status_code != 429
        # And per caller: someone without credentials is not held back by it (401, not 429).
        async with httpx2.AsyncClient(timeout=30) as stranger:
            assert (await stranger.post(urls[0], json=PING)).status_code == 401


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
