from __future__ import annotations

from envlock.io.proc import clean_environment


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
        "UV_INDEX_PYPI_PASSWORD": "p",
    }
