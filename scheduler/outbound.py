"""The one guarded path for every outbound HTTP request a user can point somewhere (SSRF).

Mastodon servers, Bluesky PDSes (including the one a DID document names), link cards and their
images, and webhooks all go through here. The rules:

1. A URL is parsed once, with one parser (`parse_url`): http(s) only, a host, no userinfo
   (`user@`), no backslash, no whitespace or control characters. Anything two parsers could read
   differently is refused rather than interpreted.
2. The host is resolved once, when the connection is opened, and every address it resolves to
   must be public: no private, loopback, link-local, shared, multicast, reserved or unspecified
   address, nor their IPv4-mapped, NAT64 or 6to4 forms. Hosts listed in
   HERALD_ALLOWED_PRIVATE_HOSTS (`host` or `host:port`) skip the address check (a LAN server, the
   test suite's fakes).
3. The socket connects to the address that was checked. The URL keeps the host name, so the Host
   header, TLS SNI and the certificate check all use the name as usual. A second DNS answer
   (rebinding) never gets a say.
4. Because the check sits in the connection itself, every redirect hop and every connection a
   client library decides to open (an OAuth endpoint, a PDS named in a DID document) is checked.
5. Time and response size are capped, and every request carries one User-Agent.

Clients: `session()` is a requests.Session (Mastodon.py takes one as `session=`; `thread_session()`
is one kept per thread, for keep-alive), `client()` and
`transport()` serve httpx (the atproto SDK), and `fetch()` is a one-shot request for link cards
and webhooks.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

USER_AGENT = "Mozilla/5.0 (compatible; Herald/0.1; +https://github.com/herald-social/herald)"
# NAT64 (RFC 6052) and 6to4 addresses embed an IPv4 address that is what really gets reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")
_FORBIDDEN_CHARACTERS = frozenset("\\ \t\r\n\x00") | {chr(c) for c in range(0x20)} | {"\x7f"}
# A host whose last label is a number is an IPv4 address to browsers and C libraries (WHATWG URL).
_NUMERIC_HOST = re.compile(r"^(?:.*\.)?(?:0x[0-9a-f]*|[0-9]+)$")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    """The request could not be made; the message says why (safe to show to the user)."""


class UnsafeURL(OutboundError, ValueError):
    """The URL points somewhere Herald refuses to connect to, or cannot be read unambiguously."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, without brackets or a trailing dot
    port: int  # explicit or the scheme's default
    explicit_port: bool


# -- checks -----------------------------------------------------------------------------------------
def parse_url(url: str) -> Target:
    """Read `url` the one way Herald reads URLs. Raises UnsafeURL for anything refused."""
    if any(char in _FORBIDDEN_CHARACTERS for char in url):
        raise UnsafeURL(f"“{url}” contains a space, a backslash or a control character.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"“{url}” is not a valid web address.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"Only http and https addresses can be used, not “{url}”.")
    if "@" in parts.netloc:
        raise UnsafeURL(f"“{url}” contains a user name or password (user@host); remove it.")
    host = parts.hostname.lower().rstrip(".")
    if _NUMERIC_HOST.match(host) and not _is_dotted_quad(host):
        # 2130706433, 0177.0.0.1, 0x7f.1: each library reads these differently (or not at all).
        raise UnsafeURL(f"Write the address in “{url}” as four decimal numbers (like 192.0.2.1).")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, port or default, port is not None)


def _is_dotted_quad(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


def is_public_address(address: Address) -> bool:
    """True for addresses on the public internet (what an untrusted URL may reach)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _6TO4 and address.sixtofour is not None:
            return is_public_address(address.sixtofour)
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def is_allowed_private_host(host: str, port: int | None) -> bool:
    """Whether HERALD_ALLOWED_PRIVATE_HOSTS lets `host` (or `host:port`) skip the address check."""
    allowed = settings.HERALD_ALLOWED_PRIVATE_HOSTS
    return host in allowed or (port is not None and f"{host}:{port}" in allowed)


def checked_addresses(host: str, port: int) -> list[str]:
    """Resolve `host` once and return its addresses, every one of them checked.

    Raises UnsafeURL when any address is not public (and the host is not allowed), and
    socket.gaierror when the name does not resolve.
    """
    host = host.strip("[]").lower().rstrip(".")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if is_allowed_private_host(host, port):
        return addresses
    for address in addresses:
        if not is_public_address(ipaddress.ip_address(address)):
            raise UnsafeURL(
                f"“{host}” points at a private or local address ({address}); Herald only "
                "talks to public servers unless an administrator allows the host."
            )
    return addresses


def check_url(url: str) -> Target:
    """Parse `url` and check where it resolves now, for a clear error when a user types it.

    The connection checks again when it opens; this is for feedback, not the guard itself.
    Raises UnsafeURL (refused) or OutboundError (the host does not resolve).
    """
    target = parse_url(url)
    try:
        checked_addresses(target.host, target.port)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(f"Cannot find the server “{target.host}”: check the spelling.") from exc
    return target


def open_socket(
    host: str,
    port: int,
    timeout: float | None,
    *,
    source_address: tuple[str, int] | None = None,
    socket_options: Iterable[tuple[int, int, int]] | None = None,
) -> socket.socket:
    """A TCP connection to a checked address of `host`. Raises UnsafeURL, socket.gaierror, OSError."""
    error: OSError | None = None
    for address in checked_addresses(host, port):
        try:
            sock = socket.create_connection((address, port), timeout, source_address)
        except OSError as exc:
            error = exc
            continue
        for option in socket_options or ():
            sock.setsockopt(*option)
        return sock
    raise error or OSError(f"No address to connect to for {host}.")


# -- requests (Mastodon.py) -------------------------------------------------------------------------
class _PinnedConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        try:
            return open_socket(
                self._dns_host,
                self.port,
                self.timeout,  # type: ignore[arg-type]
                source_address=self.source_address,
                socket_options=self.socket_options,  # type: ignore[arg-type]
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except UnsafeURL:
            raise
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class _PinnedPool(HTTPConnectionPool):
    ConnectionCls = _PinnedConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go only to checked addresses, with capped answers."""

    def __init__(self, *, max_bytes: int | None = None, timeout: float | None = None) -> None:
        self.max_bytes = max_bytes or settings.HERALD_OUTBOUND_MAX_BYTES
        self.timeout = timeout or settings.HERALD_NETWORK_TIMEOUT
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedPool, "https": _PinnedHTTPSPool}

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        **kw: Any,
    ) -> requests.Response:
        parse_url(request.url or "")
        kw["proxies"] = None  # a proxy would resolve the name itself
        response = super().send(request, stream=True, timeout=timeout or self.timeout, **kw)
        if not stream:
            # What requests does for a non-streamed answer, with a cap (and it leaves the
            # connection to the pool once read).
            response._content = b"".join(_capped(response.iter_content(64 * 1024), self.max_bytes))
        return response


def session(*, max_bytes: int | None = None, timeout: float | None = None) -> requests.Session:
    """A requests.Session that only reaches checked addresses (see the module docstring)."""
    guarded = requests.Session()
    guarded.trust_env = False  # no proxies or .netrc from the environment
    # Never keep a cookie: one server's cookie must not ride along with another account's call.
    guarded.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    guarded.headers["User-Agent"] = USER_AGENT
    adapter = GuardedAdapter(max_bytes=max_bytes, timeout=timeout)
    guarded.mount("http://", adapter)
    guarded.mount("https://", adapter)
    return guarded


_threads = threading.local()


def thread_session() -> requests.Session:
    """This thread's guarded session, kept across calls: its connections stay open between one
    publish and the next to the same server (HTTP keep-alive), instead of a new TCP (and TLS)
    handshake each time. It keeps no cookie, and each call carries its own credentials."""
    shared = getattr(_threads, "session", None)
    if shared is None:
        shared = _threads.session = session()
    return shared


def _capped(chunks: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise requests.exceptions.ContentDecodingError(
                f"The answer is larger than {max_bytes // 1024} KB; Herald stopped reading it."
            )
        yield chunk


# -- httpx (the atproto SDK) ------------------------------------------------------------------------
class _PinnedBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"Cannot find the server {host}: {exc}") from exc
        error: Exception | None = None
        for address in addresses:  # the parent connects to the literal address: no new lookup
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"No address to connect to for {host}.")


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, max_bytes: int) -> None:
        self.stream, self.max_bytes = stream, max_bytes

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.stream:
            size += len(chunk)
            if size > self.max_bytes:
                raise httpx.ReadError(f"The answer is larger than {self.max_bytes // 1024} KB.")
            yield chunk

    def close(self) -> None:
        self.stream.close()


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go only to checked addresses; answers are capped
    at `max_bytes` (None: the caller reads with its own cap)."""

    def __init__(self, *, max_bytes: int | None = None) -> None:
        super().__init__(trust_env=False)
        self._pool._network_backend = _PinnedBackend()
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        parse_url(str(request.url))
        response = super().handle_request(request)
        if self.max_bytes is not None:
            assert isinstance(response.stream, httpx.SyncByteStream)
            response.stream = _CappedStream(response.stream, self.max_bytes)
        return response


def transport(*, max_bytes: int | None = None) -> GuardedTransport:
    """The httpx transport for SDKs that build their own httpx.Client (atproto's Request)."""
    return GuardedTransport(max_bytes=max_bytes or settings.HERALD_OUTBOUND_MAX_BYTES)


def client_options(*, timeout: float | None = None) -> dict[str, Any]:
    """Keyword arguments for an httpx.Client: the guarded transport, timeout, User-Agent."""
    return {
        "transport": transport(),
        "timeout": timeout or settings.HERALD_NETWORK_TIMEOUT,
        "headers": {"User-Agent": USER_AGENT},
        "trust_env": False,
    }


# -- one-shot requests (link cards, webhooks) --------------------------------------------------------
@dataclass
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    content: bytes
    truncated: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def fetch(
    method: str,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    max_redirects: int = 5,
    truncate: bool = False,
) -> Fetched:
    """One request through the guard, following up to `max_redirects` (each hop checked).

    A body over `max_bytes` is cut there when `truncate` (an HTML head is all a card needs),
    else refused. Returns the final answer (any status; with `max_redirects=0` a redirect is
    returned as is). Raises UnsafeURL for a refused target, OutboundError for every other failure
    (DNS, connection, timeout, too big, too many redirects).
    """
    parse_url(url)
    deadline = time.monotonic() + timeout
    with httpx.Client(
        transport=GuardedTransport(),
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=max_redirects > 0,
        max_redirects=max_redirects,
        trust_env=False,
    ) as client:
        try:
            with client.stream(method, url, headers=headers, content=content) as response:
                body, truncated = _read_capped(response, max_bytes, truncate, deadline)
                return Fetched(
                    str(response.url), response.status_code, response.headers, body, truncated
                )
        except httpx.TooManyRedirects as exc:
            raise OutboundError(f"Too many redirects (more than {max_redirects}).") from exc
        except httpx.TimeoutException as exc:
            raise OutboundError(f"{parse_url(url).host} did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise OutboundError(f"Could not reach {url}: {exc}") from exc


def _read_capped(
    response: httpx.Response, max_bytes: int, truncate: bool, deadline: float
) -> tuple[bytes, bool]:
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes and not truncate:
        raise OutboundError(f"The answer is larger than {max_bytes // 1024} KB.")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise OutboundError("The server took too long to send its answer.")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            if not truncate:
                raise OutboundError(f"The answer is larger than {max_bytes // 1024} KB.")
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
