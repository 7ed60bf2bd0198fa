"""Fixtures shared by the end-to-end tests: for signed-in users, a gateway port chosen per
module and a real OpenID provider that sends users back to that gateway; for sandboxes, a
folder outside /tmp."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.oidc import OIDCServer, oidc_provider_process


@pytest.fixture(scope="module")
def port() -> int:
    """The port of the module's gateway, known before it starts (the provider needs it)."""
    return free_port()


@pytest.fixture(scope="module")
def oidc(port: int) -> Iterator[OIDCServer]:
    """The identity provider, with the gateway's callback registered."""
    with oidc_provider_process(redirect_uris=[f"http://127.0.0.1:{port}/oauth/callback"]) as server:
        yield server


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A fresh directory outside /tmp, which a sandboxed process replaces with its own."""
    directory = Path(tempfile.mkdtemp(dir=Path.home()))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
