"""envlock's own HTTP: the one client every request envlock makes itself goes through.

uv does the index traffic of resolving and installing. envlock itself reads project pages (the
lock's hash check), downloads artifacts (bundle, --hash-missing=download) and asks an index for
a status (to name a refusal in an error). All of it goes through :class:`Client`:

- the standard library only (http.client + ssl): 30 ms to import, where requests takes 80 ms
  (measured here, median of 3 runs each), and `envlock lock` imports it for every lock with a
  non-PyPI index. requests is not used by envlock any more;
- connections kept alive and reused per (scheme, host, port, proxy): a lock's pages, a
  bundle's wheels each open one connection per host and concurrent worker, not one per request;
- credentials: the ones given for a request, else the host's entry in ~/.netrc ($NETRC), as uv
  and pip find them; a redirect to another host never carries them there (that host's netrc
  entry applies instead);
- TLS trust: the system's store as OpenSSL finds it (SSL_CERT_FILE / SSL_CERT_DIR replace its
  file / directory, as for uv), and the CAs REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE name (as for
  pip): every variable is honoured by every request, pages and downloads alike;
- proxies from HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, as urllib reads them;
- ENVLOCK_HTTP_TIMEOUT seconds per connect or read, as for uv.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from envlock import __version__
from envlock.errors import IndexUnavailableError
from envlock.urls import redact_url, split_credentials

# Whom to trust, in the names each tool reads: OpenSSL/uv, requests/pip.
TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
# A kept-alive connection the server closed meanwhile fails like this on its next request.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

Auth = tuple[str, str]


def timeout_s(default: float) -> float:
    """ENVLOCK_HTTP_TIMEOUT (seconds) for envlock's own requests, as for uv's."""
    try:
        return float(os.environ.get("ENVLOCK_HTTP_TIMEOUT") or default)
    except ValueError:
        return default


_RETRY = "Check the network/proxy (and the TLS trust variables) and try again."
UNTRUSTED_HINT = (
    "Name the CA that signed the index's certificate (a company proxy's, a private mirror's) "
    "in SSL_CERT_FILE (or SSL_CERT_DIR): envlock, uv and pip all honour it."
)


class TransportError(IndexUnavailableError):
    """No (whole) HTTP answer came back; ``reason`` says why in a few words (callers put it in
    their own message: "downloading X failed: <reason>"); ``untrusted``: the TLS certificate
    was not one the trust store vouches for."""

    def __init__(self, url: str, reason: str, *, hint: str, untrusted: bool = False) -> None:
        super().__init__(f"{redact_url(url)}: {reason}", hint=UNTRUSTED_HINT if untrusted else hint)
        self.reason = reason
        self.untrusted = untrusted


def tls_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """The system's CAs (as OpenSSL finds them: SSL_CERT_FILE / SSL_CERT_DIR replace its file /
    directory) plus every CA file or directory the trust variables in ``environ`` name."""
    context = ssl.create_default_context()
    for variable in TRUST_VARIABLES:
        path = environ.get(variable)
        if not path:
            continue
        try:
            if Path(path).is_dir():
                context.load_verify_locations(capath=path)
            else:
                context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise IndexUnavailableError(
                f"{variable} names {path}, which holds no CA certificate envlock can read "
                f"({getattr(exc, 'strerror', None) or exc})",
                hint=f"Point {variable} at a PEM file of CA certificates (or an OpenSSL "
                "directory of them), or unset it.",
            ) from None
    return context


def netrc_auth(url: str, environ: Mapping[str, str]) -> Auth | None:
    """Credentials for the URL's host from ~/.netrc (or $NETRC), as uv and pip would use them."""
    import netrc  # noqa: PLC0415 - only when a request needs credentials

    path = Path(environ.get("NETRC") or Path.home() / ".netrc")
    host = urlsplit(url).hostname
    if not host or not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return (entry[0] or "", entry[2] or "") if entry else None


def _basic(auth: Auth) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def _reason(exc: BaseException, *, connecting: bool) -> str:
    """What went wrong, in the words an error message uses (never a URL: no secrets)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, TimeoutError):
        return "the connection timed out" if connecting else "the server stopped answering"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed before the whole file arrived"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http.client.HTTPException):
        return f"the server did not answer HTTP ({type(exc).__name__})"
    if connecting:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"could not connect ({detail})"
    return "the connection closed before the whole file arrived"


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a connection goes: the origin, and the proxy it goes through (if any)."""

    scheme: str
    host: str
    port: int
    proxy: str | None = None  # the proxy URL, credentials included (never shown)


class Response:
    """An answer being read: status, headers and the body, streamed once."""

    def __init__(
        self, raw: http.client.HTTPResponse, url: str, release: Callable[[bool], None]
    ) -> None:
        self.status = raw.status
        self.url = url  # after redirects
        self._raw = raw
        self._release = release
        self._whole = False

    def header(self, name: str, default: str = "") -> str:
        return self._raw.getheader(name, default)

    def iter_bytes(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The body in pieces; TransportError when it stops short of its Content-Length."""
        try:
            while chunk := self._raw.read(size):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(self.url, _reason(exc, connecting=False), hint=_RETRY) from None
        if self._raw.length:  # http.client ends a cut-short body silently
            raise TransportError(
                self.url, "the connection closed before the whole file arrived", hint=_RETRY
            )
        self._whole = True

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def close(self) -> None:
        # A connection whose answer was read to its end serves the next request to that host.
        keep = self._whole and not self._raw.will_close
        if not keep:
            self._raw.close()  # the socket lives on in the response until it is closed
        self._release(keep)


class Client:
    """GET requests with connection reuse, netrc, TLS trust and proxies (see the module note).

    Safe to share between threads: each request holds a connection of its own while it runs.
    """

    def __init__(self, *, timeout: float, environ: Mapping[str, str] | None = None) -> None:
        self._timeout = timeout
        self._environ = os.environ if environ is None else environ
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[_Route, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    @contextlib.contextmanager
    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        method: str = "GET",
    ) -> Iterator[Response]:
        """GET (or HEAD) ``url`` (redirects followed); the response's connection is reused
        afterwards when its body was read to the end. Raises TransportError when no answer
        comes."""
        url, user, password = split_credentials(url)
        if auth is None and user is not None:
            auth = (user, password or "")
        response = self._follow(url, dict(headers or {}), auth, method)
        try:
            yield response
        finally:
            response.close()

    def _follow(
        self, url: str, headers: dict[str, str], auth: Auth | None, method: str = "GET"
    ) -> Response:
        credentials = auth if auth is not None else netrc_auth(url, self._environ)
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._request(url, headers, credentials, method)
            location = response.header("Location")
            if response.status not in _REDIRECTS or not location:
                return response
            response.close()  # unread: that connection is not reused
            target = urljoin(url, location)
            if urlsplit(target)[:2] != urlsplit(url)[:2]:  # another origin: not our secret
                credentials = netrc_auth(target, self._environ)
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = target
        raise TransportError(url, f"more than {_MAX_REDIRECTS} redirects", hint=_RETRY)

    def _route(self, url: str) -> tuple[_Route, str]:
        """The connection a URL needs, and the request target to send on it."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(url, f"not an http(s) URL ({scheme or 'no scheme'})", hint=_RETRY)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise TransportError(url, "the URL's port is not a number", hint=_RETRY) from None
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        proxy = None
        if not urllib.request.proxy_bypass(parts.hostname):
            proxies = urllib.request.getproxies()
            proxy = proxies.get(scheme) or proxies.get("all")
        if proxy is not None and scheme == "http":
            target = url  # a plain-HTTP proxy takes the absolute URL
        return _Route(scheme, parts.hostname, port, proxy), target

    def _request(
        self,
        url: str,
        headers: Mapping[str, str],
        credentials: Auth | None,
        method: str = "GET",
    ) -> Response:
        route, target = self._route(url)
        sent = {"User-Agent": f"envlock/{__version__}", **headers}
        if credentials is not None:
            sent["Authorization"] = _basic(credentials)
        if route.proxy is not None and route.scheme == "http":
            sent.update(self._proxy_headers(route.proxy))
        connection, reused = self._take(url, route)
        try:
            try:
                connection.request(method, target, headers=sent)
                raw = connection.getresponse()
            except _STALE:
                if not reused:
                    raise
                connection.close()  # closed while idle: once more on a new connection
                connection = self._connect(url, route)
                connection.request(method, target, headers=sent)
                raw = connection.getresponse()
        except TransportError:
            connection.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise TransportError(url, _reason(exc, connecting=False), hint=_RETRY) from None
        return Response(raw, url, lambda keep: self._release(route, connection, keep=keep))

    def _take(self, url: str, route: _Route) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection on the route (reused: True), else a new one."""
        with self._lock:
            idle = self._idle.get(route)
            if idle:
                return idle.pop(), True
        return self._connect(url, route), False

    def _release(
        self, route: _Route, connection: http.client.HTTPConnection, *, keep: bool
    ) -> None:
        if not keep:
            connection.close()
            return
        with self._lock:
            self._idle.setdefault(route, []).append(connection)

    def _tls_context(self) -> ssl.SSLContext:
        """One context per client: the system's store is read once, not per connection."""
        with self._lock:
            if self._tls is None:
                self._tls = tls_context(self._environ)
            return self._tls

    def _connect(self, url: str, route: _Route) -> http.client.HTTPConnection:
        """A new connection, connected now (so a failure to connect reads as one)."""
        host, port = route.host, route.port
        tunnel = route.proxy is not None and route.scheme == "https"
        if route.proxy is not None:
            proxy = urlsplit(route.proxy if "://" in route.proxy else f"http://{route.proxy}")
            host, port = proxy.hostname or "", proxy.port or 80
        connection: http.client.HTTPConnection
        if route.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=self._tls_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
        if tunnel:
            assert route.proxy is not None
            connection.set_tunnel(route.host, route.port, headers=self._proxy_headers(route.proxy))
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise TransportError(
                url,
                _reason(exc, connecting=True),
                hint=_RETRY,
                untrusted=isinstance(exc, ssl.SSLCertVerificationError),
            ) from None
        return connection

    @staticmethod
    def _proxy_headers(proxy: str) -> dict[str, str]:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.username is None:
            return {}
        user, password = unquote(parts.username), unquote(parts.password or "")
        return {"Proxy-Authorization": _basic((user, password))}


def http_status(url: str, auth: Auth | None = None, timeout: float = 10.0) -> int | None:
    """The HTTP status a GET of ``url`` answers, or None when nothing answers."""
    try:
        with (
            Client(timeout=timeout) as client,
            client.get(url, headers={"Accept": "text/html"}, auth=auth) as response,
        ):
            return response.status
    except IndexUnavailableError:  # no answer, or trust variables naming nothing readable
        return None
