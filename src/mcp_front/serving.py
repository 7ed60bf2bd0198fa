"""Serving the gateway with uvicorn, as `mcp-front serve` does.

`GatewayServer` is uvicorn's server, stopping a gateway well; `uvicorn_config` serves with
`connection_limits.BoundedRequestProtocol`, which bounds what a client can hold before its
request is complete; `make_undumpable` keeps the process's secrets from the other
processes of its user; `serve` does all of it for a host app that mounts the gateway.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import socket
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import uvicorn

from mcp_front.connection_limits import REQUEST_READ_TIMEOUT, bounded_request_protocol
from mcp_front.errors import MCPFrontError
from mcp_front.gateway import Gateway
from mcp_front.logs import configure_logging

__all__ = [
    "GatewayServer",
    "close_inherited_descriptors_on_exec",
    "make_undumpable",
    "raise_open_files_limit",
    "reap_as_process_one",
    "serve",
    "uvicorn_config",
]

_PR_SET_DUMPABLE: Final = 4


def uvicorn_config(
    app: Any, *, host: str, port: int, request_read_timeout: float, **options: Any
) -> uvicorn.Config:
    """How the gateway is served: its own request deadline, no server header, and no
    `X-Forwarded-*` handling by uvicorn (the app believes them from `proxy.trustedProxies`
    only); `options` go to `uvicorn.Config`, over these."""
    settings: dict[str, Any] = {
        "proxy_headers": False,
        "log_config": None,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        "server_header": False,
        **options,
    }
    bounded = bounded_request_protocol(request_read_timeout)
    return uvicorn.Config(app, host=host, port=port, http=bounded, **settings)


class TLSFilesError(MCPFrontError):
    """A certificate or key that cannot serve HTTPS, named by where it was configured."""


def checked_tls_files(cert_file: str, key_file: str, *, cert_source: str, key_source: str) -> None:
    """Refuse, at start rather than at the first connection, TLS files that cannot be read,
    are not PEM, or do not belong together; `*_source` name the flag or key that gave them."""
    for path, source in ((cert_file, cert_source), (key_file, key_source)):
        try:
            with open(path, "rb") as file:
                file.read(1)
        except OSError as error:
            raise TLSFilesError(f"{source}: cannot read {path}: {error.strerror}") from None
    _check_certificate(cert_file, cert_source)
    _check_key(key_file, key_source)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        # A password callback, so that OpenSSL never stops to prompt on a terminal.
        context.load_cert_chain(cert_file, key_file, password=lambda: b"")
    except ssl.SSLError as error:
        reason = error.reason or str(error)
        raise TLSFilesError(
            f"{cert_source} and {key_source}: not a PEM certificate and its unencrypted private "
            f"key, or they do not match ({reason})"
        ) from None


def _check_certificate(path: str, source: str) -> None:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except ValueError:
        raise TLSFilesError(
            f'{source}: {path} is not a PEM certificate (it begins "-----BEGIN CERTIFICATE-----")'
        ) from None
    expiry = certificate.not_valid_after_utc
    if expiry < datetime.now(UTC):
        raise TLSFilesError(
            f"{source}: the certificate in {path} expired on {expiry:%Y-%m-%d %H:%M} UTC; renew it"
        )


def _check_key(path: str, source: str) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(Path(path).read_bytes(), password=None)
    except TypeError:
        raise TLSFilesError(
            f"{source}: the key in {path} is encrypted; give it unencrypted "
            "(openssl pkey -in KEY -out PLAIN_KEY), readable only by the gateway"
        ) from None
    except ValueError:
        raise TLSFilesError(f"{source}: {path} is not a PEM private key") from None


class GatewayServer(uvicorn.Server):
    """uvicorn's server, stopping a gateway well.

    Shutdown begins by ending every session, which ends their open event streams, so
    uvicorn need not wait out its timeout for them. A signal is the normal way to stop,
    so the process exits 0 rather than re-raising it; a second SIGINT forces the exit.
    """

    def __init__(self, gateway: Gateway, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.gateway = gateway

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.gateway.sessions.close_all()
        await super().shutdown(sockets)


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (every connection is
    one); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, 1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def make_undumpable() -> bool:
    """Make this process undumpable (Linux's `prctl(PR_SET_DUMPABLE, 0)`); whether it was.

    The other processes of the gateway's user (a stdio server or a command tool run
    without a sandbox) can then no longer read its environment, memory or open files
    through `/proc`, nor trace it; only a process with `CAP_SYS_PTRACE` can. It writes no
    core dump. The programs it starts are dumpable again, as `execve` resets the flag.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    request_read_timeout: float = REQUEST_READ_TIMEOUT,
    **options: Any,
) -> None:
    """Serve `app`, a host application with the gateway mounted in it, until a signal, as
    `mcp-front serve` serves the gateway: an undumpable process, a deadline for incomplete
    requests, `X-Forwarded-*` left to the gateway's `proxy.trustedProxies`, and at most 5 s
    of waiting for open streams on shutdown. `options` go to `uvicorn.Config`.

    Logs go to standard error unless the host has configured logging already.
    """
    make_undumpable()
    close_inherited_descriptors_on_exec()
    if not logging.getLogger().handlers:
        configure_logging()
    config = uvicorn_config(app, host=host, port=port, request_read_timeout=request_read_timeout, **options)
    uvicorn.Server(config).run()


def close_inherited_descriptors_on_exec() -> int:
    """Mark every file descriptor above 2 that this process holds now close-on-exec; how
    many were not.

    What the process opens itself is close-on-exec already; what it inherited from whoever
    started it may not be, and uvloop starts children without closing such descriptors
    (it ignores `close_fds`): a stdio server or a command tool would get them.
    """
    marked = 0
    try:
        held = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    for descriptor in held:
        if descriptor <= 2:
            continue
        try:
            if os.get_inheritable(descriptor):
                os.set_inheritable(descriptor, False)
                marked += 1
        except OSError:  # the listing's own descriptor, closed since
            continue
    return marked


_FORWARDED_SIGNALS: Final = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def reap_as_process_one() -> None:
    """Where this process is process 1 (a container's entry point without an init), split
    in two: the child returns and goes on to serve; this process stays as its init, passes
    signals on to it, reaps every orphan (each sandbox leaves exited helpers to process 1)
    and ends as the child ends. Elsewhere, nothing happens.

    Call it first thing, before any thread starts: only the calling thread survives a fork.
    """
    if os.getpid() != 1:
        return
    # Held back across the fork: process 1 drops a signal it has no handler for.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED_SIGNALS)
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        # Out of the terminal's foreground group: a ^C reaches it once, through the init.
        os.setpgid(0, 0)
        return
    make_undumpable()  # it holds the same environment as the gateway
    for signum in _FORWARDED_SIGNALS:
        signal.signal(signum, lambda received, _frame: os.kill(child, received))
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
