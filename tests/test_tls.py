"""A trust store configured through the environment (a company CA for its TLS-inspecting proxy
or internal mirror) reaches uv and pip: cleaning the environment drops index configuration,
never TLS trust. The fixture indexes serve HTTPS that only a CA made by the test vouches for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from envlock.errors import ExitCode
from envlock.io.proc import clean_environment
from tests.conftest import Cli
from tests.support.indexes import StandardIndexes, start_standard_indexes
from tests.support.tls import Authority, make_authority
from tests.test_lock_e2e import write_spec

TRUST_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
)


def test_cleaning_the_environment_keeps_tls_trust_and_drops_index_configuration() -> None:
    trust = {
        "SSL_CERT_FILE": "/etc/corp/ca.pem",
        "SSL_CERT_DIR": "/etc/corp/certs",
        "SSL_CLIENT_CERT": "/etc/corp/me.pem",
        "REQUESTS_CA_BUNDLE": "/etc/corp/bundle.pem",
        "CURL_CA_BUNDLE": "/etc/corp/bundle.pem",
        "PIP_CERT": "/etc/corp/pip.pem",
        "PIP_CLIENT_CERT": "/etc/corp/me.pem",
        "UV_NATIVE_TLS": "1",
    }
    configuration = {"PIP_INDEX_URL": "http://evil/simple", "PIP_TRUSTED_HOST": "evil"}
    env = clean_environment({**trust, **configuration, "UV_INSECURE_HOST": "evil"})
    assert {k: env[k] for k in trust} == trust
    assert not {"PIP_INDEX_URL", "PIP_TRUSTED_HOST", "UV_INSECURE_HOST"} & set(env)


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_pip_gets_the_openssl_trust_uv_gets(variable: str) -> None:
    """pip < 24.2 reads no SSL_CERT_*: envlock names the same CAs to it as PIP_CERT."""
    assert clean_environment({variable: "/etc/corp/ca"})["PIP_CERT"] == "/etc/corp/ca"
    named = clean_environment({variable: "/etc/corp/ca", "REQUESTS_CA_BUNDLE": "/b.pem"})
    assert "PIP_CERT" not in named  # requests' own variable wins in pip anyway


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    made = make_authority(tmp_path_factory.mktemp("ca"))
    if made is None:
        pytest.skip("needs the cryptography package or the openssl command to make a CA")
    return made


@pytest.fixture(scope="module")
def https_indexes(
    tmp_path_factory: pytest.TempPathFactory, authority: Authority
) -> Iterator[StandardIndexes]:
    served = start_standard_indexes(
        tmp_path_factory.mktemp("https-indexes"), tls=authority.server_context()
    )
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def https_lock(
    isolated_env: Path,
    cli: Cli,
    https_indexes: StandardIndexes,
    authority: Authority,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A lock of the HTTPS indexes (uv trusts the CA through SSL_CERT_FILE), and an
    environment that trusts nothing but the public CAs again, with cold caches."""
    for name in TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", https_indexes.pypi_url)
    monkeypatch.setenv("ENVLOCK_PYTORCH_INDEX_URL", https_indexes.pytorch_url)
    monkeypatch.setenv("ENVLOCK_HTTP_RETRIES", "0")
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(isolated_env / "none"))
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.ca))
    write_spec(isolated_env, vision=False)
    locked = cli("lock")
    assert locked.code == 0, locked.stderr
    assert "https://127.0.0.1:" in (isolated_env / "pylock.toml").read_text()
    monkeypatch.delenv("SSL_CERT_FILE")
    # Nothing cached: every artifact is fetched over TLS (pip's cache lives under HOME).
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("cold-cache")))
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    return isolated_env


# What each installer honours (found by running them): uv reads SSL_CERT_FILE / SSL_CERT_DIR
# only; pip (23.x, as ensurepip seeds it) reads PIP_CERT and requests' REQUESTS_CA_BUNDLE /
# CURL_CA_BUNDLE, and SSL_CERT_FILE through envlock, which hands it to pip as PIP_CERT.
HONOURED = [
    ("uv", "SSL_CERT_FILE"),
    ("pip", "SSL_CERT_FILE"),
    ("pip", "PIP_CERT"),
    ("pip", "REQUESTS_CA_BUNDLE"),
    ("pip", "CURL_CA_BUNDLE"),
]


@pytest.mark.parametrize(("installer", "variable"), HONOURED)
def test_sync_trusts_the_ca_the_environment_names(
    https_lock: Path,
    cli: Cli,
    authority: Authority,
    monkeypatch: pytest.MonkeyPatch,
    installer: str,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, str(authority.ca))
    result = cli("sync", "--venv", ".venv", "--installer", installer)
    assert result.code == 0, result.stderr
    assert cli("verify", "--venv", ".venv").code == 0


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_sync_trusts_a_ca_directory(
    https_lock: Path,
    cli: Cli,
    authority: Authority,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    installer: str,
) -> None:
    """SSL_CERT_DIR: OpenSSL's directory of CAs, each under its subject hash (c_rehash)."""
    directory = tmp_path_factory.mktemp("certs")
    if not authority.ca_directory(directory):
        pytest.skip("needs the openssl command to name the CA by its subject hash")
    monkeypatch.setenv("SSL_CERT_DIR", str(directory))
    result = cli("sync", "--venv", ".venv", "--installer", installer)
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_sync_without_the_ca_is_an_index_error(https_lock: Path, cli: Cli, installer: str) -> None:
    """The control: the HTTPS indexes really are untrusted without the CA."""
    result = cli("sync", "--venv", ".venv", "--installer", installer)
    assert result.code == ExitCode.INDEX, result.stderr
    assert "hint: " in result.stderr
    assert "certificate" in result.stderr.lower()
    assert not (https_lock / ".venv").exists()
