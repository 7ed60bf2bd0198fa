"""The real OpenID Provider of `tests.support.oidc`, shared by this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oidc import OIDCServer, oidc_provider_process


@pytest.fixture(scope="module")
def oidc_server() -> Iterator[OIDCServer]:
    with oidc_provider_process() as server:
        yield server
