"""A throwaway certificate authority and an HTTPS server on loopback, for tests of clients
that must fetch over real TLS (client metadata documents)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class TLS:
    ca_pem: bytes
    cert_file: Path
    key_file: Path
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_tls(directory: Path) -> TLS:
    """A CA and a certificate for localhost and 127.0.0.1 signed by it, written to `directory`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return TLS(ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file, ca_file)


@dataclass
class DocumentServer:
    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def serve_document(
        self, path: str, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> str:
        url = self.url(path)
        self.routes[path] = (
            200,
            {"content-type": "application/json", **(headers or {})},
            json.dumps(document).encode(),
        )
        return url


@contextmanager
def serving_documents(tls: TLS, documents: DocumentServer) -> Iterator[uvicorn.Server]:
    """Serve `documents` over HTTPS on its port until the block ends."""

    async def handle(request: Request) -> Response:
        path = request.url.path
        documents.hits[path] = documents.hits.get(path, 0) + 1
        if documents.delay:
            await anyio.sleep(documents.delay)
        if path not in documents.routes:
            return JSONResponse({"error": "not found"}, status_code=404)
        status, headers, body = documents.routes[path]
        return Response(body, status_code=status, headers=headers)

    app = Starlette(routes=[Route("/{path:path}", handle)])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=documents.port,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("the document server did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
