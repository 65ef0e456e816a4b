from __future__ import annotations

import os

import pytest

from envlock.errors import IndexUnavailableError
from envlock.io.proc import clean_environment, run_echoing


def test_ambient_package_manager_configuration_is_dropped() -> None:
    env = clean_environment(
        {
            "PATH": "/usr/bin",
            "HOME": "/home/me",
            "SSL_CERT_FILE": "/etc/ssl/ca.pem",
            "HTTPS_PROXY": "http://proxy:3128",
            "UV_INDEX_URL": "http://evil/simple",
            "UV_CONSTRAINT": "c.txt",
            "UV_SYSTEM_CERTS": "1",
            "PIP_INDEX_URL": "http://evil/simple",
            "PIP_FIND_LINKS": "/opt/wheels",
            "VIRTUAL_ENV": "/venv",
            "CONDA_PREFIX": "/conda",
            "PYTHONPATH": "/x",
            "ENVLOCK_PYPI_INDEX_URL": "http://mirror/simple",
            "RANDOM_SECRET": "s",
        },
        {"UV_INDEX_PYPI_PASSWORD": "p"},
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "SSL_CERT_FILE": "/etc/ssl/ca.pem",
        "HTTPS_PROXY": "http://proxy:3128",
        "UV_SYSTEM_CERTS": "1",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_CERT": "/etc/ssl/ca.pem",  # pip < 24.2 reads no SSL_CERT_FILE
        "UV_INDEX_PYPI_PASSWORD": "p",
    }


def test_run_echoing_streams_stderr_and_captures_it() -> None:
    seen: list[str] = []
    done = run_echoing(
        ["sh", "-c", "echo out; echo one >&2; echo two >&2"], env=dict(os.environ), echo=seen.append
    )
    assert seen == ["one", "two"]
    assert done.stdout == "out\n"
    assert done.stderr == "one\ntwo\n"


def test_run_echoing_times_out_with_the_given_error() -> None:
    with pytest.raises(IndexUnavailableError, match="too slow"):
        run_echoing(
            ["sh", "-c", "sleep 5"],
            env=dict(os.environ),
            echo=print,
            timeout=0.3,
            timeout_error=IndexUnavailableError("too slow"),
        )
