"""`checked_tls_files`: what `mcp-front serve` refuses before listening, naming the setting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcp_front.serving import TLSFilesError, checked_tls_files
from tests.support.tls import make_tls


def write_pair(
    directory: Path, *, expires_in: dt.timedelta, passphrase: bytes | None = None
) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + expires_in)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return str(cert_file), str(key_file)


def test_a_matching_pair_passes(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    checked_tls_files(str(tls.cert_file), str(tls.key_file), cert_source="c", key_source="k")


def test_an_expired_certificate_is_refused_with_its_date(tmp_path: Path) -> None:
    cert, key = write_pair(tmp_path, expires_in=-dt.timedelta(days=1))
    with pytest.raises(
        TLSFilesError, match=r"^proxy\.tls\.certFile: the certificate in .* expired on .*renew it"
    ):
        checked_tls_files(cert, key, cert_source="proxy.tls.certFile", key_source="proxy.tls.keyFile")


def test_an_encrypted_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    cert, key = write_pair(tmp_path, expires_in=dt.timedelta(days=1), passphrase=b"passphrase")
    with pytest.raises(
        TLSFilesError, match=r"^--tls-key: the key in .* is encrypted; give it unencrypted"
    ) as refused:
        checked_tls_files(cert, key, cert_source="--tls-cert", key_source="--tls-key")
    assert "BEGIN" not in str(refused.value)


def test_a_key_where_the_certificate_should_be_is_named(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    with pytest.raises(TLSFilesError, match=r"^proxy\.tls\.certFile: .* is not a PEM certificate"):
        checked_tls_files(
            str(tls.key_file),
            str(tls.cert_file),
            cert_source="proxy.tls.certFile",
            key_source="proxy.tls.keyFile",
        )


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    with pytest.raises(TLSFilesError, match=r"^--tls-cert: cannot read .*: Is a directory"):
        checked_tls_files(str(tmp_path), str(tls.key_file), cert_source="--tls-cert", key_source="--tls-key")
