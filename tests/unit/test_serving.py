"""`mcp_front.serving`: how a gateway, or a host app that mounts one, is served."""

from __future__ import annotations

import subprocess
import sys

from starlette.applications import Starlette

from mcp_front.connection_limits import BoundedRequestProtocol
from mcp_front.serving import uvicorn_config

PR_GET_DUMPABLE = 3


def test_uvicorn_config_bounds_requests_and_leaves_forwarded_headers_to_the_gateway() -> None:
    config = uvicorn_config(Starlette(), host="127.0.0.1", port=8080, request_read_timeout=7)
    assert config.proxy_headers is False
    assert config.server_header is False
    assert config.timeout_graceful_shutdown == 5
    assert isinstance(config.http, type)
    assert issubclass(config.http, BoundedRequestProtocol)
    assert config.http.request_read_timeout == 7


def test_uvicorn_config_takes_the_hosts_own_settings_over_its_defaults() -> None:
    config = uvicorn_config(
        Starlette(),
        host="127.0.0.1",
        port=8080,
        request_read_timeout=7,
        proxy_headers=True,
        forwarded_allow_ips="10.0.0.5",
        timeout_graceful_shutdown=9,
    )
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "10.0.0.5"
    assert config.timeout_graceful_shutdown == 9


def test_make_undumpable_holds_for_the_process_and_not_for_what_it_starts() -> None:
    # In a process of its own: the flag is the whole process's, for the rest of its life.
    script = (
        "import ctypes, subprocess, sys\n"
        "from mcp_front.serving import make_undumpable\n"
        "libc = ctypes.CDLL(None)\n"
        f"before = libc.prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0)\n"
        "done = make_undumpable()\n"
        f"after = libc.prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0)\n"
        "child = subprocess.run([sys.executable, '-c', 'import ctypes; "
        f"print(ctypes.CDLL(None).prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0))'], "
        "capture_output=True, text=True, check=True).stdout.strip()\n"
        "print(before, done, after, child)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["1", "True", "0", "1"]
