"""A private certificate authority and a server certificate for 127.0.0.1, made at test time
(no keys checked in), so the fixture indexes can serve HTTPS that only the test's CA vouches
for: what a company's TLS-inspecting proxy or internal mirror looks like to uv and pip."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Authority:
    ca: Path  # the CA certificate (PEM): what a client must trust
    cert: Path  # the server's certificate chain (PEM)
    key: Path  # the server's private key (PEM)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def ca_directory(self, directory: Path) -> bool:
        """Lay the CA out as an SSL_CERT_DIR (named by its subject hash, as c_rehash does);
        False without the openssl command, which alone computes that hash."""
        if shutil.which("openssl") is None:
            return False
        hashed = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(self.ca)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (directory / f"{hashed}.0").write_bytes(self.ca.read_bytes())
        return True


def make_authority(directory: Path) -> Authority | None:
    """A CA and a 127.0.0.1 certificate it signed, in ``directory``; None when neither the
    ``cryptography`` package nor the ``openssl`` command is there to make them."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority(directory / "ca.pem", directory / "server.pem", directory / "key.pem")
    try:
        _with_cryptography(authority)
    except ImportError:
        if shutil.which("openssl") is None:
            return None
        _with_openssl(authority, directory)
    return authority


def _with_cryptography(out: Authority) -> None:
    from cryptography import x509  # noqa: PLC0415 - optional
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envlock test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _with_openssl(out: Authority, directory: Path) -> None:
    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    ca_key = directory / "ca-key.pem"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key)
    openssl(
        "req", "-x509", "-new", "-key", ca_key, "-out", out.ca, "-days", "7", "-subj",
        "/CN=envlock test CA", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", out.key)
    request = directory / "server.csr"
    openssl("req", "-new", "-key", out.key, "-out", request, "-subj", "/CN=127.0.0.1")
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    openssl(
        "x509", "-req", "-in", request, "-CA", out.ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", out.cert, "-days", "7", "-extfile", extensions,
    )  # fmt: skip
