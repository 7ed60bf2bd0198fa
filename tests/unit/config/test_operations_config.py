"""`proxy.metrics` and `proxy.tls`: read from the file, reported by key path with a fix."""

from __future__ import annotations

import pytest

from mcp_front.config import ConfigError, load_config


def test_a_metrics_token_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "m" * 32)
    config = load_config({"proxy": {"metrics": {"token": {"$env": "METRICS_TOKEN"}}}, "mcpServers": {}})
    assert config.proxy.metrics is not None
    assert config.proxy.metrics.token.get_secret_value() == "m" * 32
    assert "m" * 32 not in repr(config)


def test_a_short_metrics_token_is_reported_at_its_key_without_its_value() -> None:
    with pytest.raises(ConfigError) as error:
        load_config({"proxy": {"metrics": {"token": "tooshort"}}, "mcpServers": {}})
    message = str(error.value)
    assert "proxy.metrics.token: must be at least 16 bytes long" in message
    assert "openssl rand" in message
    assert "tooshort" not in message


def test_a_metrics_block_without_a_token_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"proxy\.metrics\.token"):
        load_config({"proxy": {"metrics": {}}, "mcpServers": {}})


def test_tls_takes_a_certificate_and_a_key_file() -> None:
    config = load_config({"proxy": {"tls": {"certFile": "/c.pem", "keyFile": "/k.pem"}}, "mcpServers": {}})
    assert config.proxy.tls is not None
    assert (config.proxy.tls.cert_file, config.proxy.tls.key_file) == ("/c.pem", "/k.pem")
    with pytest.raises(ConfigError, match=r"proxy\.tls\.keyFile"):
        load_config({"proxy": {"tls": {"certFile": "/c.pem"}}, "mcpServers": {}})
