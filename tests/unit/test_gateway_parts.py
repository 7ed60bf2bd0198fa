"""A gateway assembled from parts: backends that bring their own services, an authorization
server built by the program, and the whole checked as a configuration file would be."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from mcp_front import (
    AggregateRegistry,
    AudienceValidator,
    AuthConfig,
    AuthorizationServer,
    ConfigError,
    Gateway,
    GatewayConfig,
    GatewayError,
    Identity,
    IdentityProvider,
    InlineToolRegistry,
    MemoryStore,
    Principal,
    ProxyConfig,
    ServerConfig,
    SigningKey,
    SigningKeys,
    SQLiteStore,
    StdioSessionPool,
    TokenIssuer,
)
from mcp_front.rate_limit import MemoryRateLimiter, StoreRateLimiter
from mcp_front.storage.redis import RedisStore

BASE_URL = "http://127.0.0.1:8080"


class NobodyProvider(IdentityProvider):
    name = "nobody"

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        return "https://idp.example/authorize"

    async def complete(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        raise AssertionError("nobody signs in here")


def inline(name: str = "clock") -> InlineToolRegistry:
    tool = {"name": "utc_date", "inputSchema": {"type": "object"}, "command": "date", "args": ["-u"]}
    return InlineToolRegistry({name: ServerConfig(transport_type="inline", inline={"tools": [tool]})})


def stdio(name: str = "notes", **extra: Any) -> StdioSessionPool:
    return StdioSessionPool(
        {name: ServerConfig(transport_type="stdio", command=sys.executable, args=["server.py"], **extra)}
    )


def auth_config(**extra: Any) -> AuthConfig:
    return AuthConfig(
        kind="oauth", issuer=BASE_URL, allowed_domains=["example.com"], encryption_key="k" * 32, **extra
    )


def authorization_server(services: list[str], **extra: Any) -> AuthorizationServer:
    return AuthorizationServer(
        auth_config(),
        store=extra.pop("store", MemoryStore()),
        idp=NobodyProvider(),
        audiences=AudienceValidator(BASE_URL, services),
        **extra,
    )


def test_each_backend_serves_the_services_it_was_made_with() -> None:
    clock, notes = inline(), stdio()
    gateway = Gateway(ProxyConfig(base_url=BASE_URL), backends=[clock, notes])
    assert set(gateway.services) == {"clock", "notes"}
    assert gateway.config.mcp_servers["clock"] is clock.services["clock"]
    assert gateway.pool is not notes  # the gateway's own pool serves none of them
    assert gateway.pool.services == {}


def test_backends_add_to_the_services_of_a_configuration() -> None:
    config = GatewayConfig(mcp_servers={"demo": ServerConfig(transport_type="stdio", command="python3")})
    gateway = Gateway(config, backends=[inline()])
    assert set(gateway.services) == {"demo", "clock"}
    assert set(gateway.pool.services) == {"demo"}


def test_a_service_served_twice_is_refused_with_its_name() -> None:
    config = GatewayConfig(mcp_servers={"clock": ServerConfig(transport_type="stdio", command="python3")})
    with pytest.raises(GatewayError, match=r"mcpServers\.clock: served twice"):
        Gateway(config, backends=[inline()])
    with pytest.raises(GatewayError, match=r"mcpServers\.clock: served twice"):
        Gateway(backends=[inline(), inline()])


def test_the_assembled_services_are_checked_together() -> None:
    everything = AggregateRegistry({"everything": ServerConfig(type="aggregate", servers=["clock", "noets"])})
    with pytest.raises(ConfigError) as raised:
        Gateway(backends=[inline(), stdio(), everything])
    [issue] = raised.value.issues
    assert issue.path == "mcpServers.everything.servers[1]"
    assert issue.fix == 'did you mean "notes"?'


def test_an_aggregate_made_without_members_opens_the_gateways_services() -> None:
    everything = AggregateRegistry({"everything": ServerConfig(type="aggregate", servers=["clock"])})
    Gateway(backends=[inline(), everything])
    assert set(everything.members) == {"clock"}


def test_a_backend_without_user_tokens_is_given_the_gateways() -> None:
    async def own(principal: Principal, service: str) -> str | None:
        return "own"

    bare, equipped = stdio("bare"), stdio("equipped")
    equipped.user_tokens = own
    server = authorization_server(["bare", "equipped"])
    Gateway(backends=[bare, equipped], authorization_server=server)
    assert bare.user_tokens is not None
    assert equipped.user_tokens is own


def test_a_given_pool_never_shows_its_children_the_given_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gateway.db")
    notes = stdio()
    Gateway(backends=[notes], authorization_server=authorization_server(["notes"], store=store))
    assert (tmp_path / "gateway.db").absolute() in notes.sandbox.hidden
    assert (tmp_path / "gateway.db-wal").absolute() in notes.sandbox.hidden


def test_the_authorization_server_must_know_every_service() -> None:
    with pytest.raises(GatewayError, match=r"mcpServers\.notes: the authorization server has no audience"):
        Gateway(backends=[inline(), stdio()], authorization_server=authorization_server(["clock"]))


def test_the_authorization_servers_audiences_must_be_under_the_gateways_base_url() -> None:
    server = AuthorizationServer(
        auth_config(),
        store=MemoryStore(),
        idp=NobodyProvider(),
        audiences=AudienceValidator("https://other.example", ["clock"]),
    )
    with pytest.raises(GatewayError, match=r"proxy\.baseURL: .*https://other\.example"):
        Gateway(ProxyConfig(base_url=BASE_URL), backends=[inline()], authorization_server=server)


def test_a_given_authorization_server_signs_users_in() -> None:
    server = authorization_server(["clock"])
    gateway = Gateway(backends=[inline()], authorization_server=server)
    assert gateway.authorization_server is server
    assert gateway.config.proxy.auth == server.config
    assert gateway.vault is not None  # each user's own credentials come with sign-in


def test_its_store_and_provider_are_not_given_twice() -> None:
    with pytest.raises(TypeError, match="authorization server's"):
        Gateway(
            backends=[inline()], authorization_server=authorization_server(["clock"]), store=MemoryStore()
        )


def test_a_token_issuer_must_sign_for_the_servers_issuer() -> None:
    issuer = TokenIssuer(SigningKeys(SigningKey.generate()), "https://elsewhere.example")
    with pytest.raises(ValueError, match=r"signs for https://elsewhere\.example"):
        authorization_server(["clock"], token_issuer=issuer)


def test_without_an_idp_block_the_callback_is_below_the_issuer() -> None:
    assert auth_config().callback_url == f"{BASE_URL}/oauth/callback"


def test_a_configuration_without_idp_and_no_provider_is_refused_at_the_key() -> None:
    config = GatewayConfig(proxy=ProxyConfig(auth=auth_config()))
    with pytest.raises(ConfigError) as raised:
        Gateway(config)
    [issue] = raised.value.issues
    assert issue.path == "proxy.auth.idp"
    assert "identity_provider" in (issue.fix or "")


@pytest.mark.parametrize("given", ["identity_provider", "store"])
def test_a_provider_or_store_without_sign_in_configured_is_refused(given: str) -> None:
    parts: dict[str, Any] = {"identity_provider": NobodyProvider(), "store": MemoryStore()}
    with pytest.raises(ConfigError) as raised:
        Gateway(GatewayConfig(proxy=ProxyConfig()), backends=[inline()], **{given: parts[given]})
    [issue] = raised.value.issues
    assert issue.path == "proxy.auth"
    assert given in issue.message


def test_a_store_shared_by_replicas_shares_their_limits_and_sessions() -> None:
    store = RedisStore(Redis.from_url("redis://127.0.0.1:6379/0"), prefix="unit-parts:")
    server = authorization_server(["clock"], store=store)
    assert isinstance(server.limiter, StoreRateLimiter)
    assert Gateway(backends=[inline()], authorization_server=server).replication is not None


def test_a_store_of_one_process_keeps_them_in_memory() -> None:
    server = authorization_server(["clock"])
    assert isinstance(server.limiter, MemoryRateLimiter)
    assert Gateway(backends=[inline()], authorization_server=server).replication is None


def test_a_backend_serves_one_gateway() -> None:
    clock = inline()
    Gateway(backends=[clock])
    with pytest.raises(
        GatewayError, match=r"mcpServers\.clock: this InlineToolRegistry already serves another gateway"
    ):
        Gateway(backends=[clock])


def test_backends_may_come_from_a_generator() -> None:
    gateway = Gateway(backends=(factory for factory in [inline(), stdio()]))
    assert set(gateway.services) == {"clock", "notes"}
    assert gateway.pool.services == {}
