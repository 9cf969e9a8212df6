"""Fetching URLs that users typed, without letting them reach inside our network (SSRF).

`safe_request()` is the guarded fetch every outbound request to a user-chosen URL should use (link
cards, webhooks, media URLs): http(s) only; the host is resolved once and every address it
resolves to must be public (no private, loopback, link-local, shared, multicast or reserved
ranges, IPv4-mapped and NAT64 forms included); the connection then goes to that checked address
(so a second DNS answer cannot swap in a private one); each redirect is checked the same way; the
body is capped and the whole exchange has a deadline. Hosts listed in HERALD_ALLOWED_PRIVATE_HOSTS
(`host` or `host:port`) skip the address check, for LAN setups and the test suite's local servers.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (compatible; Herald/0.1; +https://github.com/herald-social/herald)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# NAT64 (RFC 6052) and 6to4 addresses embed an IPv4 address that is what really gets reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")


class FetchError(Exception):
    """The URL could not be fetched; the message says why (safe to show to the user)."""


class UnsafeURL(FetchError):
    """The URL points somewhere Herald refuses to connect to."""


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


@dataclass
class _Target:
    url: str  # the URL with the checked address in place of the host name
    host_header: str
    hostname: str
    scheme: str


# -- the guarded fetch -------------------------------------------------------------------------------
def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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
    allowed = settings.HERALD_ALLOWED_PRIVATE_HOSTS
    return host in allowed or (port is not None and f"{host}:{port}" in allowed)


def check_url(url: str) -> _Target:
    """Resolve `url`'s host and check every address. Returns where to connect; raises UnsafeURL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"“{url}” is not a valid web address.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"Only http and https addresses can be fetched, not “{url}”.")
    host = parts.hostname.lower()
    default_port = 443 if parts.scheme == "https" else 80
    try:
        infos = socket.getaddrinfo(host, port or default_port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Cannot find the server “{host}”: check the spelling.") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not is_allowed_private_host(host, port):
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeURL(
                    f"“{host}” points at a private or local address ({address}); Herald only "
                    "talks to public servers unless an administrator allows the host."
                )
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{port}" if port else literal
    host_header = f"{host}:{port}" if port else host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return _Target(pinned, host_header, host, parts.scheme)


def safe_request(
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
    """Fetch `url` through the SSRF guard (see the module docstring).

    A body over `max_bytes` is cut there when `truncate` (an HTML head is all a card needs),
    else refused. Returns the final response (any status); raises UnsafeURL for a refused target
    and FetchError for every other failure (DNS, connection, timeout, too big, too many hops).
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client:
        for _ in range(max_redirects + 1):
            target = check_url(url)
            fetched = _request_once(
                client, method, target, url, headers or {}, content, max_bytes, truncate, deadline
            )
            location = fetched.headers.get("location")
            if fetched.status not in REDIRECT_STATUSES or not location:
                return fetched
            url = urljoin(url, location)
            if fetched.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                method, content = "GET", None
    raise FetchError(f"Too many redirects (more than {max_redirects}).")


def _request_once(
    client: httpx.Client,
    method: str,
    target: _Target,
    url: str,
    headers: dict[str, str],
    content: bytes | None,
    max_bytes: int,
    truncate: bool,
    deadline: float,
) -> Fetched:
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.hostname  # TLS and its certificate check use the name
    request_headers = {"User-Agent": USER_AGENT, **headers, "Host": target.host_header}
    try:
        with client.stream(
            method, target.url, headers=request_headers, content=content, extensions=extensions
        ) as response:
            body, truncated = _read_capped(response, max_bytes, truncate, deadline)
            return Fetched(url, response.status_code, response.headers, body, truncated)
    except httpx.TimeoutException as exc:
        raise FetchError(f"{target.hostname} did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"Could not fetch {url}: {exc}") from exc


def _read_capped(
    response: httpx.Response, max_bytes: int, truncate: bool, deadline: float
) -> tuple[bytes, bool]:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes and not truncate:
        raise FetchError(f"The file is larger than {max_bytes // 1024} KB.")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise FetchError("The server took too long to send the page.")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            if not truncate:
                raise FetchError(f"The file is larger than {max_bytes // 1024} KB.")
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
