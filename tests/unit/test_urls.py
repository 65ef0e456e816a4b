"""envlock.urls: credentials are used on the wire, never shown or written."""

from __future__ import annotations

import pytest

from envlock.urls import (
    PrivateIndex,
    has_credentials,
    page_url,
    private_indexes,
    query_secrets,
    redact_text,
    redact_to_host,
    redact_url,
    split_credentials,
)


@pytest.mark.parametrize(
    ("url", "clean", "user", "password"),
    [
        ("https://pypi.org/simple", "https://pypi.org/simple", None, None),
        ("https://u:p@host/x", "https://host/x", "u", "p"),
        ("https://token@host/x", "https://host/x", "token", None),
        ("https://u:@host/x", "https://host/x", "u", ""),
        ("https://u%40corp:p%2Fw@host:8443/x", "https://host:8443/x", "u@corp", "p/w"),
        ("https://u:p@host/x?k=v#frag", "https://host/x?k=v", "u", "p"),
        ("https://host/x#frag", "https://host/x", None, None),
        ("https://host/x?token=abc", "https://host/x?token=abc", None, None),
        ("file:///srv/wheels", "file:///srv/wheels", None, None),
    ],
    ids=lambda v: v if isinstance(v, str) and "://" in v else None,
)
def test_split_credentials(url: str, clean: str, user: str | None, password: str | None) -> None:
    assert split_credentials(url) == (clean, user, password)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://pypi.org/simple", False),
        ("https://u:p@host/x", True),
        ("https://token@host/x", True),
        ("https://host/x?token=abc", False),  # a query is a secret too, but not userinfo
    ],
)
def test_has_credentials(url: str, expected: bool) -> None:
    assert has_credentials(url) is expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://pypi.org/simple", "https://pypi.org/simple"),
        ("https://u:p@host/x", "https://host/x"),
        ("https://host/x?token=abc", "https://host/x"),
        ("https://u:p@host:8080/x?token=abc#f", "https://host:8080/x"),
        ("https://host/x#frag", "https://host/x"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("https://u:p@mirror.example:8443/simple?t=1", "mirror.example:8443"),
        ("https://files.pythonhosted.org/packages/x.whl", "files.pythonhosted.org"),
        ("wheels/six.whl", None),  # a path, not a URL
        ("C:\\wheels\\six.whl", None),  # a drive letter is not a scheme
        ("/abs/path", None),
        ("file:///srv/x", None),  # no host
    ],
)
def test_redact_to_host(location: str, host: str | None) -> None:
    assert redact_to_host(location) == host


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("https://host/simple", ()),
        ("https://host/simple?token=abc", ("abc",)),
        ("https://host/simple?a=1&b=&c=3", ("1", "3")),
    ],
)
def test_query_secrets(url: str, secrets: tuple[str, ...]) -> None:
    assert query_secrets(url) == secrets


@pytest.mark.parametrize(
    ("index", "page"),
    [
        ("https://pypi.org/simple", "https://pypi.org/simple/six/"),
        ("https://pypi.org/simple/", "https://pypi.org/simple/six/"),
        ("https://host/simple?token=abc", "https://host/simple/six/?token=abc"),
        ("https://host/simple#frag", "https://host/simple/six/"),
    ],
)
def test_page_url(index: str, page: str) -> None:
    assert page_url(index, "six") == page


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        ("fetch https://u:p@host/x failed", (), "fetch https://host/x failed"),
        ("a http://tok@h/x and https://u:p@g/y", (), "a http://h/x and https://g/y"),
        ("token s3cret in a message", ("s3cret",), "token **** in a message"),
        ("quoted p%2Fw here", ("p/w",), "quoted **** here"),
        ("nothing to hide", ("",), "nothing to hide"),
        ("user@example.com is not a URL", (), "user@example.com is not a URL"),
    ],
)
def test_redact_text(text: str, secrets: tuple[str, ...], shown: str) -> None:
    assert redact_text(text, secrets) == shown


@pytest.mark.parametrize(
    ("environ", "found"),
    [
        ({}, []),
        ({"ENVLOCK_PYPI_INDEX_URL": "https://mirror/simple"}, []),
        (
            {"ENVLOCK_PYPI_INDEX_URL": "https://u:p@mirror/simple"},
            [PrivateIndex("pypi", "https://u:p@mirror/simple", "https://mirror/simple", "u", "p")],
        ),
        (
            {"ENVLOCK_PYTORCH_INDEX_URL": "https://tok@t/whl", "OTHER_INDEX_URL": "https://a:b@c/"},
            [PrivateIndex("pytorch", "https://tok@t/whl", "https://t/whl", "tok", "")],
        ),
    ],
    ids=["none", "no-credentials", "pypi", "pytorch-token"],
)
def test_private_indexes(environ: dict[str, str], found: list[PrivateIndex]) -> None:
    assert private_indexes(environ) == found
