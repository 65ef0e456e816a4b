"""The digest a container registry serves for an image tag (Docker Registry HTTP API v2).

``GET /v2/<repository>/manifests/<tag>`` with the manifest media types a multi-platform image
has (an OCI index or a Docker manifest list), anonymous bearer tokens the way Docker Hub hands
them out (``WWW-Authenticate: Bearer realm=…,service=…,scope=…``), and the digest from
``Docker-Content-Digest``, else the sha256 of the manifest bytes as served (which is what a
digest is). Used by `envlock lock` to record base image digests; a registry that cannot be
reached is an IndexUnavailableError the caller turns into a note: a digest is never invented.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlencode

from envlock.errors import IndexUnavailableError
from envlock.io import http
from envlock.urls import redact_url

# Docker Hub's registry; ENVLOCK_DOCKER_REGISTRY points elsewhere (a mirror), "off" disables.
DOCKER_HUB = "https://registry-1.docker.io"
_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def registry_url(environ: Mapping[str, str]) -> str | None:
    """The registry to ask, or None when ENVLOCK_DOCKER_REGISTRY=off."""
    value = environ.get("ENVLOCK_DOCKER_REGISTRY", "").strip()
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return (value or DOCKER_HUB).rstrip("/")


def _split(reference: str) -> tuple[str, str]:
    name, _, tag = reference.rpartition(":")
    if "/" not in name:
        name = f"library/{name}"  # Docker Hub's official images
    return name, tag


def _token(client: http.Client, challenge: str, repository: str) -> str:
    fields = dict(_CHALLENGE.findall(challenge))
    realm = fields.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise IndexUnavailableError(
            "the registry asked for a token without saying where to get it",
            hint="Pass the digest yourself: [docker] digests in torchenv.toml.",
        )
    fields.setdefault("scope", f"repository:{repository}:pull")
    with client.get(f"{realm}?{urlencode(fields)}") as response:
        body = response.read()
        if response.status != 200:
            raise IndexUnavailableError(
                f"the registry's token service answered HTTP {response.status}",
                hint="Pass the digest yourself: [docker] digests in torchenv.toml.",
            )
    try:
        data = json.loads(body)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise IndexUnavailableError(
            "the registry's token service sent no token",
            hint="Pass the digest yourself: [docker] digests in torchenv.toml.",
        )
    return token


_MANIFEST_TYPES = frozenset(t.strip() for t in _ACCEPT.split(","))
_MAX_MANIFEST = 4 << 20  # an image index is a few KB; anything this big is not one
_DEADLINE_S = 60.0  # a registry that drips bytes must not stall `envlock lock`


def _body(response: http.Response, deadline: float) -> bytes:
    """The manifest body, at most _MAX_MANIFEST bytes, read before ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes(1 << 16):
        size += len(chunk)
        if size > _MAX_MANIFEST:
            raise _refused(f"sent a manifest of more than {_MAX_MANIFEST >> 20} MiB")
        if time.monotonic() > deadline:
            raise _refused(f"took more than {_DEADLINE_S:.0f} s to send a manifest")
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(why: str) -> IndexUnavailableError:
    return IndexUnavailableError(
        f"the registry {why}",
        hint="Check ENVLOCK_DOCKER_REGISTRY, or pin the digest yourself: [docker] digests in "
        "torchenv.toml.",
    )


def _ask(
    client: http.Client, url: str, headers: dict[str, str], repository: str, method: str
) -> tuple[int, str, str, bytes]:
    """(status, content type, Docker-Content-Digest, body) for one manifest request, with
    one anonymous bearer token fetched when the registry asks for it (Docker Hub does)."""
    deadline = time.monotonic() + _DEADLINE_S
    for attempt in range(2):
        with client.get(url, headers=headers, method=method) as response:
            body = _body(response, deadline)
            status = response.status
            challenge = response.header("WWW-Authenticate")
            kind = response.header("Content-Type").split(";", 1)[0].strip()
            digest = response.header("Docker-Content-Digest").strip()
        if status == 401 and attempt == 0 and challenge.lower().startswith("bearer "):
            headers["Authorization"] = "Bearer " + _token(client, challenge, repository)
            continue
        break
    return status, kind, digest, body


def image_digest(reference: str, *, registry: str, timeout: float | None = None) -> str | None:
    """The sha256 digest ``registry`` serves for ``reference`` (name:tag); None when the
    registry has no such tag. IndexUnavailableError when it cannot be asked, or answers with
    something that is not a manifest (a captive portal's page is never a digest).

    HEAD first (Docker Hub does not count it against the pull limit) and its
    Docker-Content-Digest; without that header, GET the manifest, check it is one (its media
    type) and digest its bytes, and where both exist they must agree."""
    repository, tag = _split(reference)
    url = f"{registry}/v2/{quote(repository)}/manifests/{quote(tag)}"
    headers = {"Accept": _ACCEPT}
    try:
        with http.Client(timeout=timeout or http.timeout_s(10)) as client:
            status, _kind, digest, _ = _ask(client, url, headers, repository, "HEAD")
            if status == 404:
                return None
            if status == 200 and _DIGEST.fullmatch(digest):
                return digest
            status, kind, digest, body = _ask(client, url, headers, repository, "GET")
    except http.TransportError as exc:
        raise IndexUnavailableError(
            f"the registry {redact_url(registry)} could not be reached: {exc.reason}",
            hint=http.UNTRUSTED_HINT if exc.untrusted else "Check the network, then run it again.",
        ) from None
    if status == 404:
        return None
    if status != 200:
        raise IndexUnavailableError(
            f"the registry {redact_url(registry)} answered HTTP {status} for {reference}",
            hint="Check that the image tag exists there.",
        )
    if kind not in _MANIFEST_TYPES:
        raise _refused(
            f"{redact_url(registry)} answered {reference} with {kind or 'no content type'}, "
            "not an image manifest"
        )
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    if digest and digest != computed:
        raise _refused(
            f"{redact_url(registry)} sent a manifest for {reference} whose bytes are not the "
            f"digest it names ({digest[:19]}…)"
        )
    return computed


class Prefetch:
    """The digests of ``tags``, asked for in a thread while the caller does something else
    (`envlock lock` starts it before uv resolves: the registry's round trips, and its timeout
    when it is out of reach, were added to every lock). The first tag the registry cannot be
    asked for ends it, as a lock asks no further then; a tag it did not get to is asked again
    by the caller. Daemonic: a lock that fails does not wait for it."""

    def __init__(self, tags: Sequence[str], *, registry: str) -> None:
        self._found: dict[str, str | IndexUnavailableError | None] = {}
        self._thread = threading.Thread(
            target=self._run, args=(tuple(tags), registry), name="envlock-digests", daemon=True
        )
        self._thread.start()

    def _run(self, tags: tuple[str, ...], registry: str) -> None:
        for tag in tags:
            try:
                self._found[tag] = image_digest(tag, registry=registry)
            except IndexUnavailableError as exc:
                self._found[tag] = exc
                return
            except Exception:  # the caller asks again, where it is reported
                return

    def found(self) -> dict[str, str | IndexUnavailableError | None]:
        """What the registry said for each tag it was asked for (waits for the thread)."""
        self._thread.join()
        return dict(self._found)
