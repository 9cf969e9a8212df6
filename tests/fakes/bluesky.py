"""A stateful fake Bluesky PDS that the real `atproto` SDK talks to over HTTP.

    fake = FakePDS().start()
    client = atproto.Client(base_url=fake.url)
    client.login(ALICE_HANDLE, ALICE_APP_PASSWORD)

Behaviour follows the reference PDS (bluesky-social/atproto `packages/pds`) where it matters to a
scheduler:

- sessions: JWT-shaped HS256 tokens; `refreshSession` rotates the refresh token and leaves the
  old one a 2-hour grace window in which re-use yields a refresh token with the same `jti`; after
  that 400 `ExpiredToken` "Token has been revoked". Expired access tokens are 400 `ExpiredToken`,
  malformed ones 400 `InvalidToken`. Access tokens are stateless, so revoking an app password
  only kills refresh tokens and logins (pass `revoke_access_tokens=True` for the harsher variant).
- records: real CIDs (dag-cbor + sha256, via libipld), TID rkeys for `app.bsky.feed.post`,
  duplicate `createRecord` rkey -> 500 `InternalServerError`, `putRecord` with an identical record
  is a no-op (no commit, `writes` unchanged), blob references verified at write time.
- rate limits: `RateLimit-*` headers on every response, `createSession` limited to 30/5 min and
  300/day per identifier, `rate_limit()` to make the next write(s) answer 429.

The clock is `fake.now` (a callable, default `time.time`) plus `fake.clock_offset`; `advance()`
moves it. Everything runs under `self.lock`.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import libipld
import regex

from .base import FakeServer, Fault, Request, Response

# -- constants -----------------------------------------------------------------------------------

POST_COLLECTION = "app.bsky.feed.post"
PROFILE_COLLECTION = "app.bsky.actor.profile"

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_RKEY_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_DATETIME_RE = re.compile(
    r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,20})?"
    r"(Z|([+-][0-2][0-9]:[0-5][0-9]))$"
)

ACCESS_TTL = 2 * 3600  # reference PDS: 120 minutes
REFRESH_TTL = 90 * 86400  # reference PDS: 90 days
REFRESH_GRACE = 2 * 3600  # REFRESH_GRACE_MS
BLOB_LIMIT = 5_000_000  # PDS_BLOB_UPLOAD_LIMIT default of a self-hosted PDS
IMAGE_MAX_SIZE = 1_000_000  # the safe per-image limit (older PDSes; lexicon now says 2 MB)
THUMB_MAX_SIZE = 1_000_000  # app.bsky.embed.external thumb
VIDEO_MAX_SIZE = 100_000_000
CAPTION_MAX_SIZE = 20_000

SCOPE_ACCESS = "com.atproto.access"
SCOPE_APP_PASS = "com.atproto.appPass"
SCOPE_APP_PASS_PRIVILEGED = "com.atproto.appPassPrivileged"
SCOPE_REFRESH = "com.atproto.refresh"
_ACCESS_SCOPES = frozenset({SCOPE_ACCESS, SCOPE_APP_PASS, SCOPE_APP_PASS_PRIVILEGED})

SERVICE_DID = "did:web:pds.fake.test"

# Internal marker header: a fault carrying it closes the connection (FIN) instead of answering.
_CLOSE_HEADER = "X-Fake-Close-Without-Response"

#: The default account every FakePDS starts with.
ALICE_HANDLE = "alice.test"
ALICE_APP_PASSWORD = "alic-eapp-pass-word"
ALICE_APP_PASSWORD_NAME = "herald"
ALICE_EMAIL = "alice@example.test"
ALICE_DISPLAY_NAME = "Alice"
ALICE_AVATAR = "https://cdn.fake.test/img/avatar/plain/alice/avatar@jpeg"


def did_for_handle(handle: str) -> str:
    """A deterministic, syntactically valid did:plc for a handle (24 base32 chars)."""
    digest = hashlib.sha256(handle.lower().encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


ALICE_DID = did_for_handle(ALICE_HANDLE)

# status -> (error, message) as xrpc-server names them; used for injected faults without a body.
XRPC_STATUS_NAMES: dict[int, tuple[str, str]] = {
    400: ("InvalidRequest", "Invalid Request"),
    401: ("AuthenticationRequired", "Authentication Required"),
    403: ("Forbidden", "Forbidden"),
    404: ("XRPCNotSupported", "XRPC Not Supported"),
    406: ("NotAcceptable", "Not Acceptable"),
    413: ("PayloadTooLarge", "Payload Too Large"),
    415: ("UnsupportedMediaType", "Unsupported Media Type"),
    429: ("RateLimitExceeded", "Rate Limit Exceeded"),
    500: ("InternalServerError", "Internal Server Error"),
    501: ("MethodNotImplemented", "Method Not Implemented"),
    502: ("UpstreamFailure", "Upstream Failure"),
    503: ("NotEnoughResources", "Not Enough Resources"),
    504: ("UpstreamTimeout", "Upstream Timeout"),
}


# -- small helpers -------------------------------------------------------------------------------


def make_tid(timestamp_us: int, clock_id: int = 0) -> str:
    """Encode a TID: 53 bits of microseconds, 10 bits of clock id, base32-sortable, 13 chars."""
    value = (timestamp_us << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_valid_tid(value: str) -> bool:
    return isinstance(value, str) and _TID_RE.match(value) is not None


def grapheme_len(text: str) -> int:
    return len(regex.findall(r"\X", text))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _cid(codec: int, data: bytes) -> str:
    """CIDv1, sha2-256, base32 ('bafkrei...' for raw blobs, 'bafyrei...' for dag-cbor)."""
    return libipld.encode_cid(bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest())


def blob_cid(data: bytes) -> str:
    return _cid(0x55, data)


def _lex_to_ipld(value: Any) -> Any:
    """JSON lexicon data -> IPLD: {"$link"} becomes a CID, {"$bytes"} becomes bytes."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$link"), str):
            return libipld.decode_multibase(value["$link"])[1]
        if len(value) == 1 and isinstance(value.get("$bytes"), str):
            return base64.b64decode(value["$bytes"] + "=" * (-len(value["$bytes"]) % 4))
        return {k: _lex_to_ipld(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lex_to_ipld(v) for v in value]
    return value


def record_cid(record: dict[str, Any]) -> str:
    """The CID a PDS computes for a record: sha256 of its dag-cbor encoding."""
    return _cid(0x71, libipld.encode_dag_cbor(_lex_to_ipld(record)))


def _sniff_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def _format_bytes(size: int) -> str:
    """Like the `bytes` npm package the reference PDS uses in its error messages: 976.56KB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            text = f"{value:.2f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _accepted_mime(mime: str, accept: list[str]) -> bool:
    if "*/*" in accept:
        return True
    for pattern in accept:
        if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
            return True
    return mime in accept


class XrpcError(Exception):
    """Raised by handlers; becomes an XRPC error response {"error", "message"}."""

    def __init__(
        self, status: int, error: str, message: str | None = None, headers: dict | None = None
    ):
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.error}
        if self.message is not None:
            body["message"] = self.message
        return Response(self.status, body, dict(self.headers))


def _invalid(message: str, error: str = "InvalidRequest") -> XrpcError:
    return XrpcError(400, error, message)


# -- state ---------------------------------------------------------------------------------------


@dataclass
class AppPassword:
    id: int
    name: str
    password: str
    privileged: bool = False


@dataclass
class Account:
    did: str
    handle: str
    email: str
    display_name: str | None = None
    avatar: str | None = None
    description: str | None = None
    main_password: str | None = None
    app_passwords: dict[str, AppPassword] = field(default_factory=dict)  # by name
    status: str | None = None  # None | "takendown" | "deactivated"
    created_at: str = "2024-01-01T00:00:00.000Z"


@dataclass
class RefreshTokenRecord:
    jti: str
    did: str
    app_password_id: int | None  # None: main password
    scope: str  # the access scope to grant on refresh
    expires_at: float
    next_id: str | None = None


@dataclass
class StoredRecord:
    repo: str  # the DID
    collection: str
    rkey: str
    uri: str
    cid: str
    value: dict[str, Any]
    created_at: float  # fake-clock time of the first write
    updated_at: float

    @property
    def did(self) -> str:
        return self.repo


@dataclass
class StoredBlob:
    did: str
    cid: str
    mime_type: str
    size: int
    data: bytes
    declared_mime_type: str | None
    uploaded_at: float
    permanent: bool = False  # referenced by a record at least once

    def ref(self) -> dict[str, Any]:
        return {
            "$type": "blob",
            "ref": {"$link": self.cid},
            "mimeType": self.mime_type,
            "size": self.size,
        }


@dataclass
class _ForcedLimit:
    reset_in: float
    with_retry_after: bool
    times: int


# -- the fake ------------------------------------------------------------------------------------


class FakePDS(FakeServer):
    """A fake atproto PDS (XRPC under /xrpc/). See the module docstring."""

    def __init__(
        self,
        *,
        access_ttl: float = ACCESS_TTL,
        refresh_ttl: float = REFRESH_TTL,
        refresh_grace: float = REFRESH_GRACE,
        blob_limit: int = BLOB_LIMIT,
        image_max_size: int = IMAGE_MAX_SIZE,
        include_did_doc: bool = False,
        session_rate_limit: int | None = 30,
        session_rate_window: float = 300,
        session_daily_limit: int | None = 300,
        enforce_rate_limits: bool = False,
        now: Callable[[], float] = time.time,
        with_default_account: bool = True,
    ) -> None:
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.refresh_grace = refresh_grace
        self.blob_limit = blob_limit
        self.image_max_size = image_max_size
        self.thumb_max_size = THUMB_MAX_SIZE
        self.video_max_size = VIDEO_MAX_SIZE
        self.include_did_doc = include_did_doc
        self.session_rate_limit = session_rate_limit
        self.session_rate_window = session_rate_window
        self.session_daily_limit = session_daily_limit
        # Global (3000 / 5 min per IP) and repo-write (5000 points / hour per DID) limits are
        # always counted for the headers; they only answer 429 when this is True.
        self.enforce_rate_limits = enforce_rate_limits
        self.global_rate_limit = 3000
        self.global_rate_window = 300.0
        self.write_points_limit = 5000
        self.write_points_window = 3600.0
        # Error name for an image over its maxSize: current PDS says "BlobTooLarge"; some older
        # PDS versions answered plain "InvalidRequest". Both are 400.
        self.blob_too_large_error = "BlobTooLarge"
        self.service_did = SERVICE_DID
        self.now = now
        self.clock_offset = 0.0

        # counters for tests
        self.session_creations: Counter[str] = Counter()  # createSession calls per identifier
        self.refreshes = 0  # refreshSession calls
        self.writes = 0  # repo commits (create, update, delete); no-op putRecords don't count

        self._secret = secrets.token_bytes(32)
        self._accounts: dict[str, Account] = {}  # by did
        self._by_handle: dict[str, Account] = {}
        self._by_email: dict[str, Account] = {}
        self._extra_handles: dict[str, str] = {}  # handle -> did, resolvable only
        self._app_password_ids = 0
        self._refresh_tokens: dict[str, RefreshTokenRecord] = {}
        self._access_tokens: dict[str, int | None] = {}  # jti -> app password id
        self._revoked_access_sources: set[int] = set()
        self._records: dict[tuple[str, str, str], StoredRecord] = {}
        self._rkeys: dict[tuple[str, str], list[str]] = {}  # sorted, per (did, collection)
        self._blobs: dict[tuple[str, str], StoredBlob] = {}
        self._heads: dict[str, tuple[str, str]] = {}  # did -> (commit cid, rev)
        self._windows: dict[tuple[str, str], list[float]] = {}  # (limiter, key) -> [start, used]
        self._forced_limits: list[_ForcedLimit] = []
        self._limits: list[tuple[int, int, float, str]] = []
        self._extra_dids: dict[str, str] = {}  # did -> handle, for the resolvable-only handles
        self._last_tid_us = 0
        self._clock_id = secrets.randbelow(1024)
        super().__init__()
        if with_default_account:
            self.add_account(
                ALICE_HANDLE,
                ALICE_APP_PASSWORD,
                did=ALICE_DID,
                email=ALICE_EMAIL,
                display_name=ALICE_DISPLAY_NAME,
                avatar=ALICE_AVATAR,
                app_password_name=ALICE_APP_PASSWORD_NAME,
            )

    # -- clock ---------------------------------------------------------------------------------
    def clock(self) -> float:
        """The fake's current time (epoch seconds)."""
        return self.now() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (token expiry, grace windows, rate-limit windows)."""
        with self.lock:
            self.clock_offset += seconds

    # -- test helpers: accounts ----------------------------------------------------------------
    def add_account(
        self,
        handle: str,
        password: str,
        did: str | None = None,
        *,
        display_name: str | None = None,
        avatar: str | None = None,
        email: str | None = None,
        description: str | None = None,
        main_password: str | None = None,
        app_password_name: str = "herald",
    ) -> Account:
        """Add an account whose app password is `password`."""
        handle = handle.lower()
        with self.lock:
            account = Account(
                did=did or did_for_handle(handle),
                handle=handle,
                email=(email or f"{handle.split('.')[0]}@example.test").lower(),
                display_name=display_name,
                avatar=avatar,
                description=description,
                main_password=main_password,
            )
            self._accounts[account.did] = account
            self._by_handle[handle] = account
            self._by_email[account.email] = account
            self.add_app_password(handle, password, app_password_name)
            return account

    def add_app_password(
        self, handle: str, password: str, name: str | None = None, privileged: bool = False
    ) -> AppPassword:
        with self.lock:
            account = self.account(handle)
            self._app_password_ids += 1
            app_password = AppPassword(
                self._app_password_ids,
                name or f"app-{self._app_password_ids}",
                password,
                privileged,
            )
            account.app_passwords[app_password.name] = app_password
            return app_password

    def revoke_app_password(
        self, handle: str, name: str | None = None, *, revoke_access_tokens: bool = False
    ) -> None:
        """Revoke one (or all) app passwords of an account (com.atproto.server.revokeAppPassword).

        Like the reference PDS: logins with it fail (401 AuthenticationRequired), and every refresh
        token made from it is deleted (refresh -> 400 ExpiredToken "Token has been revoked").
        Access tokens are stateless JWTs there and keep working until they expire; pass
        `revoke_access_tokens=True` to make them answer 400 ExpiredToken at once as well.
        """
        with self.lock:
            account = self.account(handle)
            names = [name] if name is not None else list(account.app_passwords)
            ids = {account.app_passwords.pop(n).id for n in names}
            for jti in [j for j, r in self._refresh_tokens.items() if r.app_password_id in ids]:
                del self._refresh_tokens[jti]
            if revoke_access_tokens:
                self._revoked_access_sources |= ids

    def set_account_status(self, handle: str, status: str | None) -> None:
        """None (active), "takendown" or "deactivated"."""
        assert status in (None, "takendown", "deactivated")
        with self.lock:
            self.account(handle).status = status

    def add_handle(self, handle: str, did: str | None = None) -> str:
        """Make a handle resolvable (resolveHandle, getProfile) without an account here."""
        handle = handle.lower()
        with self.lock:
            did = did or did_for_handle(handle)
            self._extra_handles[handle] = did
            self._extra_dids[did] = handle
            return did

    def account(self, handle_or_did: str) -> Account:
        with self.lock:
            account = self._lookup_account(handle_or_did)
            if account is None:
                raise KeyError(handle_or_did)
            return account

    # -- test helpers: rate limits, blobs, faults ----------------------------------------------
    def rate_limit(
        self, reset_in_seconds: float, with_retry_after: bool = True, times: int = 1
    ) -> None:
        """Make the next `times` writes (createRecord/putRecord/deleteRecord) answer 429."""
        with self.lock:
            self._forced_limits.append(_ForcedLimit(reset_in_seconds, with_retry_after, times))

    def expire_untethered_blobs(self) -> list[str]:
        """Garbage-collect uploaded blobs no record references yet (-> BlobNotFound later)."""
        with self.lock:
            gone = [key for key, blob in self._blobs.items() if not blob.permanent]
            for key in gone:
                del self._blobs[key]
            return [cid for _, cid in gone]

    def inject(
        self,
        method: str,
        path_pattern: str,
        *,
        error: str | None = None,
        message: str | None = None,
        close_after_handling: bool = False,
        **kwargs: Any,
    ) -> Fault:
        """Like FakeServer.inject, but a status without a body gets an XRPC error body.

        `error`/`message` override the defaults, e.g.
        `inject("POST", "createRecord", status=400, error="BlobNotFound")`.

        `close_after_handling=True` runs the route (the record is stored) and then closes the
        connection cleanly without answering: the SDK lets `httpx.RemoteProtocolError` escape raw.
        The base's `reset_after_handling=True` (TCP RST) instead surfaces as atproto `NetworkError`
        (wrapping `httpx.ReadError`).
        """
        if close_after_handling:
            kwargs["headers"] = {**kwargs.get("headers", {}), _CLOSE_HEADER: "1"}
        status = kwargs.get("status")
        if status is not None and kwargs.get("body") is None:
            default_error, default_message = XRPC_STATUS_NAMES.get(
                status, ("InternalServerError" if status >= 500 else "InvalidRequest", "Error")
            )
            kwargs["body"] = {
                "error": error or default_error,
                "message": message or default_message,
            }
        return super().inject(method, path_pattern, **kwargs)

    # -- test accessors ------------------------------------------------------------------------
    @property
    def posts(self) -> list[StoredRecord]:
        """Stored app.bsky.feed.post records (all repos), in creation order."""
        return self.records(POST_COLLECTION)

    def records(self, collection: str | None = None, repo: str | None = None) -> list[StoredRecord]:
        with self.lock:
            did = self._lookup_did(repo) if repo else None
            return [
                r
                for r in self._records.values()
                if (collection is None or r.collection == collection)
                and (did is None or r.repo == did)
            ]

    def get_record(self, uri: str) -> StoredRecord | None:
        match = re.match(r"^at://([^/]+)/([^/]+)/([^/]+)$", uri)
        if not match:
            return None
        with self.lock:
            did = self._lookup_did(match.group(1))
            return self._records.get((did or "", match.group(2), match.group(3)))

    @property
    def blobs(self) -> list[StoredBlob]:
        """Uploaded blobs (one per repo and CID), in upload order."""
        with self.lock:
            return list(self._blobs.values())

    def get_blob(self, cid: str, repo: str | None = None) -> StoredBlob | None:
        with self.lock:
            for blob in self._blobs.values():
                if blob.cid == cid and (repo is None or blob.did == self._lookup_did(repo)):
                    return blob
            return None

    # -- routes --------------------------------------------------------------------------------
    def register_routes(self) -> None:
        procedures: dict[str, Callable[[Request], Any]] = {
            "com.atproto.server.createSession": self._create_session,
            "com.atproto.server.refreshSession": self._refresh_session,
            "com.atproto.server.deleteSession": self._delete_session,
            "com.atproto.repo.uploadBlob": self._upload_blob,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.putRecord": self._put_record,
            "com.atproto.repo.deleteRecord": self._delete_record,
        }
        queries: dict[str, Callable[[Request], Any]] = {
            "com.atproto.server.getSession": self._get_session,
            "com.atproto.server.describeServer": self._describe_server,
            "com.atproto.repo.describeRepo": self._describe_repo,
            "com.atproto.repo.getRecord": self._get_record,
            "com.atproto.repo.listRecords": self._list_records,
            "com.atproto.identity.resolveHandle": self._resolve_handle,
            "app.bsky.actor.getProfile": self._get_profile,
        }
        for nsid, handler in procedures.items():
            self.route("POST", "/xrpc/" + re.escape(nsid), self._xrpc(handler))
        for nsid, handler in queries.items():
            self.route("GET", "/xrpc/" + re.escape(nsid), self._xrpc(handler))
        for method in ("GET", "POST"):
            self.route(method, r"/xrpc/(?P<nsid>[^/]*)", self._xrpc(self._not_implemented))

    def _xrpc(self, handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            with self.lock:
                now = self.clock()
                limits: list[tuple[int, int, float, str]] = []
                self._limits = limits  # the rate-limit windows this request touched
                try:
                    ok, window = self._consume(
                        "global", "ip", self.global_rate_limit, self.global_rate_window, 1, now
                    )
                    limits.append(window)
                    if not ok and self.enforce_rate_limits:
                        raise self._rate_limited(limits)
                    result = handler(request)
                    response = result if isinstance(result, Response) else Response(200, result)
                except XrpcError as exc:
                    response = exc.response()
                if not any(k.lower() == "ratelimit-limit" for k in response.headers):
                    response.headers.update(_rate_headers(min(limits, key=lambda w: w[1])))
                return response

        return run

    def _write(self, handler: BaseHTTPRequestHandler, response: Response) -> None:
        if response.headers.pop(_CLOSE_HEADER, None):
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        # Injected faults and unknown paths bypass _xrpc: give them the headers too.
        if not any(k.lower() == "ratelimit-limit" for k in response.headers):
            with self.lock:
                window = self._peek(
                    "global", "ip", self.global_rate_limit, self.global_rate_window, self.clock()
                )
            response.headers.update(_rate_headers(window))
        super()._write(handler, response)

    # -- rate limiting -------------------------------------------------------------------------
    def _consume(
        self, name: str, key: str, limit: int, duration: float, points: int, now: float
    ) -> tuple[bool, tuple[int, int, float, str]]:
        """Fixed window (like rate-limiter-flexible). Returns (allowed, (limit, remaining, reset,
        policy))."""
        state = self._windows.get((name, key))
        if state is None or now >= state[0] + duration:
            state = self._windows[(name, key)] = [now, 0]
        allowed = state[1] + points <= limit
        if allowed:
            state[1] += points
        return allowed, (
            limit,
            max(limit - int(state[1]), 0),
            state[0] + duration,
            _policy(limit, duration),
        )

    def _peek(
        self, name: str, key: str, limit: int, duration: float, now: float
    ) -> tuple[int, int, float, str]:
        state = self._windows.get((name, key))
        if state is None or now >= state[0] + duration:
            return (limit, limit, now + duration, _policy(limit, duration))
        return (limit, max(limit - int(state[1]), 0), state[0] + duration, _policy(limit, duration))

    def _rate_limited(
        self, limits: list[tuple[int, int, float, str]], retry_after: float | None = None
    ) -> XrpcError:
        window = min(limits, key=lambda w: w[1])
        headers = _rate_headers((window[0], 0, window[2], window[3]))
        if retry_after is not None:
            headers["Retry-After"] = str(max(math.ceil(retry_after), 0))
        return XrpcError(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)

    def _consume_write(self, request: Request, did: str, points: int) -> None:
        now = self.clock()
        limits = self._limits
        if self._forced_limits:
            forced = self._forced_limits[0]
            forced.times -= 1
            if forced.times <= 0:
                self._forced_limits.pop(0)
            window = (
                self.write_points_limit,
                0,
                now + forced.reset_in,
                _policy(self.write_points_limit, self.write_points_window),
            )
            raise self._rate_limited([window], forced.reset_in if forced.with_retry_after else None)
        ok, window = self._consume(
            "repo-write", did, self.write_points_limit, self.write_points_window, points, now
        )
        limits.append(window)
        if not ok and self.enforce_rate_limits:
            raise self._rate_limited(limits, window[2] - now)

    # -- auth ----------------------------------------------------------------------------------
    def _encode_jwt(self, typ: str, payload: dict[str, Any]) -> str:
        header = _b64url(json.dumps({"typ": typ, "alg": "HS256"}, separators=(",", ":")).encode())
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        signature = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64url(signature)}"

    def _decode_jwt(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            header_b64, body_b64, signature_b64 = token.split(".")
            expected = hmac.new(
                self._secret, f"{header_b64}.{body_b64}".encode(), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(expected, _b64url_decode(signature_b64)):
                raise ValueError("bad signature")
            header = json.loads(_b64url_decode(header_b64))
            payload = json.loads(_b64url_decode(body_b64))
            if not isinstance(header, dict) or not isinstance(payload, dict):
                raise ValueError("not an object")
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise _invalid("Token could not be verified", "InvalidToken") from exc
        return header, payload

    def _bearer(self, request: Request) -> str:
        value = request.header("authorization") or ""
        if not value.startswith("Bearer ") or not value[7:].strip():
            raise XrpcError(401, "AuthMissing", "Authentication Required")
        return value[7:].strip()

    def _verify(self, request: Request, typ: str) -> dict[str, Any]:
        header, payload = self._decode_jwt(self._bearer(request))
        if header.get("typ") != typ:
            raise _invalid("Invalid token type", "InvalidToken")
        exp = payload.get("exp")
        if not isinstance(exp, int) or exp <= self.clock():
            raise _invalid("Token has expired", "ExpiredToken")
        return payload

    def _check_status(self, account: Account | None, check_deactivated: bool) -> Account:
        if account is None:
            raise XrpcError(403, "AccountNotFound", "Account not found")
        if account.status == "takendown":
            raise XrpcError(401, "AccountTakedown", "Account has been taken down")
        if check_deactivated and account.status == "deactivated":
            raise XrpcError(401, "AccountDeactivated", "Account is deactivated")
        return account

    def _auth(self, request: Request, check_deactivated: bool = False) -> Account:
        payload = self._verify(request, "at+jwt")
        if payload.get("scope") not in _ACCESS_SCOPES:
            raise _invalid("Bad token scope", "InvalidToken")
        if self._access_tokens.get(payload.get("jti", "")) in self._revoked_access_sources:
            raise _invalid("Token has been revoked", "ExpiredToken")
        return self._check_status(self._accounts.get(payload.get("sub", "")), check_deactivated)

    def _optional_auth(self, request: Request) -> Account | None:
        if request.header("authorization"):
            return self._auth(request)
        return None

    def _issue(
        self, account: Account, scope: str, app_password_id: int | None, refresh_jti: str
    ) -> tuple[str, str, int]:
        now = int(self.clock())
        access_jti = secrets.token_urlsafe(16)
        access = self._encode_jwt(
            "at+jwt",
            {
                "scope": scope,
                "sub": account.did,
                "aud": self.service_did,
                "iat": now,
                "exp": now + int(self.access_ttl),
                "jti": access_jti,
            },
        )
        self._access_tokens[access_jti] = app_password_id
        refresh_exp = now + int(self.refresh_ttl)
        refresh = self._encode_jwt(
            "refresh+jwt",
            {
                "scope": SCOPE_REFRESH,
                "sub": account.did,
                "aud": self.service_did,
                "jti": refresh_jti,
                "iat": now,
                "exp": refresh_exp,
            },
        )
        return access, refresh, refresh_exp

    def _session_body(self, account: Account, access: str, refresh: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "did": account.did,
            "handle": account.handle,
            "email": account.email,
            "emailConfirmed": True,
            "emailAuthFactor": False,
            "accessJwt": access,
            "refreshJwt": refresh,
            "active": account.status is None,
        }
        if account.status is not None:
            body["status"] = account.status
        if self.include_did_doc:
            body["didDoc"] = self.did_doc(account)
        return body

    def did_doc(self, account: Account) -> dict[str, Any]:
        endpoint = self.url if self._server is not None else "http://127.0.0.1"
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/suites/secp256k1-2019/v1",
            ],
            "id": account.did,
            "alsoKnownAs": [f"at://{account.handle}"],
            "verificationMethod": [
                {
                    "id": f"{account.did}#atproto",
                    "type": "Multikey",
                    "controller": account.did,
                    "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
                }
            ],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": endpoint,
                }
            ],
        }

    # -- lookups -------------------------------------------------------------------------------
    def _lookup_account(self, identifier: str) -> Account | None:
        if identifier.startswith("did:"):
            return self._accounts.get(identifier)
        if "@" in identifier:
            return self._by_email.get(identifier.lower())
        return self._by_handle.get(identifier.lower())

    def _lookup_did(self, identifier: str) -> str | None:
        account = self._lookup_account(identifier)
        if account is not None:
            return account.did
        if identifier.startswith("did:"):
            return identifier
        return self._extra_handles.get(identifier.lower())

    def _repo(self, identifier: str) -> Account:
        account = self._lookup_account(identifier) if "@" not in identifier else None
        if account is None:
            raise _invalid(f"Could not find repo: {identifier}")
        return account

    # -- request parsing -----------------------------------------------------------------------
    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            raise _invalid("Unable to parse request body as JSON") from exc
        if not isinstance(body, dict):
            raise _invalid("Input must be an object")
        return body

    @staticmethod
    def _required(body: dict[str, Any], *names: str, where: str = "Input") -> list[Any]:
        values = []
        for name in names:
            if body.get(name) is None:
                raise _invalid(f'{where} must have the property "{name}"')
            values.append(body[name])
        return values

    @staticmethod
    def _param(request: Request, name: str, required: bool = False) -> str | None:
        values = request.query.get(name)
        if not values:
            if required:
                raise _invalid(f'Params must have the property "{name}"')
            return None
        return values[-1]

    # -- com.atproto.server --------------------------------------------------------------------
    def _create_session(self, request: Request) -> dict[str, Any]:
        body = self._json(request)
        identifier, password = self._required(body, "identifier", "password")
        identifier = str(identifier).lower()
        self.session_creations[identifier] += 1
        now = self.clock()
        limits = self._limits
        blocked = False
        for name, limit, duration in (
            ("createSession", self.session_rate_limit, self.session_rate_window),
            ("createSession-day", self.session_daily_limit, 86400.0),
        ):
            if limit is not None:
                ok, window = self._consume(name, identifier, limit, duration, 1, now)
                limits.append(window)
                blocked = blocked or not ok
        if blocked:
            raise self._rate_limited(limits)

        account = self._lookup_account(identifier)
        if account is None:
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        if account.main_password is not None and hmac.compare_digest(
            account.main_password, str(password)
        ):
            scope, app_password_id = SCOPE_ACCESS, None
        else:
            app_password = next(
                (p for p in account.app_passwords.values() if p.password == password), None
            )
            if app_password is None:
                raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
            scope = SCOPE_APP_PASS_PRIVILEGED if app_password.privileged else SCOPE_APP_PASS
            app_password_id = app_password.id
        if account.status == "takendown":
            raise XrpcError(401, "AccountTakedown", "Account has been taken down")

        jti = secrets.token_urlsafe(24)
        access, refresh, refresh_exp = self._issue(account, scope, app_password_id, jti)
        self._refresh_tokens[jti] = RefreshTokenRecord(
            jti, account.did, app_password_id, scope, float(refresh_exp)
        )
        return self._session_body(account, access, refresh)

    def _refresh_session(self, request: Request) -> dict[str, Any]:
        self.refreshes += 1
        payload = self._verify(request, "refresh+jwt")
        if payload.get("scope") != SCOPE_REFRESH:
            raise _invalid("Bad token scope", "InvalidToken")
        account = self._accounts.get(payload.get("sub", ""))
        if account is None:
            raise _invalid(f"Could not find user info for account: {payload.get('sub')}")
        if account.status == "takendown":
            raise XrpcError(401, "AccountTakedown", "Account has been taken down")

        now = self.clock()
        token = self._refresh_tokens.get(payload.get("jti", ""))
        if token is None or token.expires_at <= now:
            raise _invalid("Token has been revoked", "ExpiredToken")
        # Shorten the old token to the grace window; re-use yields the same next token id.
        token.expires_at = min(now + self.refresh_grace, token.expires_at)
        if token.expires_at <= now:
            raise _invalid("Token has been revoked", "ExpiredToken")
        token.next_id = token.next_id or secrets.token_urlsafe(24)
        access, refresh, refresh_exp = self._issue(
            account, token.scope, token.app_password_id, token.next_id
        )
        self._refresh_tokens.setdefault(
            token.next_id,
            RefreshTokenRecord(
                token.next_id, account.did, token.app_password_id, token.scope, float(refresh_exp)
            ),
        )
        return self._session_body(account, access, refresh)

    def _delete_session(self, request: Request) -> Response:
        payload = self._verify(request, "refresh+jwt")
        self._refresh_tokens.pop(payload.get("jti", ""), None)
        return Response(200, None)

    def _get_session(self, request: Request) -> dict[str, Any]:
        account = self._auth(request)
        body: dict[str, Any] = {
            "did": account.did,
            "handle": account.handle,
            "email": account.email,
            "emailConfirmed": True,
            "emailAuthFactor": False,
            "active": account.status is None,
        }
        if account.status is not None:
            body["status"] = account.status
        if self.include_did_doc:
            body["didDoc"] = self.did_doc(account)
        return body

    def _describe_server(self, request: Request) -> dict[str, Any]:
        return {
            "did": self.service_did,
            "availableUserDomains": [".test"],
            "inviteCodeRequired": True,
            "links": {},
            "contact": {},
        }

    # -- identity / profile --------------------------------------------------------------------
    def _resolve_handle(self, request: Request) -> dict[str, Any]:
        handle = (self._param(request, "handle", required=True) or "").lower()
        account = self._by_handle.get(handle)
        did = account.did if account else self._extra_handles.get(handle)
        if did is None:
            raise _invalid("Unable to resolve handle")
        return {"did": did}

    def _get_profile(self, request: Request) -> dict[str, Any]:
        self._optional_auth(request)
        actor = self._param(request, "actor", required=True) or ""
        account = self._lookup_account(actor) if "@" not in actor else None
        if account is None:
            did = actor if actor.startswith("did:") else self._extra_handles.get(actor.lower())
            if did is not None and did in self._extra_dids:
                return {"did": did, "handle": self._extra_dids[did], "labels": []}
        if account is None or account.status == "takendown":
            raise _invalid("Profile not found")
        profile: dict[str, Any] = {
            "did": account.did,
            "handle": account.handle,
            "followersCount": 0,
            "followsCount": 0,
            "postsCount": len(self._rkeys.get((account.did, POST_COLLECTION), ())),
            "indexedAt": account.created_at,
            "createdAt": account.created_at,
            "labels": [],
        }
        for key, value in (
            ("displayName", account.display_name),
            ("avatar", account.avatar),
            ("description", account.description),
        ):
            if value is not None:
                profile[key] = value
        return profile

    # -- com.atproto.repo: blobs ---------------------------------------------------------------
    def _upload_blob(self, request: Request) -> dict[str, Any]:
        account = self._auth(request, check_deactivated=True)
        data = request.body
        if len(data) > self.blob_limit:
            raise XrpcError(413, "PayloadTooLarge", "request entity too large")
        declared = (request.header("content-type") or "*/*").split(";")[0].strip().lower()
        # Like the reference PDS: the sniffed type wins, the declared one is the fallback.
        mime = _sniff_mime(data) or declared
        cid = blob_cid(data)
        key = (account.did, cid)
        blob = self._blobs.get(key)
        if blob is None:
            blob = self._blobs[key] = StoredBlob(
                account.did, cid, mime, len(data), data, declared, self.clock()
            )
        return {"blob": blob.ref()}

    def _blob_refs(
        self, collection: str, record: dict[str, Any]
    ) -> list[tuple[dict[str, Any], int | None, list[str] | None]]:
        """Every blob ref in a record, with the lexicon's (maxSize, accept) where known."""
        found: list[tuple[dict[str, Any], int | None, list[str] | None]] = []
        seen: set[int] = set()

        def add(ref: Any, max_size: int | None, accept: list[str] | None) -> None:
            if isinstance(ref, dict) and id(ref) not in seen:
                seen.add(id(ref))
                found.append((ref, max_size, accept))

        def embed_blobs(embed: Any) -> None:
            if not isinstance(embed, dict):
                return
            kind = embed.get("$type")
            if kind == "app.bsky.embed.images":
                for image in embed.get("images") or []:
                    if isinstance(image, dict):
                        add(image.get("image"), self.image_max_size, ["image/*"])
            elif kind == "app.bsky.embed.external":
                external = embed.get("external")
                if isinstance(external, dict):
                    add(external.get("thumb"), self.thumb_max_size, ["image/*"])
            elif kind == "app.bsky.embed.video":
                add(embed.get("video"), self.video_max_size, ["video/mp4"])
                for caption in embed.get("captions") or []:
                    if isinstance(caption, dict):
                        add(caption.get("file"), CAPTION_MAX_SIZE, ["text/vtt"])
            elif kind == "app.bsky.embed.recordWithMedia":
                embed_blobs(embed.get("media"))

        if collection == POST_COLLECTION:
            embed_blobs(record.get("embed"))
        elif collection == PROFILE_COLLECTION:
            add(record.get("avatar"), 1_000_000, ["image/png", "image/jpeg"])
            add(record.get("banner"), 1_000_000, ["image/png", "image/jpeg"])

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                if value.get("$type") == "blob" or ("cid" in value and "mimeType" in value):
                    add(value, None, None)
                    return
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(record)
        return found

    def _verify_blobs(self, did: str, collection: str, record: dict[str, Any]) -> list[StoredBlob]:
        verified = []
        for ref, max_size, accept in self._blob_refs(collection, record):
            link = ref.get("ref")
            cid = link.get("$link") if isinstance(link, dict) else ref.get("cid")
            blob = self._blobs.get((did, cid)) if isinstance(cid, str) else None
            if blob is None:
                raise _invalid(f"Could not find blob: {cid}", "BlobNotFound")
            if not blob.permanent:  # the reference only checks blobs on first reference
                if max_size is not None and blob.size > max_size:
                    raise _invalid(
                        f"This file is too large. It is {_format_bytes(blob.size)} but the "
                        f"maximum size is {_format_bytes(max_size)}.",
                        self.blob_too_large_error,
                    )
                if ref.get("mimeType") != blob.mime_type:
                    raise _invalid(
                        "Referenced Mimetype does not match stored blob. "
                        f"Expected: {blob.mime_type}, Got: {ref.get('mimeType')}",
                        "InvalidMimeType",
                    )
                if accept is not None and not _accepted_mime(blob.mime_type, accept):
                    raise _invalid(
                        f"Wrong type of file. It is {blob.mime_type} but it must match "
                        f"{','.join(accept)}.",
                        "InvalidMimeType",
                    )
            verified.append(blob)
        return verified

    # -- com.atproto.repo: records -------------------------------------------------------------
    def _prepare(
        self, body: dict[str, Any], account: Account, rkey_required: bool
    ) -> tuple[str, str | None, dict[str, Any], bool]:
        """createRecord/putRecord: repo ownership, $type, rkey and record validation."""
        names = (
            ("repo", "collection", "rkey", "record") if rkey_required else ("repo", "collection")
        )
        repo, collection, *_ = self._required(body, *names)
        record = body.get("record")
        if not isinstance(record, dict):
            raise _invalid('Input must have the property "record"')
        target = self._repo(str(repo))
        if target.did != account.did:
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        validate = body.get("validate")
        record = dict(record)
        record.setdefault("$type", collection)
        if validate is not False and record["$type"] != collection:
            raise _invalid(f"Invalid $type: expected {collection}, got {record['$type']}")
        rkey = body.get("rkey")
        if rkey is not None:
            if not isinstance(rkey, str) or not _RKEY_RE.match(rkey) or rkey in (".", ".."):
                raise _invalid(f"Invalid record key: {rkey}")
            if validate is not False and collection == POST_COLLECTION and not is_valid_tid(rkey):
                raise _invalid(
                    f'Invalid record key for {collection}: Invalid TID string (got "{rkey}")'
                )
        validated = validate is not False and collection == POST_COLLECTION
        if validated:
            problem = _post_problem(record)
            if problem:
                raise _invalid(f"Invalid {collection} record: {problem}")
        if (
            validate is True
            and collection != POST_COLLECTION
            and not collection.startswith(
                ("app.bsky.", "com.atproto.", "chat.bsky.", "tools.ozone.")
            )
        ):
            raise _invalid(f"Lexicon not found: lex:{collection}")
        return collection, rkey, record, validated

    def _check_swap_commit(self, body: dict[str, Any], did: str) -> None:
        swap = body.get("swapCommit")
        if swap is not None:
            head = self._heads.get(did, (None, None))[0]
            if swap != head:
                raise _invalid(f"Commit was at {head}", "InvalidSwap")

    def _commit(self, did: str, ops: list[Any]) -> dict[str, str]:
        previous = self._heads.get(did, (None, None))[0]
        rev = self._next_tid()
        cid = _cid(0x71, json.dumps([did, rev, previous, ops], default=str).encode())
        self._heads[did] = (cid, rev)
        self.writes += 1
        return {"cid": cid, "rev": rev}

    def _store(
        self, did: str, collection: str, rkey: str, record: dict[str, Any], cid: str
    ) -> StoredRecord:
        key = (did, collection, rkey)
        now = self.clock()
        existing = self._records.get(key)
        if existing is not None:
            existing.value, existing.cid, existing.updated_at = record, cid, now
            return existing
        stored = StoredRecord(
            did, collection, rkey, f"at://{did}/{collection}/{rkey}", cid, record, now, now
        )
        self._records[key] = stored
        bisect.insort(self._rkeys.setdefault((did, collection), []), rkey)
        return stored

    def _create_record(self, request: Request) -> dict[str, Any]:
        account = self._auth(request, check_deactivated=True)
        body = self._json(request)
        self._required(body, "repo", "collection", "record")
        self._repo(str(body["repo"]))
        self._consume_write(request, account.did, 3)
        collection, rkey, record, validated = self._prepare(body, account, rkey_required=False)
        self._check_swap_commit(body, account.did)
        rkey = rkey or self._next_tid()
        if (account.did, collection, rkey) in self._records:
            # The MST insert throws a plain Error; xrpc-server turns it into a generic 500.
            raise XrpcError(500, "InternalServerError", "Internal Server Error")
        cid = self._cid_or_400(record)
        blobs = self._verify_blobs(account.did, collection, record)
        for blob in blobs:
            blob.permanent = True
        commit = self._commit(account.did, [("create", collection, rkey, cid)])
        stored = self._store(account.did, collection, rkey, record, cid)
        return {
            "uri": stored.uri,
            "cid": cid,
            "commit": commit,
            "validationStatus": "valid" if validated else "unknown",
        }

    def _put_record(self, request: Request) -> dict[str, Any]:
        account = self._auth(request, check_deactivated=True)
        body = self._json(request)
        self._required(body, "repo", "collection", "rkey", "record")
        self._repo(str(body["repo"]))
        self._consume_write(request, account.did, 2)
        collection, rkey, record, validated = self._prepare(body, account, rkey_required=True)
        assert rkey is not None
        current = self._records.get((account.did, collection, rkey))
        if "swapRecord" in body and body["swapRecord"] != (current.cid if current else None):
            raise _invalid(f"Record was at {current.cid if current else 'null'}", "InvalidSwap")
        self._check_swap_commit(body, account.did)
        cid = self._cid_or_400(record)
        status = "valid" if validated else "unknown"
        uri = f"at://{account.did}/{collection}/{rkey}"
        if current is not None and current.cid == cid:
            return {"uri": uri, "cid": cid, "validationStatus": status}  # no-op: no commit
        blobs = self._verify_blobs(account.did, collection, record)
        for blob in blobs:
            blob.permanent = True
        action = "update" if current is not None else "create"
        commit = self._commit(account.did, [(action, collection, rkey, cid)])
        self._store(account.did, collection, rkey, record, cid)
        return {"uri": uri, "cid": cid, "commit": commit, "validationStatus": status}

    def _delete_record(self, request: Request) -> dict[str, Any]:
        account = self._auth(request, check_deactivated=True)
        body = self._json(request)
        repo, collection, rkey = self._required(body, "repo", "collection", "rkey")
        if self._repo(str(repo)).did != account.did:
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        self._consume_write(request, account.did, 1)
        key = (account.did, str(collection), str(rkey))
        current = self._records.get(key)
        if "swapRecord" in body and body["swapRecord"] != (current.cid if current else None):
            raise _invalid(f"Record was at {current.cid if current else 'null'}", "InvalidSwap")
        self._check_swap_commit(body, account.did)
        if current is None:
            return {}
        commit = self._commit(account.did, [("delete", collection, rkey, None)])
        del self._records[key]
        keys = self._rkeys[(account.did, str(collection))]
        del keys[bisect.bisect_left(keys, str(rkey))]
        return {"commit": commit}

    def _get_record(self, request: Request) -> dict[str, Any]:
        repo = self._param(request, "repo", required=True) or ""
        collection = self._param(request, "collection", required=True) or ""
        rkey = self._param(request, "rkey", required=True) or ""
        cid = self._param(request, "cid")
        account = self._repo(repo)
        stored = self._records.get((account.did, collection, rkey))
        if stored is None or (cid is not None and stored.cid != cid):
            raise _invalid(
                f"Could not locate record: at://{account.did}/{collection}/{rkey}",
                "RecordNotFound",
            )
        return {"uri": stored.uri, "cid": stored.cid, "value": stored.value}

    def _list_records(self, request: Request) -> dict[str, Any]:
        repo = self._param(request, "repo", required=True) or ""
        collection = self._param(request, "collection", required=True) or ""
        raw_limit = self._param(request, "limit")
        try:
            limit = int(raw_limit) if raw_limit is not None else 50
        except ValueError as exc:
            raise _invalid("limit must be an integer") from exc
        if limit > 100:
            raise _invalid("limit can not be greater than 100")
        if limit < 1:
            raise _invalid("limit can not be less than 1")
        reverse = (self._param(request, "reverse") or "false").lower() == "true"
        cursor = self._param(request, "cursor")
        account = self._repo(repo)
        keys = self._rkeys.get((account.did, collection), [])
        if reverse:  # oldest first
            start = bisect.bisect_right(keys, cursor) if cursor is not None else 0
            page = keys[start : start + limit]
        else:  # newest first (the default)
            end = bisect.bisect_left(keys, cursor) if cursor is not None else len(keys)
            page = list(reversed(keys[max(end - limit, 0) : end]))
        records = []
        for rkey in page:
            stored = self._records[(account.did, collection, rkey)]
            records.append({"uri": stored.uri, "cid": stored.cid, "value": stored.value})
        body: dict[str, Any] = {"records": records}
        if page:
            body["cursor"] = page[-1]
        return body

    def _describe_repo(self, request: Request) -> dict[str, Any]:
        repo = self._param(request, "repo", required=True) or ""
        account = self._lookup_account(repo) if "@" not in repo else None
        if account is None:
            raise _invalid(f"Could not find user: {repo}")
        collections = sorted(
            {c for (did, c), keys in self._rkeys.items() if did == account.did and keys}
        )
        return {
            "handle": account.handle,
            "did": account.did,
            "didDoc": self.did_doc(account),
            "collections": collections,
            "handleIsCorrect": True,
        }

    def _not_implemented(self, request: Request) -> Response:
        raise XrpcError(501, "MethodNotImplemented", "Method Not Implemented")

    # -- internals -----------------------------------------------------------------------------
    def _next_tid(self) -> str:
        micros = int(self.clock() * 1_000_000)
        if micros <= self._last_tid_us:
            micros = self._last_tid_us + 1
        self._last_tid_us = micros
        return make_tid(micros, self._clock_id)

    @staticmethod
    def _cid_or_400(record: dict[str, Any]) -> str:
        try:
            return record_cid(record)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _invalid(f"Invalid record: {exc}") from exc


def _policy(limit: int, duration: float) -> str:
    return f"{limit};w={int(duration)}"


def _rate_headers(window: tuple[int, int, float, str]) -> dict[str, str]:
    limit, remaining, reset, policy = window
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(math.ceil(reset)),
        "RateLimit-Policy": policy,
    }


# -- app.bsky.feed.post validation (a subset of the lexicon, same messages) -----------------------


def _is_blob_ref(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("$type") == "blob":
        ref = value.get("ref")
        return (
            isinstance(ref, dict)
            and isinstance(ref.get("$link"), str)
            and isinstance(value.get("mimeType"), str)
            and isinstance(value.get("size"), int)
        )
    return isinstance(value.get("cid"), str) and isinstance(value.get("mimeType"), str)


def _strong_ref_problem(value: Any, path: str) -> str | None:
    if not isinstance(value, dict):
        return f"{path} must be an object"
    for name in ("uri", "cid"):
        if not isinstance(value.get(name), str):
            return f'{path} must have the property "{name}"'
    if not value["uri"].startswith("at://"):
        return f"{path}/uri must be a valid at-uri"
    return None


def _array_problem(value: Any, path: str, max_length: int) -> str | None:
    if not isinstance(value, list):
        return f"{path} must be an array"
    if len(value) > max_length:
        return f"{path} must not have more than {max_length} elements"
    return None


def _media_problem(embed: Any, path: str) -> str | None:
    if not isinstance(embed, dict):
        return f"{path} must be an object"
    kind = embed.get("$type")
    if kind == "app.bsky.embed.images":
        if "images" not in embed:
            return f'{path} must have the property "images"'
        problem = _array_problem(embed["images"], f"{path}/images", 4)
        if problem:
            return problem
        for index, image in enumerate(embed["images"]):
            where = f"{path}/images/{index}"
            if not isinstance(image, dict):
                return f"{where} must be an object"
            for name in ("image", "alt"):
                if name not in image:
                    return f'{where} must have the property "{name}"'
            if not _is_blob_ref(image["image"]):
                return f"{where}/image should be a blob ref"
            if not isinstance(image["alt"], str):
                return f"{where}/alt must be a string"
        return None
    if kind == "app.bsky.embed.external":
        external = embed.get("external")
        if not isinstance(external, dict):
            return f'{path} must have the property "external"'
        for name in ("uri", "title", "description"):
            if not isinstance(external.get(name), str):
                return f'{path}/external must have the property "{name}"'
        if "thumb" in external and not _is_blob_ref(external["thumb"]):
            return f"{path}/external/thumb should be a blob ref"
        return None
    if kind == "app.bsky.embed.video":
        if "video" not in embed:
            return f'{path} must have the property "video"'
        if not _is_blob_ref(embed["video"]):
            return f"{path}/video should be a blob ref"
        if "captions" in embed:
            return _array_problem(embed["captions"], f"{path}/captions", 20)
        return None
    return None  # open union: unknown embed types pass


def _post_problem(record: dict[str, Any]) -> str | None:
    for name in ("text", "createdAt"):
        if name not in record:
            return f'Record must have the property "{name}"'
    text = record["text"]
    if not isinstance(text, str):
        return "Record/text must be a string"
    if len(text.encode("utf-8")) > 3000:
        return "Record/text must not be longer than 3000 characters"
    if grapheme_len(text) > 300:
        return "Record/text must not be longer than 300 graphemes"
    if "facets" in record:
        if not isinstance(record["facets"], list):
            return "Record/facets must be an array"
        for index, facet in enumerate(record["facets"]):
            where = f"Record/facets/{index}"
            if not isinstance(facet, dict):
                return f"{where} must be an object"
            for name in ("index", "features"):
                if name not in facet:
                    return f'{where} must have the property "{name}"'
            span = facet["index"]
            for name in ("byteStart", "byteEnd"):
                if not isinstance(span, dict) or not isinstance(span.get(name), int):
                    return f'{where}/index must have the property "{name}"'
                if span[name] < 0:
                    return f"{where}/index/{name} can not be less than 0"
            if not isinstance(facet["features"], list):
                return f"{where}/features must be an array"
    if "reply" in record:
        reply = record["reply"]
        if not isinstance(reply, dict):
            return "Record/reply must be an object"
        for name in ("root", "parent"):
            if name not in reply:
                return f'Record/reply must have the property "{name}"'
            problem = _strong_ref_problem(reply[name], f"Record/reply/{name}")
            if problem:
                return problem
    if "embed" in record:
        embed = record["embed"]
        if not isinstance(embed, dict):
            return "Record/embed must be an object"
        kind = embed.get("$type")
        if kind == "app.bsky.embed.record":
            problem = _strong_ref_problem(embed.get("record"), "Record/embed/record")
        elif kind == "app.bsky.embed.recordWithMedia":
            inner = embed.get("record")
            problem = _strong_ref_problem(
                inner.get("record") if isinstance(inner, dict) else None,
                "Record/embed/record/record",
            ) or _media_problem(embed.get("media"), "Record/embed/media")
        else:
            problem = _media_problem(embed, "Record/embed")
        if problem:
            return problem
    if "langs" in record:
        problem = _array_problem(record["langs"], "Record/langs", 3)
        if problem:
            return problem
    if "tags" in record:
        problem = _array_problem(record["tags"], "Record/tags", 8)
        if problem:
            return problem
        for index, tag in enumerate(record["tags"]):
            if not isinstance(tag, str):
                return f"Record/tags/{index} must be a string"
            if len(tag.encode("utf-8")) > 640:
                return f"Record/tags/{index} must not be longer than 640 characters"
            if grapheme_len(tag) > 64:
                return f"Record/tags/{index} must not be longer than 64 graphemes"
    created_at = record["createdAt"]
    if not isinstance(created_at, str) or not _valid_datetime(created_at):
        return "Record/createdAt must be an valid atproto datetime (both RFC-3339 and ISO-8601)"
    return None


def _valid_datetime(value: str) -> bool:
    if not _DATETIME_RE.match(value) or value.endswith("-00:00"):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
