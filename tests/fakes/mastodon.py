"""A stateful fake Mastodon 4.3 server that the real Mastodon.py talks to over HTTP.

It covers what Herald needs (https://docs.joinmastodon.org/methods/): app registration, the
OAuth code flow,
`verify_credentials`, instance info, media upload with asynchronous processing, status creation
with `Idempotency-Key` semantics, threads, account timelines, rate-limit headers, token revocation.
Faults (5xx, resets, delays) come from `FakeServer.inject`; injected errors get Mastodon-shaped
bodies (`{"error": "..."}`) unless the test passes its own.

Typical use::

    fake = FakeMastodon().start()
    api = Mastodon(access_token=DEFAULT_TOKEN, api_base_url=fake.url, ratelimit_method="throw",
                   mastodon_version="4.3.2", version_check_mode="created", request_timeout=5)
    api.status_post("hi", idempotency_key="k1")
    assert fake.statuses[0]["idempotency_key"] == "k1"
    fake.stop()
"""

from __future__ import annotations

import bisect
import html
import io
import mimetypes
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import regex

from .base import FakeServer, Fault, Request, Response

try:  # the library's port of twitter-text's URL regex: what Mastodon counts as a URL
    from mastodon._url_regex import url_regex as _URL_REGEX
except ImportError:  # pragma: no cover - only if Mastodon.py changes its internals
    _URL_REGEX = re.compile(r"(()(^|[^\w@#]))((https?://)[^\s<>\"]+[^\s<>\"\.,;:!?)\]'])", re.I)

# -- constants tests can use ------------------------------------------------------------------

MASTODON_VERSION = "4.3.2"
DEFAULT_ACCOUNT_ID = "1"
DEFAULT_USERNAME = "alice"
DEFAULT_TOKEN = "fake-token-alice"
DEFAULT_TOKEN_SCOPES = "read write follow push profile"
IDEMPOTENCY_TTL = 3600  # seconds, as Mastodon's Redis key
AUTHORIZATION_CODE_TTL = 600  # Doorkeeper default: 10 minutes
RATE_LIMIT_LIMIT = 300  # requests per token per 5-minute window
RATE_LIMIT_PERIOD = 300
URL_PLACEHOLDER_CHARS = 23  # StatusLengthValidator hard-codes 23 chars per URL
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"

ERR_INVALID_TOKEN = "The access token is invalid"
ERR_REVOKED_TOKEN = "The access token was revoked"
ERR_OUTSIDE_SCOPES = "This action is outside the authorized scopes"
ERR_REQUIRES_USER = "This method requires an authenticated user"
ERR_RECORD_NOT_FOUND = "Record not found"
ERR_TOO_MANY_REQUESTS = "Too many requests"
ERR_NOT_PROCESSED = "Cannot attach files that have not finished processing. Try again in a moment!"
ERR_TOO_MANY_MEDIA = "Cannot attach more than 4 files"
ERR_IMAGES_AND_VIDEO = "Cannot attach a video to a post that already contains images"
ERR_TEXT_BLANK = "Validation failed: Text can't be blank"
ERR_INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
ERR_INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)


def text_limit_error(max_characters: int) -> str:
    return f"Validation failed: Text character limit of {max_characters} exceeded"


# Default bodies for injected error statuses (FakeServer.inject with body=None).
DEFAULT_ERROR_MESSAGES: dict[int, str] = {
    400: "Bad Request",
    401: ERR_INVALID_TOKEN,
    403: ERR_OUTSIDE_SCOPES,
    404: ERR_RECORD_NOT_FOUND,
    410: "Gone",
    422: "Validation failed",
    429: ERR_TOO_MANY_REQUESTS,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "There was a temporary problem serving your request, please try again",
    504: "Gateway Timeout",
}

SUPPORTED_MIME_TYPES = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/webp",
    "image/avif",
    "video/webm",
    "video/mp4",
    "video/quicktime",
    "video/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wave",
    "audio/vnd.wave",
    "audio/ogg",
    "audio/vorbis",
    "audio/mpeg",
    "audio/mp3",
    "audio/webm",
    "audio/flac",
    "audio/aac",
    "audio/m4a",
    "audio/x-m4a",
    "audio/mp4",
    "audio/3gpp",
    "video/x-ms-asf",
]

_VISIBILITIES = ("public", "unlisted", "private", "direct")
_FALSE_STRINGS = {"0", "f", "false", "off", "no"}
_HASHTAG_RE = regex.compile(r"(?:^|[^/)\w])#(\w*[\p{L}_·]\w*)", regex.UNICODE)
_MENTION_RE = re.compile(r"(?:^|[^/\w])@(([a-z0-9_]+)(?:@[a-z0-9.\-]+[a-z0-9]+)?)", re.I)
_BLURHASH = "UFHx]R-;00ay~qRjWBj[00WB_3t7?bWBM{of"


class FakeOAuthError(ValueError):
    """Raised by the `authorize()` helper for what the real consent page would refuse."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": message}, dict(headers or {}))


def _scope_list(scopes: str | Iterable[str] | None) -> list[str]:
    if scopes is None:
        return []
    if isinstance(scopes, str):
        return [s for s in re.split(r"[\s+]+", scopes) if s]
    return [s for s in scopes if s]


def _has_scope(granted: frozenset[str], accepted: Iterable[str]) -> bool:
    """Doorkeeper-style: any accepted scope, where `read`/`write` cover `read:*`/`write:*`."""
    for scope in accepted:
        if scope in granted:
            return True
        if ":" in scope and scope.split(":", 1)[0] in granted:
            return True
    return False


def _bool(value: Any) -> bool | None:
    """Rails' boolean casting: "0"/"false"/"off" are false, other non-blank values true."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() not in _FALSE_STRINGS


def _grapheme_length(text: str) -> int:
    return len(regex.findall(r"\X", text))


def _split_fields(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Form fields to a dict: `name[]` keys become lists under `name`, others the last value."""
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            fields.setdefault(key[:-2], []).append(value)
        else:
            fields[key] = value
    return fields


class _Part:
    __slots__ = ("content_type", "data", "filename", "name")

    def __init__(self, name: str, filename: str | None, content_type: str | None, data: bytes):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _parse_multipart(request: Request) -> dict[str, _Part]:
    content_type = request.header("content-type") or ""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}
    boundary = b"--" + match.group(1).encode("latin-1")
    parts: dict[str, _Part] = {}
    for chunk in request.body.split(boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, _, data = chunk.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name_match = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        if not name_match:
            continue
        file_match = re.search(r'filename="([^"]*)"', disposition)
        parts[name_match.group(1)] = _Part(
            name_match.group(1),
            file_match.group(1) if file_match else None,
            headers.get("content-type"),
            data,
        )
    return parts


def _request_fields(request: Request) -> dict[str, Any]:
    """The request's parameters as Rails would see them (query + form/JSON/multipart body)."""
    fields = _split_fields((k, v) for k, values in request.query.items() for v in values)
    content_type = request.header("content-type") or ""
    if "application/json" in content_type:
        try:
            body = request.json
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key, value in body.items():
                fields[key[:-2] if key.endswith("[]") else key] = value
    elif "multipart/form-data" in content_type:
        for name, part in _parse_multipart(request).items():
            if part.filename is None:
                fields.update(_split_fields([(name, part.text)]))
    elif request.body:
        form = request.form
        fields.update(_split_fields((k, v) for k, values in form.items() for v in values))
    return fields


class FakeToken:
    __slots__ = ("account_id", "client_id", "created_at", "revoked", "scopes", "token")

    def __init__(
        self,
        token: str,
        account_id: str | None,
        scopes: Iterable[str],
        client_id: str | None,
        created_at: float,
    ) -> None:
        self.token = token
        self.account_id = account_id
        self.scopes = frozenset(scopes)
        self.client_id = client_id
        self.created_at = created_at
        self.revoked = False

    def __repr__(self) -> str:
        return f"FakeToken({self.token!r}, account={self.account_id!r}, revoked={self.revoked})"


class FakeMastodon(FakeServer):
    """A fake Mastodon 4.3.2 instance. See the module docstring; public state:

    - `accounts`: id -> account record; `tokens`: token string -> FakeToken
    - `apps`: client_id -> registered app record (includes `client_secret`)
    - `codes`: authorization code -> grant record
    - `statuses`: created status records in creation order; `statuses_by_id`: id -> record
    - `media`: media id -> media record
    - `idempotency`: (account_id, key) -> (status_id, stored_at)
    """

    def __init__(
        self,
        *,
        max_characters: int = 500,
        media_processing_polls: int = 2,
        now: Callable[[], float] | None = None,
        version: str = MASTODON_VERSION,
        title: str = "Fake Mastodon",
    ) -> None:
        self.max_characters = max_characters
        self.max_media_attachments = 4
        self.characters_reserved_per_url = URL_PLACEHOLDER_CHARS
        self.image_size_limit = 16_777_216
        self.video_size_limit = 103_809_024
        self.description_limit = 1500
        self.supported_mime_types = list(SUPPORTED_MIME_TYPES)
        self.media_processing_polls = media_processing_polls
        self.now: Callable[[], float] = now or (lambda: time.time())
        self.version = version
        self.title = title
        self.rate_limit_limit = RATE_LIMIT_LIMIT
        self.enforce_rate_limit = False  # True: answer 429 once a token exceeds the window
        self.status_create_delay = 0.0  # seconds spent "creating" a status (inside the key lock)
        self.advertise_oauth_metadata = False  # True: serve /.well-known/oauth-authorization-server

        self.accounts: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, FakeToken] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.statuses_by_id: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}

        self._idempotency_locks: dict[tuple[str, str], threading.Lock] = {}
        self._account_status_ids: dict[str, list[int]] = {}
        self._rate_windows: dict[str, tuple[int, int]] = {}  # token -> (window, count)
        self._forced_rate_limits: list[dict[str, Any]] = []
        self._next_status_id = 113_000_000_000_000_001
        self._next_media_id = 113_500_000_000_000_001
        self._next_account_id = 1
        self._next_app_id = 1

        super().__init__()
        self.add_account(DEFAULT_USERNAME, display_name="Alice", id=DEFAULT_ACCOUNT_ID)
        self.add_token(DEFAULT_TOKEN, DEFAULT_ACCOUNT_ID, scopes=DEFAULT_TOKEN_SCOPES)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeMastodon:
        super().start()
        return self

    def __enter__(self) -> FakeMastodon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def domain(self) -> str:
        return self.url.split("://", 1)[1]

    # -- test helpers ------------------------------------------------------------------------
    def add_account(
        self,
        username: str,
        *,
        display_name: str | None = None,
        id: str | None = None,
        default_visibility: str = "public",
        default_language: str = "en",
        locked: bool = False,
        bot: bool = False,
    ) -> dict[str, Any]:
        """Create a local account; returns its record (not the rendered JSON)."""
        with self.lock:
            if id is None:
                while str(self._next_account_id) in self.accounts:
                    self._next_account_id += 1
                id = str(self._next_account_id)
            account: dict[str, Any] = {
                "id": str(id),
                "username": username,
                "acct": username,
                "display_name": display_name if display_name is not None else username,
                "locked": locked,
                "bot": bot,
                "note": "",
                "created_at": _iso(self.now() - 86400 * 365)[:10] + "T00:00:00.000Z",
                "default_visibility": default_visibility,
                "default_sensitive": False,
                "default_language": default_language,
                "statuses_count": 0,
                "last_status_at": None,
            }
            self.accounts[account["id"]] = account
            self._account_status_ids.setdefault(account["id"], [])
            return account

    def add_token(
        self,
        token: str,
        account: str | dict[str, Any] | None = DEFAULT_ACCOUNT_ID,
        *,
        scopes: str | Iterable[str] = DEFAULT_TOKEN_SCOPES,
        client_id: str | None = None,
    ) -> FakeToken:
        """Register an access token for an account (id or record); `account=None` is an app token."""
        account_id = account["id"] if isinstance(account, dict) else account
        with self.lock:
            if account_id is not None and account_id not in self.accounts:
                raise KeyError(f"unknown account {account_id!r}")
            record = FakeToken(token, account_id, _scope_list(scopes), client_id, self.now())
            self.tokens[token] = record
            return record

    def revoke(self, token: str) -> None:
        """Revoke a token: every later call with it answers 401."""
        with self.lock:
            if token in self.tokens:
                self.tokens[token].revoked = True

    def add_app(
        self,
        client_name: str = "Herald",
        *,
        redirect_uris: str | Iterable[str] = OOB_REDIRECT_URI,
        scopes: str | Iterable[str] = "read",
        website: str | None = None,
    ) -> dict[str, Any]:
        """Register an app without HTTP, as POST /api/v1/apps would; returns the app record."""
        uris = (
            [u for u in redirect_uris.splitlines() if u.strip()]
            if isinstance(redirect_uris, str)
            else list(redirect_uris)
        )
        with self.lock:
            app: dict[str, Any] = {
                "id": str(self._next_app_id),
                "name": client_name,
                "website": website,
                "scopes": _scope_list(scopes) or ["read"],
                "redirect_uris": uris,
                "client_id": secrets.token_urlsafe(32),
                "client_secret": secrets.token_urlsafe(32),
                "created_at": self.now(),
                "vapid_key": "BFake" + secrets.token_urlsafe(60),
            }
            self._next_app_id += 1
            self.apps[app["client_id"]] = app
            return app

    def delete_app(self, client_id: str) -> None:
        """Delete an app (as pre-4.3 app vacuuming did): its tokens stop working, OAuth says invalid_client."""
        with self.lock:
            self.apps.pop(client_id, None)
            for token in self.tokens.values():
                if token.client_id == client_id:
                    token.revoked = True

    def authorize(
        self,
        client_id: str,
        redirect_uri: str,
        scopes: str | Iterable[str] | None = None,
        state: str | None = None,
        *,
        account: str | dict[str, Any] = DEFAULT_ACCOUNT_ID,
    ) -> str:
        """The user clicks "Authorize" on the consent page: issue an authorization code.

        Raises FakeOAuthError (invalid_client / invalid_redirect_uri / invalid_scope) where the
        real consent page would show an error instead.
        """
        account_id = account["id"] if isinstance(account, dict) else account
        with self.lock:
            app = self.apps.get(client_id)
            if app is None:
                raise FakeOAuthError("invalid_client", ERR_INVALID_CLIENT)
            if redirect_uri not in app["redirect_uris"]:
                raise FakeOAuthError(
                    "invalid_redirect_uri",
                    "The requested redirect uri is malformed or doesn't match client redirect URI.",
                )
            requested = _scope_list(scopes) or ["read"]
            unknown = [s for s in requested if s not in app["scopes"]]
            if unknown:  # Doorkeeper matches scope strings exactly ("write" != "write:statuses")
                raise FakeOAuthError(
                    "invalid_scope",
                    f"The requested scope is invalid, unknown, or malformed: {' '.join(unknown)}",
                )
            if account_id not in self.accounts:
                raise KeyError(f"unknown account {account_id!r}")
            code = secrets.token_urlsafe(32)
            self.codes[code] = {
                "code": code,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scopes": requested,
                "state": state,
                "account_id": account_id,
                "created_at": self.now(),
                "used": False,
            }
            return code

    def rate_limit(
        self,
        reset_in_seconds: float,
        *,
        times: int = 1,
        method: str = "POST",
        path_pattern: str = r"^/api/v1/statuses$",
    ) -> None:
        """Make the next `times` matching authenticated requests (default: status POSTs) answer 429
        with X-RateLimit-Remaining 0 and X-RateLimit-Reset = now + reset_in_seconds."""
        with self.lock:
            self._forced_rate_limits.append(
                {
                    "method": method,
                    "pattern": re.compile(path_pattern),
                    "reset_in": reset_in_seconds,
                    "times": times,
                }
            )

    def finish_processing(self, media_id: str) -> None:
        """Mark a processing media attachment as ready now."""
        with self.lock:
            self.media[str(media_id)]["state"] = "ready"

    def fail_processing(self, media_id: str) -> None:
        """Mark a processing media attachment as failed (GET /api/v1/media/:id answers 422)."""
        with self.lock:
            self.media[str(media_id)]["state"] = "failed"

    def advance_clock(self, seconds: float) -> None:
        """Shift `now` forward (e.g. past the 1-hour idempotency window)."""
        previous = self.now
        self.now = lambda: previous() + seconds

    def status_by_id(self, status_id: str) -> dict[str, Any] | None:
        return self.statuses_by_id.get(str(status_id))

    def statuses_of(self, account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict[str, Any]]:
        """Live (not deleted) status records of an account, oldest first."""
        with self.lock:
            return [
                self.statuses_by_id[str(i)]
                for i in self._account_status_ids.get(account_id, [])
                if not self.statuses_by_id[str(i)]["deleted"]
            ]

    def inject(self, method: str, path_pattern: str, **kwargs: Any) -> Fault:
        """FakeServer.inject, with Mastodon-shaped `{"error": ...}` bodies for error statuses."""
        status = kwargs.get("status")
        if status is not None and status >= 400 and kwargs.get("body") is None:
            message = DEFAULT_ERROR_MESSAGES.get(status)
            if message is None:
                try:
                    message = HTTPStatus(status).phrase
                except ValueError:
                    message = "Error"
            kwargs["body"] = {"error": message}
        if status == 429:
            headers = dict(kwargs.get("headers") or {})
            headers.setdefault("X-RateLimit-Limit", str(self.rate_limit_limit))
            headers.setdefault("X-RateLimit-Remaining", "0")
            headers.setdefault("X-RateLimit-Reset", _iso(self.now() + 60))
            kwargs["headers"] = headers
        return super().inject(method, path_pattern, **kwargs)

    # -- routing -----------------------------------------------------------------------------
    def register_routes(self) -> None:
        self.route("POST", r"/api/v1/apps", self._create_app)
        self.route("GET", r"/api/v1/apps/verify_credentials", self._authed(self._verify_app))
        self.route("GET", r"/oauth/authorize", self._authorize_page)
        self.route("POST", r"/oauth/authorize", self._authorize_submit)
        self.route("POST", r"/oauth/token", self._token)
        self.route("POST", r"/oauth/revoke", self._revoke)
        self.route("GET", r"/\.well-known/oauth-authorization-server", self._oauth_metadata)
        self.route("GET", r"/api/v1/instance/?", self._instance_v1)
        self.route("GET", r"/api/v2/instance/?", self._instance_v2)
        self.route(
            "GET",
            r"/api/v1/accounts/verify_credentials",
            self._authed(self._verify_credentials, "read:accounts", "profile", user=True),
        )
        self.route(
            "GET",
            r"/api/v1/accounts/(?P<id>[^/]+)/statuses",
            self._authed(self._account_statuses, "read:statuses", optional=True),
        )
        self.route(
            "GET",
            r"/api/v1/accounts/(?P<id>[^/]+)",
            self._authed(self._get_account, "read:accounts", optional=True),
        )
        for version in ("v1", "v2"):
            self.route(
                "POST",
                rf"/api/{version}/media",
                self._authed(self._upload_media, "write:media", user=True),
            )
        self.route(
            "GET",
            r"/api/v1/media/(?P<id>[^/]+)",
            self._authed(self._get_media, "write:media", user=True),
        )
        self.route(
            "PUT",
            r"/api/v1/media/(?P<id>[^/]+)",
            self._authed(self._update_media, "write:media", user=True),
        )
        self.route(
            "POST",
            r"/api/v1/statuses",
            self._authed(self._post_status, "write:statuses", user=True),
        )
        self.route(
            "GET",
            r"/api/v1/statuses/(?P<id>[^/]+)",
            self._authed(self._get_status, "read:statuses", optional=True),
        )
        self.route(
            "DELETE",
            r"/api/v1/statuses/(?P<id>[^/]+)",
            self._authed(self._delete_status, "write:statuses", user=True),
        )
        self.route("GET", r"/system/media_attachments/files/(?P<id>\d+)/[^/]+/.+", self._media_file)

    # -- auth and rate limiting --------------------------------------------------------------
    def _authed(
        self,
        handler: Callable[[Request, FakeToken | None], Response],
        *scopes: str,
        optional: bool = False,
        user: bool = False,
    ) -> Callable[[Request], Response]:
        """Wrap a handler with Bearer auth, scope checks and rate-limit headers.

        `optional`: the endpoint is public, but a token that is sent must be valid (Mastodon's
        `authorize_if_got_token!`). `user`: the token must belong to a user, not just an app.
        """

        def wrapped(request: Request) -> Response:
            authorization = request.header("authorization") or ""
            raw = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
            if not raw and optional:
                return handler(request, None)
            with self.lock:
                token = self.tokens.get(raw) if raw else None
                if token is None or token.revoked:
                    message = ERR_REVOKED_TOKEN if token is not None else ERR_INVALID_TOKEN
                    return _error(
                        401,
                        message,
                        {
                            "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                            f'error_description="{message}"'
                        },
                    )
                if scopes and not _has_scope(token.scopes, scopes):
                    return _error(403, ERR_OUTSIDE_SCOPES)
                if user and token.account_id is None:
                    return _error(422, ERR_REQUIRES_USER)
                limit_headers, limited = self._count_request(request, token)
            if limited is not None:
                return limited
            response = handler(request, token)
            response.headers.update(limit_headers)
            return response

        return wrapped

    def _count_request(
        self, request: Request, token: FakeToken
    ) -> tuple[dict[str, str], Response | None]:
        """Count a request in the token's window (caller holds the lock)."""
        now = self.now()
        for forced in self._forced_rate_limits:
            if forced["method"] in (request.method, "*") and forced["pattern"].search(request.path):
                forced["times"] -= 1
                if forced["times"] <= 0:
                    self._forced_rate_limits.remove(forced)
                headers = {
                    "X-RateLimit-Limit": str(self.rate_limit_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": _iso(now + forced["reset_in"]),
                }
                return headers, _error(429, ERR_TOO_MANY_REQUESTS, headers)
        window = int(now // RATE_LIMIT_PERIOD)
        current, count = self._rate_windows.get(token.token, (window, 0))
        count = count + 1 if current == window else 1
        self._rate_windows[token.token] = (window, count)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit_limit),
            "X-RateLimit-Remaining": str(max(self.rate_limit_limit - count, 0)),
            "X-RateLimit-Reset": _iso((window + 1) * RATE_LIMIT_PERIOD),
        }
        if self.enforce_rate_limit and count > self.rate_limit_limit:
            return headers, _error(429, ERR_TOO_MANY_REQUESTS, headers)
        return headers, None

    # -- apps and OAuth ----------------------------------------------------------------------
    def _render_app(self, app: dict[str, Any], *, credentials: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": app["id"],
            "name": app["name"],
            "website": app["website"],
            "scopes": list(app["scopes"]),
            "redirect_uri": "\n".join(app["redirect_uris"]),
            "redirect_uris": list(app["redirect_uris"]),
            "vapid_key": app["vapid_key"],
        }
        if credentials:
            body["client_id"] = app["client_id"]
            body["client_secret"] = app["client_secret"]
            body["client_secret_expires_at"] = 0
        return body

    def _create_app(self, request: Request) -> Response:
        fields = _request_fields(request)
        name = (fields.get("client_name") or "").strip()
        if not name:
            return _error(422, "Validation failed: Application name can't be blank")
        redirect_uris = fields.get("redirect_uris")
        if isinstance(redirect_uris, list):
            uris = [str(u).strip() for u in redirect_uris if str(u).strip()]
        else:
            uris = [u.strip() for u in str(redirect_uris or "").splitlines() if u.strip()]
        if not uris:
            return _error(422, "Validation failed: Redirect URI can't be blank")
        for uri in uris:
            if uri != OOB_REDIRECT_URI and not re.match(r"^[a-z][a-z0-9+.\-]*:", uri, re.I):
                return _error(422, "Validation failed: Redirect URI must be an absolute URI.")
        app = self.add_app(
            name,
            redirect_uris=uris,
            scopes=fields.get("scopes") or "read",
            website=fields.get("website"),
        )
        return Response(200, self._render_app(app, credentials=True))

    def _verify_app(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None
        app = self.apps.get(token.client_id or "")
        if app is None:
            return Response(200, {"name": "Web", "website": None, "scopes": sorted(token.scopes)})
        return Response(200, self._render_app(app, credentials=False))

    def _authorize_page(self, request: Request) -> Response:
        fields = _request_fields(request)
        client_id = fields.get("client_id") or ""
        redirect_uri = fields.get("redirect_uri") or ""
        app = self.apps.get(client_id)
        if app is None:
            return self._html(401, "invalid_client", ERR_INVALID_CLIENT)
        if redirect_uri not in app["redirect_uris"]:
            return self._html(400, "invalid_redirect_uri", "The redirect uri is not registered.")
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">'
            for k, v in fields.items()
            if k in ("client_id", "redirect_uri", "scope", "state", "response_type")
        )
        page = (
            "<!DOCTYPE html><html><head><title>Authorize</title></head><body>"
            f"<h1>Authorize {html.escape(app['name'])}</h1>"
            f"<p>Scopes: {html.escape(str(fields.get('scope') or 'read'))}</p>"
            f'<form method="post" action="/oauth/authorize">{hidden}'
            '<button type="submit" id="authorize">Authorize</button></form></body></html>'
        )
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def _authorize_submit(self, request: Request) -> Response:
        fields = _request_fields(request)
        redirect_uri = fields.get("redirect_uri") or ""
        try:
            code = self.authorize(
                fields.get("client_id") or "",
                redirect_uri,
                fields.get("scope"),
                fields.get("state"),
            )
        except FakeOAuthError as exc:
            return self._html(400, exc.error, exc.description)
        if redirect_uri == OOB_REDIRECT_URI:
            return self._html(200, "Authorization code", code)
        query = {"code": code}
        if fields.get("state"):
            query["state"] = fields["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return Response(302, b"", {"Location": redirect_uri + sep + urlencode(query)})

    @staticmethod
    def _html(status: int, title: str, text: str) -> Response:
        page = (
            f"<!DOCTYPE html><html><body><h1>{html.escape(title)}</h1>"
            f'<p id="message">{html.escape(text)}</p></body></html>'
        )
        return Response(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def _token(self, request: Request) -> Response:
        fields = _request_fields(request)
        grant_type = fields.get("grant_type")
        with self.lock:
            app = self.apps.get(fields.get("client_id") or "")
            if app is None or not secrets.compare_digest(
                app["client_secret"], str(fields.get("client_secret") or "")
            ):
                return Response(
                    401, {"error": "invalid_client", "error_description": ERR_INVALID_CLIENT}
                )
            if grant_type == "authorization_code":
                grant = self.codes.get(fields.get("code") or "")
                if (
                    grant is None
                    or grant["used"]
                    or grant["client_id"] != app["client_id"]
                    or grant["redirect_uri"] != fields.get("redirect_uri")
                    or self.now() - grant["created_at"] > AUTHORIZATION_CODE_TTL
                ):
                    return Response(
                        400, {"error": "invalid_grant", "error_description": ERR_INVALID_GRANT}
                    )
                grant["used"] = True
                account_id: str | None = grant["account_id"]
                scopes = grant["scopes"]
            elif grant_type == "client_credentials":
                account_id = None
                requested = _scope_list(fields.get("scope")) or ["read"]
                if any(s not in app["scopes"] for s in requested):
                    return Response(
                        400,
                        {
                            "error": "invalid_scope",
                            "error_description": "The requested scope is invalid, unknown, or malformed.",
                        },
                    )
                scopes = requested
            else:
                return Response(
                    400,
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "The authorization grant type is not supported by the authorization server.",
                    },
                )
            token = self.add_token(
                secrets.token_urlsafe(32), account_id, scopes=scopes, client_id=app["client_id"]
            )
        return Response(
            200,
            {
                "access_token": token.token,
                "token_type": "Bearer",
                "scope": " ".join(scopes),
                "created_at": int(token.created_at),
            },
        )

    def _revoke(self, request: Request) -> Response:
        fields = _request_fields(request)
        with self.lock:
            app = self.apps.get(fields.get("client_id") or "")
            if app is None or app["client_secret"] != fields.get("client_secret"):
                return Response(
                    401, {"error": "invalid_client", "error_description": ERR_INVALID_CLIENT}
                )
            token = self.tokens.get(fields.get("token") or "")
            if token is not None and token.client_id == app["client_id"]:
                token.revoked = True
        return Response(200, {})

    def _oauth_metadata(self, request: Request) -> Response:
        if not self.advertise_oauth_metadata:
            return _error(404, "Not Found")
        base = self.url
        return Response(
            200,
            {
                "issuer": base + "/",
                "authorization_endpoint": base + "/oauth/authorize",
                "token_endpoint": base + "/oauth/token",
                "revocation_endpoint": base + "/oauth/revoke",
                "scopes_supported": sorted(
                    {"read", "write", "follow", "push", "profile"}
                    | {"read:accounts", "read:statuses", "write:media", "write:statuses"}
                ),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "app_registration_endpoint": base + "/api/v1/apps",
            },
        )

    # -- instance ----------------------------------------------------------------------------
    def _media_configuration(self) -> dict[str, Any]:
        return {
            "supported_mime_types": list(self.supported_mime_types),
            "image_size_limit": self.image_size_limit,
            "image_matrix_limit": 33_177_600,
            "video_size_limit": self.video_size_limit,
            "video_frame_rate_limit": 120,
            "video_matrix_limit": 8_294_400,
            "description_limit": self.description_limit,
        }

    def _status_configuration(self) -> dict[str, Any]:
        return {
            "max_characters": self.max_characters,
            "max_media_attachments": self.max_media_attachments,
            "characters_reserved_per_url": self.characters_reserved_per_url,
        }

    def _polls_configuration(self) -> dict[str, Any]:
        return {
            "max_options": 4,
            "max_characters_per_option": 50,
            "min_expiration": 300,
            "max_expiration": 2_629_746,
        }

    def _contact_account(self) -> dict[str, Any] | None:
        account = self.accounts.get(DEFAULT_ACCOUNT_ID)
        return self._render_account(account) if account else None

    def _instance_v1(self, request: Request) -> Response:
        return Response(
            200,
            {
                "uri": self.domain,
                "title": self.title,
                "short_description": "A fake Mastodon server for tests.",
                "description": "",
                "email": "admin@example.com",
                "version": self.version,
                "urls": {"streaming_api": self.url.replace("http", "ws", 1)},
                "stats": {
                    "user_count": len(self.accounts),
                    "status_count": len(self.statuses),
                    "domain_count": 1,
                },
                "thumbnail": None,
                "languages": ["en"],
                "registrations": False,
                "approval_required": False,
                "invites_enabled": False,
                "configuration": {
                    "accounts": {"max_featured_tags": 10},
                    "statuses": self._status_configuration(),
                    "media_attachments": self._media_configuration(),
                    "polls": self._polls_configuration(),
                },
                "contact_account": self._contact_account(),
                "rules": [],
            },
        )

    def _instance_v2(self, request: Request) -> Response:
        base = self.url
        return Response(
            200,
            {
                "domain": self.domain,
                "title": self.title,
                "version": self.version,
                "source_url": "https://github.com/mastodon/mastodon",
                "description": "A fake Mastodon server for tests.",
                "usage": {"users": {"active_month": len(self.accounts)}},
                "thumbnail": {"url": base + "/packs/media/images/preview.png"},
                "icon": [],
                "languages": ["en"],
                "configuration": {
                    "urls": {"streaming": base.replace("http", "ws", 1), "status": None},
                    "vapid": {"public_key": "BFakeVapidKey"},
                    "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                    "statuses": self._status_configuration(),
                    "media_attachments": self._media_configuration(),
                    "polls": self._polls_configuration(),
                    "translation": {"enabled": False},
                },
                "registrations": {
                    "enabled": False,
                    "approval_required": False,
                    "message": None,
                    "url": None,
                },
                "api_versions": {"mastodon": 2},
                "contact": {"email": "admin@example.com", "account": self._contact_account()},
                "rules": [],
            },
        )

    # -- accounts ----------------------------------------------------------------------------
    def _render_account(self, account: dict[str, Any], *, source: bool = False) -> dict[str, Any]:
        base = self.url
        username = account["username"]
        avatar = f"{base}/system/accounts/avatars/{account['id']}/original/avatar.png"
        header = f"{base}/system/accounts/headers/{account['id']}/original/header.png"
        body: dict[str, Any] = {
            "id": account["id"],
            "username": username,
            "acct": account["acct"],
            "display_name": account["display_name"],
            "locked": account["locked"],
            "bot": account["bot"],
            "discoverable": True,
            "indexable": True,
            "group": False,
            "hide_collections": False,
            "noindex": False,
            "created_at": account["created_at"],
            "note": account["note"],
            "url": f"{base}/@{username}",
            "uri": f"{base}/users/{username}",
            "avatar": avatar,
            "avatar_static": avatar,
            "header": header,
            "header_static": header,
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": account["statuses_count"],
            "last_status_at": account["last_status_at"],
            "emojis": [],
            "fields": [],
        }
        if source:
            body["source"] = {
                "privacy": account["default_visibility"],
                "sensitive": account["default_sensitive"],
                "language": account["default_language"],
                "note": account["note"],
                "fields": [],
                "follow_requests_count": 0,
                "hide_collections": False,
                "discoverable": True,
                "indexable": True,
            }
            body["role"] = {
                "id": "-99",
                "name": "",
                "permissions": "0",
                "color": "",
                "highlighted": False,
            }
        return body

    def _verify_credentials(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None and token.account_id is not None
        with self.lock:
            account = self.accounts[token.account_id]
            return Response(200, self._render_account(account, source=True))

    def _get_account(self, request: Request, token: FakeToken | None) -> Response:
        with self.lock:
            account = self.accounts.get(request.params["id"])
            if account is None:
                return _error(404, ERR_RECORD_NOT_FOUND)
            return Response(200, self._render_account(account))

    # -- media -------------------------------------------------------------------------------
    def _render_media(self, media: dict[str, Any]) -> dict[str, Any]:
        ready = media["state"] == "ready"
        base = self.url
        path = f"{base}/system/media_attachments/files/{media['id']}"
        meta: dict[str, Any] = {}
        if media.get("width") and media.get("height"):
            width, height = media["width"], media["height"]
            original = {
                "width": width,
                "height": height,
                "size": f"{width}x{height}",
                "aspect": width / height,
            }
            meta = {"original": original, "small": dict(original)}
        if media["type"] in ("video", "gifv", "audio"):
            meta.setdefault("original", {}).update({"duration": 1.0, "bitrate": 100000})
            meta["length"] = "0:00:01.00"
            meta["duration"] = 1.0
        if media.get("focus"):
            meta["focus"] = dict(media["focus"])
        return {
            "id": media["id"],
            "type": media["type"],
            "url": f"{path}/original/{media['stored_name']}" if ready else None,
            "preview_url": f"{path}/small/{media['stored_name']}" if ready else None,
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": meta or None,
            "description": media["description"],
            "blurhash": _BLURHASH if ready else None,
        }

    def _upload_media(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None and token.account_id is not None
        parts = _parse_multipart(request)
        file_part = parts.get("file")
        if file_part is None or file_part.filename is None:
            return _error(422, "Validation failed: File can't be blank")
        mime = (file_part.content_type or "").split(";")[0].strip().lower()
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(file_part.filename or "")[0] or mime
        if mime not in self.supported_mime_types:
            return _error(422, "Validation failed: File content type is invalid, File is invalid")
        kind = mime.split("/")[0]
        media_type = {"image": "image", "video": "video", "audio": "audio"}[kind]
        if mime == "image/gif":
            media_type = "gifv"  # Mastodon converts GIFs to video: processed asynchronously
        size = len(file_part.data)
        if media_type == "image" and size > self.image_size_limit:
            return _error(
                422,
                f"Validation failed: File file size must be less than {self.image_size_limit // 1048576} MB",
            )
        if media_type != "image" and size > self.video_size_limit:
            return _error(
                422,
                f"Validation failed: File file size must be less than {self.video_size_limit // 1048576} MB",
            )
        description = parts["description"].text if "description" in parts else None
        if description is not None and len(description) > self.description_limit:
            return _error(
                422,
                f"Validation failed: Description is too long (maximum is {self.description_limit} characters)",
            )
        focus = None
        if "focus" in parts:
            try:
                x, y = (float(v) for v in parts["focus"].text.split(","))
                focus = {"x": x, "y": y}
            except ValueError:
                focus = None
        width = height = None
        if media_type == "image":
            width, height = _image_size(file_part.data)
        asynchronous = media_type != "image" and self.media_processing_polls > 0
        extension = mimetypes.guess_extension(mime) or ".bin"
        with self.lock:
            media_id = str(self._next_media_id)
            self._next_media_id += 1
            media = {
                "id": media_id,
                "type": media_type,
                "mime_type": mime,
                "file_name": file_part.filename,
                "stored_name": f"{media_id}{extension}",
                "size": size,
                "data": file_part.data,
                "description": description,
                "focus": focus,
                "width": width,
                "height": height,
                "account_id": token.account_id,
                "status_id": None,
                "state": "processing" if asynchronous else "ready",
                "polls": 0,
                "created_at": self.now(),
                "endpoint": request.path,
                "has_thumbnail": "thumbnail" in parts,
            }
            self.media[media_id] = media
            body = self._render_media(media)
        return Response(202 if asynchronous else 200, body)

    def _owned_media(self, request: Request, token: FakeToken) -> dict[str, Any] | None:
        media = self.media.get(request.params["id"])
        if media is None or media["account_id"] != token.account_id:
            return None
        return media

    def _get_media(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None
        with self.lock:
            media = self._owned_media(request, token)
            if media is None:
                return _error(404, ERR_RECORD_NOT_FOUND)
            if media["state"] == "processing":
                media["polls"] += 1
                if media["polls"] >= self.media_processing_polls:
                    media["state"] = "ready"
            if media["state"] == "failed":
                return _error(422, "Error processing thumbnail for uploaded media")
            status = 200 if media["state"] == "ready" else 206
            return Response(status, self._render_media(media))

    def _update_media(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None
        fields = _request_fields(request)
        with self.lock:
            media = self._owned_media(request, token)
            if media is None or media["status_id"] is not None:
                return _error(404, ERR_RECORD_NOT_FOUND)
            if "description" in fields:
                media["description"] = fields["description"]
            if fields.get("focus"):
                try:
                    x, y = (float(v) for v in str(fields["focus"]).split(","))
                    media["focus"] = {"x": x, "y": y}
                except ValueError:
                    pass
            status = 200 if media["state"] == "ready" else 206
            return Response(status, self._render_media(media))

    def _media_file(self, request: Request) -> Response:
        media = self.media.get(request.params["id"])
        if media is None or media["state"] != "ready":
            return _error(404, "Not Found")
        return Response(200, media["data"], {"Content-Type": media["mime_type"]})

    # -- statuses ----------------------------------------------------------------------------
    def _status_length(self, text: str, spoiler_text: str) -> int:
        placeholder = "x" * URL_PLACEHOLDER_CHARS
        countable = _URL_REGEX.sub(lambda m: m.group(2) + placeholder, text)
        countable = _MENTION_RE.sub(
            lambda m: m.group(0)[: m.start(1) - m.start(0)] + m.group(2), countable
        )
        return _grapheme_length(countable) + _grapheme_length(spoiler_text)

    def _format_content(self, text: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """Plain text to Mastodon-like HTML: links, hashtags, local mentions, <p> and <br />."""
        base = self.url
        entities: list[tuple[int, int, str, str, dict[str, Any] | None]] = []
        for m in _URL_REGEX.finditer(text):
            url = m.group(3)
            scheme, _, rest = url.partition("://")
            display, tail = rest[:30], rest[30:]
            if tail:
                shown = (
                    f'<span class="ellipsis">{html.escape(display)}</span>'
                    f'<span class="invisible">{html.escape(tail)}</span>'
                )
            else:
                shown = (
                    f'<span class="">{html.escape(display)}</span><span class="invisible"></span>'
                )
            markup = (
                f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" '
                f'translate="no"><span class="invisible">{html.escape(scheme)}://</span>'
                f"{shown}</a>"
            )
            entities.append((m.start(3), m.end(3), markup, "url", None))
        for m in _HASHTAG_RE.finditer(text):
            name = m.group(1)
            url = f"{base}/tags/{name.lower()}"
            markup = (
                f'<a href="{html.escape(url)}" class="mention hashtag" rel="tag">'
                f"#<span>{html.escape(name)}</span></a>"
            )
            tag = {"name": name.lower(), "url": url}
            entities.append((m.start(1) - 1, m.end(1), markup, "tag", tag))
        with self.lock:
            by_username = {a["username"].lower(): a for a in self.accounts.values()}
        for m in _MENTION_RE.finditer(text):
            handle, username = m.group(1), m.group(2)
            domain = handle.partition("@")[2]
            account = by_username.get(username.lower())
            if account is None or (domain and domain.lower() != self.domain.lower()):
                continue  # remote or unknown accounts stay plain text
            url = f"{base}/@{account['username']}"
            markup = (
                f'<span class="h-card" translate="no"><a href="{html.escape(url)}" '
                f'class="u-url mention">@<span>{html.escape(account["username"])}</span></a></span>'
            )
            mention = {
                "id": account["id"],
                "username": account["username"],
                "acct": account["acct"],
                "url": url,
            }
            entities.append((m.start(1) - 1, m.end(1), markup, "mention", mention))
        entities.sort(key=lambda e: (e[0], -e[1]))
        tags: list[dict[str, Any]] = []
        mentions: list[dict[str, Any]] = []
        pieces: list[str] = []
        position = 0
        for start, end, markup, kind, data in entities:
            if start < position:
                continue  # overlapping entity (e.g. a #fragment inside a URL)
            pieces.append(html.escape(text[position:start], quote=False))
            pieces.append(markup)
            position = end
            if kind == "tag" and data is not None and data not in tags:
                tags.append(data)
            elif kind == "mention" and data is not None and data not in mentions:
                mentions.append(data)
        pieces.append(html.escape(text[position:], quote=False))
        rendered = "".join(pieces).replace("\r\n", "\n").strip("\n")
        if not rendered:
            return "", tags, mentions
        paragraphs = re.split(r"\n\s*\n", rendered)
        content = "".join(
            f"<p>{p.strip(chr(10)).replace(chr(10), '<br />')}</p>" for p in paragraphs
        )
        return content, tags, mentions

    def _render_status(self, record: dict[str, Any], viewer: FakeToken | None) -> dict[str, Any]:
        body = {k: v for k, v in record.items() if k not in _PRIVATE_STATUS_KEYS}
        account = self.accounts.get(record["account_id"])
        body["account"] = self._render_account(account) if account else record["account"]
        body["media_attachments"] = [
            self._render_media(self.media[m]) for m in record["media_ids"] if m in self.media
        ]
        body["replies_count"] = record["replies_count"]
        if viewer is None or viewer.account_id != record["account_id"]:
            body.pop("application", None)
        return body

    def _post_status(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None and token.account_id is not None
        fields = _request_fields(request)
        key = request.header("idempotency-key")
        if not key:
            return self._create_status(request, token, fields, None)
        lock_key = (token.account_id, key)
        with self.lock:
            key_lock = self._idempotency_locks.setdefault(lock_key, threading.Lock())
        with key_lock:  # Mastodon serialises same-key requests with a Redis lock
            with self.lock:
                remembered = self.idempotency.get(lock_key)
                if remembered is not None:
                    status_id, stored_at = remembered
                    record = self.statuses_by_id.get(status_id)
                    if self.now() - stored_at >= IDEMPOTENCY_TTL:
                        del self.idempotency[lock_key]  # the Redis key expired
                    elif record is not None and not record["deleted"]:
                        return Response(200, self._render_status(record, token))
            return self._create_status(request, token, fields, key)

    def _create_status(
        self, request: Request, token: FakeToken, fields: dict[str, Any], key: str | None
    ) -> Response:
        account_id = token.account_id
        assert account_id is not None
        text = fields.get("status")
        text = "" if text is None else str(text)
        spoiler_text = str(fields.get("spoiler_text") or "")
        raw_media_ids = fields.get("media_ids") or []
        if not isinstance(raw_media_ids, list):
            raw_media_ids = [raw_media_ids]
        media_ids = [str(m) for m in raw_media_ids]
        visibility = fields.get("visibility")
        if fields.get("scheduled_at"):
            return _error(422, "FakeMastodon does not implement scheduled_at")
        if (fields.get("poll") or any(k.startswith("poll[") for k in fields)) and media_ids:
            return _error(422, "Cannot attach files to a status that has a poll")
        if visibility is not None and visibility not in _VISIBILITIES:
            return _error(422, "Validation failed: Visibility is not included in the list")
        if not text.strip() and not media_ids and not fields.get("poll"):
            return _error(422, ERR_TEXT_BLANK)
        if self._status_length(text, spoiler_text) > self.max_characters:
            return _error(422, text_limit_error(self.max_characters))
        if len(media_ids) > self.max_media_attachments:
            return _error(422, ERR_TOO_MANY_MEDIA)
        content, tags, mentions = self._format_content(text)
        if self.status_create_delay:
            time.sleep(self.status_create_delay)
        with self.lock:
            in_reply_to_id = fields.get("in_reply_to_id")
            parent = None
            if in_reply_to_id:
                parent = self.statuses_by_id.get(str(in_reply_to_id))
                if parent is None or parent["deleted"]:
                    return _error(404, ERR_RECORD_NOT_FOUND)
            attachments = []
            for media_id in media_ids:
                media = self.media.get(media_id)
                if (
                    media is None
                    or media["account_id"] != account_id
                    or media["status_id"] is not None
                ):
                    return _error(
                        422, f"Validation failed: Media attachment {media_id} could not be found"
                    )
                attachments.append(media)
            if any(m["state"] != "ready" for m in attachments):
                return _error(422, ERR_NOT_PROCESSED)
            if len(attachments) > 1 and any(
                m["type"] in ("video", "gifv", "audio") for m in attachments
            ):
                return _error(422, ERR_IMAGES_AND_VIDEO)

            account = self.accounts[account_id]
            numeric_id = self._next_status_id
            self._next_status_id += 1
            status_id = str(numeric_id)
            now = self.now()
            base = self.url
            sensitive = _bool(fields.get("sensitive"))
            if sensitive is None:
                sensitive = account["default_sensitive"]
            app = self.apps.get(token.client_id or "")
            record: dict[str, Any] = {
                "id": status_id,
                "created_at": _iso(now),
                "in_reply_to_id": parent["id"] if parent else None,
                "in_reply_to_account_id": parent["account_id"] if parent else None,
                "sensitive": bool(sensitive or spoiler_text),
                "spoiler_text": spoiler_text,
                "visibility": visibility or account["default_visibility"],
                "language": fields.get("language") or account["default_language"],
                "uri": f"{base}/users/{account['username']}/statuses/{status_id}",
                "url": f"{base}/@{account['username']}/{status_id}",
                "replies_count": 0,
                "reblogs_count": 0,
                "favourites_count": 0,
                "quotes_count": 0,
                "edited_at": None,
                "favourited": False,
                "reblogged": False,
                "muted": False,
                "bookmarked": False,
                "pinned": False,
                "content": content,
                "filtered": [],
                "reblog": None,
                "application": {"name": app["name"], "website": app["website"]}
                if app
                else {"name": "Web", "website": None},
                "account": self._render_account(account),
                "media_attachments": [],
                "mentions": mentions,
                "tags": tags,
                "emojis": [],
                "card": None,
                "poll": None,
                # private (not rendered): what the test may want to check
                "text": text,
                "account_id": account_id,
                "idempotency_key": key,
                "media_ids": media_ids,
                "request_fields": fields,
                "deleted": False,
            }
            for media in attachments:
                media["status_id"] = status_id
            record["media_attachments"] = [self._render_media(m) for m in attachments]
            if parent is not None:
                parent["replies_count"] += 1
            self.statuses.append(record)
            self.statuses_by_id[status_id] = record
            self._account_status_ids[account_id].append(numeric_id)
            account["statuses_count"] += 1
            account["last_status_at"] = record["created_at"][:10]
            if key is not None:  # written only after a successful create
                self.idempotency[(account_id, key)] = (status_id, now)
            body = self._render_status(record, token)
        return Response(200, body)

    def _visible(self, record: dict[str, Any], viewer: FakeToken | None) -> bool:
        if record["deleted"]:
            return False
        if record["visibility"] in ("public", "unlisted"):
            return True
        return viewer is not None and viewer.account_id == record["account_id"]

    def _get_status(self, request: Request, token: FakeToken | None) -> Response:
        with self.lock:
            record = self.statuses_by_id.get(request.params["id"])
            if record is None or not self._visible(record, token):
                return _error(404, ERR_RECORD_NOT_FOUND)
            return Response(200, self._render_status(record, token))

    def _delete_status(self, request: Request, token: FakeToken | None) -> Response:
        assert token is not None
        with self.lock:
            record = self.statuses_by_id.get(request.params["id"])
            if record is None or record["deleted"] or record["account_id"] != token.account_id:
                return _error(404, ERR_RECORD_NOT_FOUND)
            record["deleted"] = True
            self.accounts[record["account_id"]]["statuses_count"] -= 1
            for media_id in record["media_ids"]:
                if media_id in self.media:
                    self.media[media_id]["status_id"] = None
            body = self._render_status(record, token)
            body["text"] = record["text"]
            return Response(200, body)

    def _account_statuses(self, request: Request, token: FakeToken | None) -> Response:
        account_id = request.params["id"]
        fields = _request_fields(request)
        try:
            limit = min(max(int(fields.get("limit") or 20), 1), 40)
            max_id = int(fields["max_id"]) if fields.get("max_id") else None
            since_id = int(fields["since_id"]) if fields.get("since_id") else None
            min_id = int(fields["min_id"]) if fields.get("min_id") else None
        except ValueError:
            return _error(400, "Invalid pagination parameter")
        exclude_replies = bool(_bool(fields.get("exclude_replies")))
        only_media = bool(_bool(fields.get("only_media")))
        with self.lock:
            if account_id not in self.accounts:
                return _error(404, ERR_RECORD_NOT_FOUND)
            if _bool(fields.get("pinned")):
                return Response(200, [])
            ids = self._account_status_ids[account_id]
            upper = bisect.bisect_left(ids, max_id) if max_id is not None else len(ids)
            lower_id = min_id if min_id is not None else since_id
            lower = bisect.bisect_right(ids, lower_id) if lower_id is not None else 0

            def wanted(numeric_id: int) -> dict[str, Any] | None:
                record = self.statuses_by_id[str(numeric_id)]
                if not self._visible(record, token):
                    return None
                if exclude_replies and record["in_reply_to_id"] is not None:
                    return None
                if only_media and not record["media_ids"]:
                    return None
                return record

            found: list[dict[str, Any]] = []
            # min_id pages forward from the given id; otherwise newest first from max_id.
            indices = range(lower, upper) if min_id is not None else range(upper - 1, lower - 1, -1)
            for index in indices:
                record = wanted(ids[index])
                if record is not None:
                    found.append(record)
                    if len(found) >= limit:
                        break
            found.sort(key=lambda r: int(r["id"]), reverse=True)
            body = [self._render_status(r, token) for r in found]
        headers: dict[str, str] = {}
        if found:
            base = f"{self.url}/api/v1/accounts/{account_id}/statuses"
            headers["Link"] = (
                f'<{base}?limit={limit}&max_id={found[-1]["id"]}>; rel="next", '
                f'<{base}?limit={limit}&min_id={found[0]["id"]}>; rel="prev"'
            )
        return Response(200, body, headers)


_PRIVATE_STATUS_KEYS = frozenset(
    {"text", "account_id", "idempotency_key", "media_ids", "request_fields", "deleted"}
)


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None, None
