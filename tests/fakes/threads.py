"""A stateful fake of Meta's Threads Graph API (https://developers.facebook.com/docs/threads/overview), served over real HTTP.

One server answers both the Graph host (`THREADS_GRAPH_BASE`) and the authorize host
(`THREADS_AUTHORIZE_URL`). Graph paths are accepted with a version prefix (`/v1.0/me`) or without
one (`/me`); the token endpoints are unversioned, as on graph.threads.net.

What it models:

- OAuth: authorize page and `authorize()` helper (single-use codes valid 1 h), code exchange
  (short-lived token, 1 h), `th_exchange_token` (long-lived, 60 days), `th_refresh_token`
  (only for long-lived tokens at least 24 h old and not expired). Every token carries an issue
  time and an expiry measured against `self.now()`, which tests may replace to jump time.
- Containers: `POST /{user}/threads` with Threads' validation; IMAGE/VIDEO URLs are really fetched
  with `requests` in a background thread; the status moves IN_PROGRESS -> FINISHED after a
  configurable number of status polls (and/or seconds), to ERROR if the fetch failed, to EXPIRED
  24 h after creation, to PUBLISHED once published.
- `POST /{user}/threads_publish`, the 250-per-rolling-24-h quota, read-back of media objects,
  `/{user}/threads` and `/{user}/replies` listings, `threads_publishing_limit`.
- Graph-shaped errors everywhere; `inject()` faults without a body get a Graph-shaped body.

Usage::

    fake = FakeThreads().start()
    token = fake.issue_long_lived_token(fake.default_user_id)
    requests.post(f"{fake.url}/v1.0/me/threads", data={"media_type": "TEXT", "text": "hi",
                  "access_token": token})
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import regex
import requests

from tests.fakes.base import FakeServer, Fault, Request, Response

V = r"(?:/v\d+\.\d+)?"  # optional Graph version prefix
NODE = r"(?P<node>[^/]+)"

SHORT_LIVED_TTL = 3600
LONG_LIVED_TTL = 5_184_000  # 60 days
CODE_TTL = 3600
REFRESH_MIN_AGE = 86_400
CONTAINER_TTL = 86_400
QUOTA_DURATION = 86_400

MEDIA_TYPES = ("TEXT", "IMAGE", "VIDEO", "CAROUSEL")
READ_BACK_MEDIA_TYPE = {
    "TEXT": "TEXT_POST",
    "IMAGE": "IMAGE",
    "VIDEO": "VIDEO",
    "CAROUSEL": "CAROUSEL_ALBUM",
}
REPLY_CONTROLS = (
    "everyone",
    "accounts_you_follow",
    "mentioned_only",
    "parent_post_author_only",
    "followers_only",
)
DEFAULT_SCOPES = (
    "threads_basic",
    "threads_content_publish",
    "threads_manage_replies",
    "threads_read_replies",
    "threads_manage_insights",
)

USER_FIELDS = (
    "id",
    "username",
    "name",
    "threads_profile_picture_url",
    "threads_biography",
    "is_verified",
)
CONTAINER_FIELDS = ("id", "status", "error_message")
MEDIA_FIELDS = (
    "id",
    "media_product_type",
    "media_type",
    "media_url",
    "permalink",
    "owner",
    "username",
    "text",
    "timestamp",
    "shortcode",
    "thumbnail_url",
    "children",
    "is_quote_post",
    "alt_text",
    "link_attachment_url",
    "has_replies",
    "is_reply",
    "is_reply_owned_by_me",
    "root_post",
    "replied_to",
    "hide_status",
    "reply_audience",
    "quoted_post",
    "reposted_post",
    "gif_url",
    "poll_attachment",
    "topic_tag",
    "is_spoiler_media",
    "text_entities",
    "text_attachment",
    "location_id",
    "is_verified",
    "profile_picture_url",
)
LIMIT_FIELDS = ("quota_usage", "config", "reply_quota_usage", "reply_config")

# -- error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling)
# ------------------------------------------------------------
MEDIA_NOT_FOUND_CODE, MEDIA_NOT_FOUND_SUBCODE = 24, 4279009
QUOTA_ERROR_CODE, QUOTA_ERROR_SUBCODE = 9, 2207042  # the Instagram values; Threads' are UNCERTAIN
TOKEN_ERROR_CODE = 190
TOKEN_EXPIRED_SUBCODE = 463
TOKEN_REVOKED_SUBCODE = 458  # "user has not authorized application" (app removed)
INVALID_PARAMETER_CODE = 100
OBJECT_MISSING_SUBCODE = 33
PERMISSION_CODE = 10
LINK_LIMIT_MESSAGE = "THREADS_API__LINK_LIMIT_EXCEEDED"

IMAGE_DOWNLOAD_ERROR = "FAILED_DOWNLOADING_IMAGE"  # undocumented; Threads' own list is video-only
VIDEO_DOWNLOAD_ERROR = "FAILED_DOWNLOADING_VIDEO"

_URL_RE = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+")
_GRAPHEME_RE = regex.compile(r"\X")
_EMOJI_RE = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\uFE0F\u20E3]")


def threads_text_length(text: str) -> int:
    """Length as Threads counts it: one per grapheme, but an emoji grapheme counts its UTF-8 bytes."""
    total = 0
    for grapheme in _GRAPHEME_RE.findall(text):
        total += len(grapheme.encode("utf-8")) if _EMOJI_RE.search(grapheme) else 1
    return total


def _normalise_link(link: str) -> str:
    link = link.rstrip(".,;:!?)]}'\"").lower()
    link = re.sub(r"^https?://", "", link)
    link = re.sub(r"^www\.", "", link)
    return link.rstrip("/")


def count_links(text: str | None, link_attachment: str | None = None) -> int:
    """Unique links in a post: URLs in the text plus `link_attachment`."""
    links = {_normalise_link(m.group(0)) for m in _URL_RE.finditer(text or "")}
    if link_attachment:
        links.add(_normalise_link(link_attachment))
    return len(links)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _human_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")


def _parse_fields(spec: str | None) -> list[tuple[str, str | None]]:
    """`id,children{id,media_url},owner` -> [("id", None), ("children", "id,media_url"), ...]."""
    if not spec:
        return []
    out: list[tuple[str, str | None]] = []
    depth, start = 0, 0
    spec = spec + ","
    for i, ch in enumerate(spec):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            item = spec[start:i].strip()
            start = i + 1
            if not item:
                continue
            if "{" in item and item.endswith("}"):
                name, sub = item.split("{", 1)
                out.append((name.strip(), sub[:-1]))
            else:
                out.append((item, None))
    return out


class GraphError(Exception):
    """Raised inside handlers; turned into a Graph-shaped error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        *,
        type: str = "OAuthException",
        is_transient: bool = False,
        user_title: str | None = None,
        user_msg: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = graph_error_body(
            code,
            message,
            subcode,
            type=type,
            is_transient=is_transient,
            user_title=user_title,
            user_msg=user_msg,
        )
        self.headers = headers or {}

    def response(self) -> Response:
        return Response(self.status, self.body, dict(self.headers))


def graph_error_body(
    code: int,
    message: str,
    subcode: int | None = None,
    *,
    type: str = "OAuthException",
    is_transient: bool = False,
    user_title: str | None = None,
    user_msg: str | None = None,
) -> dict[str, Any]:
    """`{"error": {...}}` as the Graph API sends it; `error_subcode` and the user texts are omitted
    when absent, like Graph does."""
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = is_transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


def _status_for_code(code: int) -> int:
    if code in (1, 2):
        return 500
    if code in (4, 17, 32, 341, 613, PERMISSION_CODE) or 200 <= code <= 299:
        return 403
    return 400


def _default_fault_body(status: int) -> dict[str, Any]:
    """The Graph error a real outage/throttle/... would carry for a bare injected status."""
    if status >= 500:
        return graph_error_body(
            2,
            "An unexpected error has occurred. Please retry your request later.",
            is_transient=True,
        )
    if status == 429:
        return graph_error_body(4, "Application request limit reached", is_transient=True)
    if status == 401:
        return graph_error_body(TOKEN_ERROR_CODE, "Error validating access token", 467)
    if status == 403:
        return graph_error_body(
            PERMISSION_CODE, "(#10) Application does not have permission for this action"
        )
    if status == 404:
        return graph_error_body(
            INVALID_PARAMETER_CODE,
            "Unsupported request - object does not exist",
            OBJECT_MISSING_SUBCODE,
        )
    return graph_error_body(1, "An unknown error occurred", is_transient=False)


# -- state --------------------------------------------------------------------------------------
@dataclass
class User:
    id: str
    username: str
    name: str | None = None
    threads_profile_picture_url: str | None = None
    threads_biography: str | None = None
    is_verified: bool = False


@dataclass
class Token:
    value: str
    user_id: str
    kind: str  # "short" | "long"
    issued_at: float
    expires_at: float
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    revoked_subcode: int | None = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    user_id: str
    issued_at: float
    used: bool = False


@dataclass
class Container:
    id: str
    user_id: str
    media_type: str
    created_at: float
    text: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    is_carousel_item: bool = False
    children: list[str] = field(default_factory=list)
    reply_to_id: str | None = None
    reply_control: str | None = None
    topic_tag: str | None = None
    link_attachment: str | None = None
    alt_text: str | None = None
    quote_post_id: str | None = None
    status: str = "IN_PROGRESS"
    error_message: str | None = None
    polls: int = 0
    forced_error: str | None = None
    fetch_done: threading.Event = field(default_factory=threading.Event)
    fetch_error: str | None = None
    media_id: str | None = None  # once published (not exposed over the API)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "media_type": self.media_type,
            "status": self.status,
            "error_message": self.error_message,
            "text": self.text,
            "image_url": self.image_url,
            "video_url": self.video_url,
            "is_carousel_item": self.is_carousel_item,
            "children": list(self.children),
            "reply_to_id": self.reply_to_id,
            "reply_control": self.reply_control,
            "topic_tag": self.topic_tag,
            "link_attachment": self.link_attachment,
            "alt_text": self.alt_text,
            "quote_post_id": self.quote_post_id,
            "created_at": self.created_at,
            "polls": self.polls,
            "media_id": self.media_id,
        }


@dataclass
class Media:
    id: str
    user_id: str
    container_id: str
    media_type: str  # as created: TEXT | IMAGE | VIDEO | CAROUSEL
    published_at: float
    shortcode: str
    permalink: str
    text: str | None = None
    media_url: str | None = None
    alt_text: str | None = None
    link_attachment: str | None = None
    reply_to_id: str | None = None
    root_id: str | None = None
    reply_control: str | None = None
    topic_tag: str | None = None
    quote_post_id: str | None = None
    children: list[str] = field(default_factory=list)  # child media ids
    child_containers: list[str] = field(default_factory=list)
    is_carousel_child: bool = False
    deleted: bool = False

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "text": self.text,
            "media_type": self.media_type,
            "reply_to_id": self.reply_to_id,
            "container_id": self.container_id,
            "children": list(self.child_containers),
            "children_media_ids": list(self.children),
            "topic_tag": self.topic_tag,
            "reply_control": self.reply_control,
            "permalink": self.permalink,
            "shortcode": self.shortcode,
            "timestamp": _iso(self.published_at),
            "published_at": self.published_at,
            "media_url": self.media_url,
            "alt_text": self.alt_text,
            "link_attachment": self.link_attachment,
            "quote_post_id": self.quote_post_id,
        }


class FakeThreads(FakeServer):
    """The Threads Graph API plus Meta OAuth, from in-memory state. See the module docstring."""

    DEFAULT_USER_ID = "17890000000000001"
    DEFAULT_USERNAME = "alice_threads"

    def __init__(
        self,
        *,
        client_id: str = "threads-app-id",
        client_secret: str = "threads-app-secret",
        redirect_uris: list[str] | None = None,
        now: Callable[[], float] | None = None,
        quota_total: int = 250,
        reply_quota_total: int = 1000,
        image_processing_polls: int = 0,
        video_processing_polls: int = 2,
        carousel_processing_polls: int = 0,
        text_processing_polls: int = 0,
        image_processing_seconds: float = 0.0,
        video_processing_seconds: float = 0.0,
        fetch_timeout: float = 5.0,
        fetch_media: bool = True,
        permalink_base: str = "https://www.threads.net",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris  # None = any redirect_uri accepted at authorize
        self.now: Callable[[], float] = now or time.time
        self.quota_total = quota_total
        self.quota_duration = QUOTA_DURATION
        self.reply_quota_total = reply_quota_total
        self.replies_count_toward_quota = True  # undocumented; the conservative guess
        self.list_replies_in_threads = False  # /{user}/threads lists top-level posts only
        self.image_processing_polls = image_processing_polls
        self.video_processing_polls = video_processing_polls
        self.carousel_processing_polls = carousel_processing_polls
        self.text_processing_polls = text_processing_polls
        self.image_processing_seconds = image_processing_seconds
        self.video_processing_seconds = video_processing_seconds
        self.container_ttl = CONTAINER_TTL
        self.fetch_timeout = fetch_timeout
        self.fetch_media = fetch_media
        self.permalink_base = permalink_base.rstrip("/")
        self.auto_approve = False  # GET /oauth/authorize redirects at once instead of a page

        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, AuthCode] = {}
        self._containers: dict[str, Container] = {}
        self._media: dict[str, Media] = {}
        self._post_order: list[str] = []  # top-level published media ids, in publish order
        self._publish_log: dict[str, list[tuple[float, bool]]] = {}  # user -> (time, is_reply)
        self._forced_container_errors: list[str] = []
        self._ids = 1000
        self.fetched_urls: list[dict[str, Any]] = []
        self.refreshes: list[dict[str, Any]] = []
        self.exchanges: list[dict[str, Any]] = []
        super().__init__()
        self.default_user_id = self.add_user(
            self.DEFAULT_USER_ID, self.DEFAULT_USERNAME, name="Alice"
        )

    # -- public helpers -------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str | None = None,
        username: str | None = None,
        *,
        name: str | None = None,
        profile_picture_url: str | None = None,
        biography: str | None = None,
        is_verified: bool = False,
    ) -> str:
        with self.lock:
            user_id = str(user_id or self._new_id("1789"))
            self.users[user_id] = User(
                id=user_id,
                username=username or f"user{user_id[-4:]}",
                name=name,
                threads_profile_picture_url=profile_picture_url
                or f"https://scontent.cdninstagram.com/v/t51.2885-19/{user_id}.jpg",
                threads_biography=biography if biography is not None else "",
                is_verified=is_verified,
            )
            return user_id

    def authorize(
        self,
        client_id: str,
        redirect_uri: str,
        scope: str | list[str] = "threads_basic,threads_content_publish",
        state: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """What the user clicking "Allow" does: returns the authorization code (single use, 1 h)."""
        with self.lock:
            self._check_authorize(client_id, redirect_uri)
            scopes = tuple(scope) if isinstance(scope, list) else self._split_scopes(scope)
            user_id = str(user_id or self.default_user_id)
            if user_id not in self.users:
                raise KeyError(f"unknown Threads user {user_id}")
            code = "AQ" + secrets.token_urlsafe(24)
            self.codes[code] = AuthCode(
                code=code,
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                state=state,
                user_id=user_id,
                issued_at=self.now(),
            )
            return code

    def issue_long_lived_token(
        self,
        user_id: str | None = None,
        issued_at: float | None = None,
        *,
        scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
        expires_at: float | None = None,
    ) -> str:
        with self.lock:
            return self._issue(
                str(user_id or self.default_user_id), "long", issued_at, tuple(scopes), expires_at
            )

    def issue_short_lived_token(
        self, user_id: str | None = None, issued_at: float | None = None
    ) -> str:
        with self.lock:
            return self._issue(
                str(user_id or self.default_user_id), "short", issued_at, DEFAULT_SCOPES
            )

    def revoke(self, token: str, subcode: int = TOKEN_REVOKED_SUBCODE) -> None:
        """The token answers 190/`subcode` from now on (458: app removed, 460: password changed)."""
        with self.lock:
            self.tokens[token].revoked_subcode = subcode

    def revoke_user(self, user_id: str, subcode: int = TOKEN_REVOKED_SUBCODE) -> None:
        with self.lock:
            for token in self.tokens.values():
                if token.user_id == str(user_id):
                    token.revoked_subcode = subcode

    def expire(self, token: str) -> None:
        with self.lock:
            self.tokens[token].expires_at = self.now()

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (wraps the current `now`)."""
        with self.lock:
            previous = self.now
            self.now = lambda: previous() + seconds

    def use_quota(self, user_id: str | None = None, n: int = 1, at: float | None = None) -> None:
        """Pretend `n` posts were published (at `at`, default now) for the quota."""
        with self.lock:
            log = self._publish_log.setdefault(str(user_id or self.default_user_id), [])
            log.extend([(self.now() if at is None else at, False)] * n)

    def quota_usage(self, user_id: str | None = None, replies: bool = False) -> int:
        with self.lock:
            return self._usage(str(user_id or self.default_user_id), replies)

    def fail_next_container(self, error_message: str = "UNKNOWN", times: int = 1) -> None:
        """The next `times` IMAGE/VIDEO/TEXT/CAROUSEL containers end in ERROR with `error_message`."""
        with self.lock:
            self._forced_container_errors.extend([error_message] * times)

    def set_container_status(
        self, container_id: str, status: str, error_message: str | None = None
    ) -> None:
        with self.lock:
            container = self._containers[container_id]
            container.status = status
            container.error_message = error_message
            container.fetch_done.set()

    def inject_graph_error(
        self,
        method: str,
        path_pattern: str,
        code: int,
        subcode: int | None = None,
        *,
        status: int | None = None,
        message: str | None = None,
        type: str = "OAuthException",
        is_transient: bool = False,
        user_title: str | None = None,
        user_msg: str | None = None,
        times: int = 1,
        **fault_kwargs: Any,
    ) -> Fault:
        """Answer the next `times` matching requests with a Graph error (state untouched)."""
        body = graph_error_body(
            code,
            message or f"(#{code}) Injected error",
            subcode,
            type=type,
            is_transient=is_transient,
            user_title=user_title,
            user_msg=user_msg,
        )
        return self.inject(
            method,
            path_pattern,
            status=status or _status_for_code(code),
            body=body,
            times=times,
            **fault_kwargs,
        )

    def fail_next_publish_with_media_not_found(self, times: int = 1) -> Fault:
        """The known 24/4279009 race right after FINISHED: the publish is refused, nothing stored."""
        return self.inject_graph_error(
            "POST",
            r"/threads_publish$",
            MEDIA_NOT_FOUND_CODE,
            MEDIA_NOT_FOUND_SUBCODE,
            status=400,
            message="Requested resource does not exist",
            user_title="Media Not Found",
            user_msg="The requested resource does not exist.",
            times=times,
        )

    def inject(self, method: str, path_pattern: str, **kwargs: Any) -> Fault:
        """Base `inject`, but a fault with a status and no body answers a Graph-shaped error."""
        if kwargs.get("status") is not None and kwargs.get("body") is None:
            kwargs["body"] = _default_fault_body(kwargs["status"])
        return super().inject(method, path_pattern, **kwargs)

    # -- accessors ------------------------------------------------------------------------------
    @property
    def posts(self) -> list[dict[str, Any]]:
        """Published top-level posts and replies (not carousel children), in publish order."""
        with self.lock:
            return [
                self._media[mid].snapshot()
                for mid in self._post_order
                if not self._media[mid].deleted
            ]

    @property
    def containers(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            for container in self._containers.values():
                self._advance_container(container, poll=False)
            return {cid: c.snapshot() for cid, c in self._containers.items()}

    def container(self, container_id: str) -> dict[str, Any]:
        return self.containers[container_id]

    def media(self, media_id: str) -> dict[str, Any]:
        with self.lock:
            return self._media[media_id].snapshot()

    # -- routes ---------------------------------------------------------------------------------
    def register_routes(self) -> None:
        r = self._route
        r("GET", V + r"/oauth/authorize/?", self._authorize_page)
        r("POST", V + r"/oauth/access_token", self._code_exchange)
        r("GET", V + r"/access_token", self._long_lived_exchange)
        r("GET", V + r"/refresh_access_token", self._refresh)
        r("GET", V + r"/(?P<uid>[^/]+)/threads_publishing_limit", self._publishing_limit)
        r("POST", V + r"/(?P<uid>[^/]+)/threads_publish", self._publish)
        r("POST", V + r"/(?P<uid>[^/]+)/threads", self._create_container)
        r("GET", V + r"/(?P<uid>[^/]+)/threads", self._list_threads)
        r("GET", V + r"/(?P<uid>[^/]+)/replies", self._list_replies)
        r("GET", V + "/" + NODE, self._get_node)
        r("DELETE", V + "/" + NODE, self._delete_node)

    def _route(self, method: str, pattern: str, handler: Callable[[Request], Response]) -> None:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except GraphError as error:
                return error.response()

        self.route(method, pattern, wrapped)

    # -- OAuth ----------------------------------------------------------------------------------
    def _check_authorize(self, client_id: str | None, redirect_uri: str | None) -> None:
        if client_id != self.client_id:
            raise GraphError(400, 101, "Error validating application. Invalid application ID.")
        if not redirect_uri:
            raise GraphError(400, 191, "Missing redirect_uri parameter.")
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            raise GraphError(
                400,
                191,
                "The redirect_uri is not whitelisted in the app's Threads settings.",
            )

    @staticmethod
    def _split_scopes(scope: str | None) -> tuple[str, ...]:
        return tuple(s for s in re.split(r"[,\s]+", scope or "") if s)

    def _authorize_page(self, req: Request) -> Response:
        client_id = req.arg("client_id")
        redirect_uri = req.arg("redirect_uri")
        try:
            if req.arg("response_type", "code") != "code":
                raise GraphError(400, 100, "response_type must be code")
            code = self.authorize(
                client_id or "",
                redirect_uri or "",
                req.arg("scope") or "threads_basic",
                req.arg("state"),
                req.arg("user_id"),
            )
        except GraphError as error:
            message = html.escape(error.body["error"]["message"])
            page = f"<!doctype html><title>Threads</title><h1>Error</h1><p>{message}</p>"
            return Response(400, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        params = {"code": code}
        if req.arg("state") is not None:
            params["state"] = req.arg("state") or ""
        sep = "&" if "?" in (redirect_uri or "") else "?"
        target = f"{redirect_uri}{sep}{urlencode(params)}#_"
        if self.auto_approve:
            return Response(302, b"", {"Location": target})
        user = self.users[self.codes[code].user_id]
        page = (
            "<!doctype html><title>Threads</title>"
            f"<p>Allow this app to access your Threads profile @{html.escape(user.username)}?</p>"
            f"<p>Scopes: {html.escape(req.arg('scope') or '')}</p>"
            f'<a id="allow" href="{html.escape(target)}">Allow</a>'
        )
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def _code_exchange(self, req: Request) -> Response:
        for name in ("client_id", "client_secret", "code", "grant_type", "redirect_uri"):
            if not req.arg(name):
                raise GraphError(400, 100, f"The parameter {name} is required")
        if req.arg("grant_type") != "authorization_code":
            raise GraphError(400, 100, "Unsupported grant_type")
        if req.arg("client_id") != self.client_id:
            raise GraphError(400, 101, "Error validating application. Invalid application ID.")
        if req.arg("client_secret") != self.client_secret:
            raise GraphError(400, 1, "Error validating client secret.")
        with self.lock:
            code = self.codes.get((req.arg("code") or "").split("#")[0])
            if code is None:
                raise GraphError(400, 100, "Invalid verification code format.")
            if code.used:
                raise GraphError(400, 100, "This authorization code has been used.", 36009)
            if self.now() - code.issued_at >= CODE_TTL:
                raise GraphError(400, 100, "This authorization code has expired.", 36007)
            if req.arg("redirect_uri") != code.redirect_uri:
                raise GraphError(
                    400,
                    100,
                    "Error validating verification code. Please make sure your redirect_uri "
                    "is identical to the one you used in the OAuth dialog request",
                    36008,
                )
            code.used = True
            token = self._issue(code.user_id, "short", None, code.scopes)
            user_id: Any = int(code.user_id) if code.user_id.isdigit() else code.user_id
            return Response(200, {"access_token": token, "user_id": user_id})

    def _long_lived_exchange(self, req: Request) -> Response:
        if req.arg("grant_type") != "th_exchange_token":
            raise GraphError(400, 100, "Unsupported grant_type: expected th_exchange_token")
        if req.arg("client_secret") != self.client_secret:
            raise GraphError(400, 1, "Error validating client secret.")
        with self.lock:
            token = self._authenticate(req, need_scope=None)
            if token.kind != "short":
                raise GraphError(
                    400, 100, "(#100) The access token is not a short-lived Threads token"
                )
            new = self._issue(token.user_id, "long", None, token.scopes)
            self.exchanges.append({"short": token.value, "long": new, "at": self.now()})
            return Response(
                200, {"access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED_TTL}
            )

    def _refresh(self, req: Request) -> Response:
        if req.arg("grant_type") != "th_refresh_token":
            raise GraphError(400, 100, "Unsupported grant_type: expected th_refresh_token")
        with self.lock:
            token = self._authenticate(req, need_scope=None)  # 190 if expired/revoked/unknown
            if token.kind != "long":
                raise GraphError(400, 100, "(#100) Only long-lived Threads tokens can be refreshed")
            age = self.now() - token.issued_at
            if age < REFRESH_MIN_AGE:
                raise GraphError(
                    400,
                    100,
                    "(#100) The access token can only be refreshed if it is at least 24 hours old",
                    user_title="Token too new",
                    user_msg="Long-lived tokens can be refreshed once they are at least 24 hours old.",
                )
            new = self._issue(token.user_id, "long", None, token.scopes)
            self.refreshes.append(
                {"old": token.value, "new": new, "user_id": token.user_id, "at": self.now()}
            )
            return Response(
                200, {"access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED_TTL}
            )

    def _issue(
        self,
        user_id: str,
        kind: str,
        issued_at: float | None,
        scopes: tuple[str, ...],
        expires_at: float | None = None,
    ) -> str:
        if user_id not in self.users:
            raise KeyError(f"unknown Threads user {user_id}")
        issued = self.now() if issued_at is None else issued_at
        ttl = LONG_LIVED_TTL if kind == "long" else SHORT_LIVED_TTL
        value = "THAA" + ("L" if kind == "long" else "S") + secrets.token_urlsafe(40)
        self.tokens[value] = Token(
            value=value,
            user_id=user_id,
            kind=kind,
            issued_at=issued,
            expires_at=issued + ttl if expires_at is None else expires_at,
            scopes=scopes,
        )
        return value

    def _token_value(self, req: Request) -> str | None:
        value = req.arg("access_token")
        if value:
            return value
        auth = req.header("authorization") or ""
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and credentials.strip():
            return credentials.strip()
        return None

    def _authenticate(self, req: Request, need_scope: str | None = "threads_basic") -> Token:
        value = self._token_value(req)
        www = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid token"'}
        if not value:
            if "/me" in req.path:
                raise GraphError(
                    400,
                    2500,
                    "An active access token must be used to query information about the current user.",
                )
            raise GraphError(400, 104, "An access token is required to request this resource.")
        token = self.tokens.get(value)
        if token is None:
            raise GraphError(
                400,
                TOKEN_ERROR_CODE,
                "Invalid OAuth access token - Cannot parse access token",
                headers=www,
            )
        if token.revoked_subcode is not None:
            messages = {
                458: "Error validating access token: The user has not authorized application "
                f"{self.client_id}.",
                460: "Error validating access token: The session has been invalidated because "
                "the user changed their password or Facebook has changed the session for "
                "security reasons.",
            }
            raise GraphError(
                400,
                TOKEN_ERROR_CODE,
                messages.get(token.revoked_subcode, "Error validating access token"),
                token.revoked_subcode,
                headers=www,
            )
        now = self.now()
        if now >= token.expires_at:
            raise GraphError(
                400,
                TOKEN_ERROR_CODE,
                f"Error validating access token: Session has expired on "
                f"{_human_time(token.expires_at)}. The current time is {_human_time(now)}.",
                TOKEN_EXPIRED_SUBCODE,
                headers=www,
            )
        if need_scope and need_scope not in token.scopes:
            raise GraphError(
                403,
                PERMISSION_CODE,
                f"(#10) Application does not have permission for this action ({need_scope})",
            )
        return token

    def _resolve_user(self, token: Token, uid: str) -> User:
        if uid in ("me", token.user_id):
            return self.users[token.user_id]
        raise self._missing_object(uid)

    @staticmethod
    def _missing_object(node: str) -> GraphError:
        return GraphError(
            400,
            INVALID_PARAMETER_CODE,
            f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation.",
            OBJECT_MISSING_SUBCODE,
            type="GraphMethodException",
        )

    # -- containers -----------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids:013d}"

    @staticmethod
    def _param_error(
        message: str, user_msg: str | None = None, subcode: int | None = None
    ) -> GraphError:
        return GraphError(
            400,
            INVALID_PARAMETER_CODE,
            message,
            subcode,
            type="THApiException",
            user_title="Invalid parameter",
            user_msg=user_msg or message,
        )

    def _create_container(self, req: Request) -> Response:
        with self.lock:
            token = self._authenticate(req, need_scope="threads_basic")
            user = self._resolve_user(token, req.params["uid"])
            if "threads_content_publish" not in token.scopes:
                raise GraphError(
                    403,
                    PERMISSION_CODE,
                    "(#10) Application does not have permission for this action "
                    "(threads_content_publish)",
                )
            container = self._validated_container(req, user)
            if container.forced_error is None and self._forced_container_errors:
                container.forced_error = self._forced_container_errors.pop(0)
            self._containers[container.id] = container
            url = container.image_url or container.video_url
            if container.media_type in ("IMAGE", "VIDEO") and url and self.fetch_media:
                threading.Thread(target=self._fetch, args=(container, url), daemon=True).start()
            else:
                container.fetch_done.set()
            if _truthy(req.arg("auto_publish_text")):
                if container.media_type != "TEXT":
                    del self._containers[container.id]
                    raise self._param_error("auto_publish_text is only supported for TEXT posts")
                self._advance_container(container, poll=False)
                media = self._do_publish(container)
                return Response(200, {"id": media.id})
            return Response(200, {"id": container.id})

    def _validated_container(self, req: Request, user: User) -> Container:
        media_type = (req.arg("media_type") or "").upper()
        if media_type not in MEDIA_TYPES:
            raise self._param_error(
                "Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}"
            )
        text = req.arg("text")
        image_url = req.arg("image_url") or None
        video_url = req.arg("video_url") or None
        is_item = _truthy(req.arg("is_carousel_item"))
        link_attachment = req.arg("link_attachment") or None
        reply_to_id = req.arg("reply_to_id") or None
        reply_control = req.arg("reply_control") or None
        topic_tag = req.arg("topic_tag") or None
        alt_text = req.arg("alt_text") or None
        quote_post_id = req.arg("quote_post_id") or None
        children_raw = req.arg("children") or ""
        if children_raw.strip().startswith("["):
            children = [str(c) for c in json.loads(children_raw)]
        else:
            children = [c.strip() for c in children_raw.split(",") if c.strip()]

        if media_type == "TEXT" and not (text or "").strip():
            raise self._param_error("Param text is required for TEXT posts")
        if media_type == "IMAGE" and not image_url:
            raise self._param_error("Param image_url is required for IMAGE posts")
        if media_type == "VIDEO" and not video_url:
            raise self._param_error("Param video_url is required for VIDEO posts")
        if is_item and media_type not in ("IMAGE", "VIDEO"):
            raise self._param_error("Carousel items must be IMAGE or VIDEO")
        for name, value in (("image_url", image_url), ("video_url", video_url)):
            if value and not re.match(r"(?i)^https?://", value):
                raise self._param_error(f"Param {name} must be a valid URL")
        if text is not None and threads_text_length(text) > 500:
            raise self._param_error(
                "Param text must be at most 500 characters long.",
                "text must be at most 500 characters",
            )
        if link_attachment and media_type != "TEXT":
            raise self._param_error("link_attachment is only supported for TEXT posts")
        if count_links(text, link_attachment) > 5:
            raise GraphError(
                400,
                INVALID_PARAMETER_CODE,
                LINK_LIMIT_MESSAGE,
                type="THApiException",
                user_title="Too many links",
                user_msg="A post can contain at most 5 links.",
            )
        if reply_control and reply_control not in REPLY_CONTROLS:
            raise self._param_error(
                "Param reply_control must be one of {" + ", ".join(REPLY_CONTROLS) + "}"
            )
        if topic_tag is not None and (
            not 1 <= len(topic_tag) <= 50 or "." in topic_tag or "&" in topic_tag
        ):
            raise self._param_error(
                "Param topic_tag must be 1-50 characters and must not contain '.' or '&'"
            )
        if alt_text and len(alt_text) > 1000:
            raise self._param_error("Param alt_text must be at most 1000 characters long.")
        if reply_to_id is not None:
            parent = self._media.get(reply_to_id)
            if parent is None or parent.deleted or parent.is_carousel_child:
                raise self._param_error(
                    f"Param reply_to_id ({reply_to_id}) is not a valid Threads media id",
                    "The post you are replying to does not exist.",
                )
        if quote_post_id is not None:
            quoted = self._media.get(quote_post_id)
            if quoted is None or quoted.deleted:
                raise self._param_error(f"Param quote_post_id ({quote_post_id}) is not valid")
        if media_type == "CAROUSEL":
            if not 2 <= len(children) <= 20:
                raise self._param_error(
                    "A carousel must have between 2 and 20 children",
                    "Carousels need at least 2 and at most 20 items.",
                )
            if len(set(children)) != len(children):
                raise self._param_error("Param children contains duplicate ids")
            for child_id in children:
                child = self._containers.get(child_id)
                if child is None or child.user_id != user.id or not child.is_carousel_item:
                    raise self._param_error(
                        f"Param children contains an invalid carousel item id ({child_id})"
                    )
                self._advance_container(child, poll=False)
                if child.status != "FINISHED":
                    raise self._param_error(
                        f"Carousel item {child_id} is not ready to be used (status {child.status})",
                        "Wait until every carousel item is FINISHED.",
                    )
        elif children:
            raise self._param_error("Param children is only supported for CAROUSEL posts")

        return Container(
            id=self._new_id("1792"),
            user_id=user.id,
            media_type=media_type,
            created_at=self.now(),
            text=text,
            image_url=image_url,
            video_url=video_url,
            is_carousel_item=is_item,
            children=children,
            reply_to_id=reply_to_id,
            reply_control=reply_control,
            topic_tag=topic_tag,
            link_attachment=link_attachment,
            alt_text=alt_text,
            quote_post_id=quote_post_id,
        )

    def _fetch(self, container: Container, url: str) -> None:
        record: dict[str, Any] = {
            "url": url,
            "container_id": container.id,
            "status": None,
            "bytes": None,
            "content_type": None,
            "error": None,
        }
        error: str | None = None
        try:
            reply = requests.get(url, timeout=self.fetch_timeout)
            record.update(
                status=reply.status_code,
                bytes=len(reply.content),
                content_type=reply.headers.get("Content-Type"),
            )
            if not 200 <= reply.status_code < 300:
                error = f"HTTP {reply.status_code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        record["error"] = error
        with self.lock:
            self.fetched_urls.append(record)
            if error is not None:
                container.fetch_error = (
                    VIDEO_DOWNLOAD_ERROR
                    if container.media_type == "VIDEO"
                    else IMAGE_DOWNLOAD_ERROR
                )
        container.fetch_done.set()

    def _wait_for_fetch(self, container: Container | None) -> None:
        """Outside the lock: let a pending media download finish so the status is deterministic."""
        if container is not None and not container.fetch_done.is_set():
            container.fetch_done.wait(self.fetch_timeout + 2)

    def _processing(self, container: Container) -> tuple[int, float]:
        if container.media_type == "IMAGE":
            return self.image_processing_polls, self.image_processing_seconds
        if container.media_type == "VIDEO":
            return self.video_processing_polls, self.video_processing_seconds
        if container.media_type == "CAROUSEL":
            return self.carousel_processing_polls, 0.0
        return self.text_processing_polls, 0.0

    def _advance_container(self, container: Container, poll: bool) -> None:
        """Apply the clock and the processing rules. `poll=True` counts one status poll."""
        if container.status in ("PUBLISHED", "ERROR", "EXPIRED"):
            return
        now = self.now()
        if now - container.created_at >= self.container_ttl:
            container.status = "EXPIRED"
            return
        if container.status != "IN_PROGRESS" or not container.fetch_done.is_set():
            return
        if container.fetch_error is not None:
            container.status, container.error_message = "ERROR", container.fetch_error
            return
        polls, seconds = self._processing(container)
        if container.polls >= polls and now - container.created_at >= seconds:
            if container.forced_error is not None:
                container.status, container.error_message = "ERROR", container.forced_error
            else:
                container.status = "FINISHED"
        elif poll:
            container.polls += 1

    # -- publish --------------------------------------------------------------------------------
    def _publish(self, req: Request) -> Response:
        with self.lock:
            container = self._containers.get(req.arg("creation_id") or "")
        self._wait_for_fetch(container)
        with self.lock:
            token = self._authenticate(req)
            user = self._resolve_user(token, req.params["uid"])
            if "threads_content_publish" not in token.scopes:
                raise GraphError(
                    403,
                    PERMISSION_CODE,
                    "(#10) Application does not have permission for this action "
                    "(threads_content_publish)",
                )
            creation_id = req.arg("creation_id")
            if not creation_id:
                raise GraphError(
                    400, INVALID_PARAMETER_CODE, "The parameter creation_id is required"
                )
            container = self._containers.get(creation_id)
            if container is None or container.user_id != user.id:
                raise self._media_not_found("The media container does not exist.")
            self._advance_container(container, poll=False)
            if container.is_carousel_item:
                raise self._param_error("Carousel items cannot be published on their own")
            if container.status != "FINISHED":
                raise self._media_not_found(
                    {
                        "IN_PROGRESS": "The media is still being processed.",
                        "ERROR": f"The media could not be processed ({container.error_message}).",
                        "EXPIRED": "The media container has expired.",
                        "PUBLISHED": "The media container has already been published.",
                    }[container.status]
                )
            media = self._do_publish(container)
            return Response(200, {"id": media.id})

    @staticmethod
    def _media_not_found(user_msg: str) -> GraphError:
        return GraphError(
            400,
            MEDIA_NOT_FOUND_CODE,
            "Requested resource does not exist",
            MEDIA_NOT_FOUND_SUBCODE,
            user_title="Media Not Found",
            user_msg=user_msg,
        )

    def _usage(self, user_id: str, replies: bool) -> int:
        since = self.now() - self.quota_duration
        log = self._publish_log.get(user_id, [])
        if replies:
            return sum(1 for at, is_reply in log if is_reply and at > since)
        return sum(
            1
            for at, is_reply in log
            if at > since and (self.replies_count_toward_quota or not is_reply)
        )

    def _do_publish(self, container: Container) -> Media:
        is_reply = container.reply_to_id is not None
        over_posts = (not is_reply or self.replies_count_toward_quota) and self._usage(
            container.user_id, replies=False
        ) >= self.quota_total
        over_replies = (
            is_reply and self._usage(container.user_id, replies=True) >= self.reply_quota_total
        )
        if over_posts or over_replies:
            raise GraphError(
                400,
                QUOTA_ERROR_CODE,
                "Application request limit reached",
                QUOTA_ERROR_SUBCODE,
                user_title="Publishing limit reached",
                user_msg="You have reached the maximum number of posts that can be published "
                "in 24 hours.",
            )
        now = self.now()
        media = self._new_media(container, now)
        for child_cid in container.children:
            child_container = self._containers[child_cid]
            child = self._new_media(child_container, now, is_carousel_child=True)
            child_container.status, child_container.media_id = "PUBLISHED", child.id
            media.children.append(child.id)
            media.child_containers.append(child_cid)
        if container.reply_to_id:
            parent = self._media[container.reply_to_id]
            media.root_id = parent.root_id or parent.id
        container.status, container.media_id = "PUBLISHED", media.id
        self._post_order.append(media.id)
        self._publish_log.setdefault(container.user_id, []).append((now, is_reply))
        return media

    def _new_media(
        self, container: Container, now: float, is_carousel_child: bool = False
    ) -> Media:
        shortcode = "D" + base64.urlsafe_b64encode(secrets.token_bytes(8)).decode().rstrip("=")[:10]
        username = self.users[container.user_id].username
        media = Media(
            id=self._new_id("1803"),
            user_id=container.user_id,
            container_id=container.id,
            media_type=container.media_type,
            published_at=now,
            shortcode=shortcode,
            permalink=f"{self.permalink_base}/@{username}/post/{shortcode}",
            text=None if is_carousel_child else container.text,
            media_url=container.image_url or container.video_url,
            alt_text=container.alt_text,
            link_attachment=container.link_attachment,
            reply_to_id=container.reply_to_id,
            reply_control=container.reply_control,
            topic_tag=container.topic_tag,
            quote_post_id=container.quote_post_id,
            is_carousel_child=is_carousel_child,
        )
        self._media[media.id] = media
        return media

    # -- read-back ------------------------------------------------------------------------------
    def _get_node(self, req: Request) -> Response:
        node = req.params["node"]
        with self.lock:
            container = self._containers.get(node)
        self._wait_for_fetch(container)
        with self.lock:
            token = self._authenticate(req)
            fields = _parse_fields(req.arg("fields"))
            if node == "me" or node in self.users:
                user = self._resolve_user(token, node)
                return Response(200, self._render_user(user, fields))
            if container is not None:
                if container.user_id != token.user_id:
                    raise self._missing_object(node)
                self._advance_container(container, poll=True)
                return Response(200, self._render_container(container, fields))
            media = self._media.get(node)
            if media is None or media.deleted:
                raise self._missing_object(node)
            return Response(200, self._render_media(media, fields, token))

    def _delete_node(self, req: Request) -> Response:
        node = req.params["node"]
        with self.lock:
            token = self._authenticate(req)
            media = self._media.get(node)
            if media is None or media.deleted or media.user_id != token.user_id:
                raise self._missing_object(node)
            media.deleted = True
            return Response(200, {"success": True, "deleted_id": node})

    @staticmethod
    def _unknown_field(name: str, node_type: str) -> GraphError:
        return GraphError(
            400,
            INVALID_PARAMETER_CODE,
            f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})",
        )

    def _render_user(self, user: User, fields: list[tuple[str, str | None]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, _ in fields or [("id", None)]:
            if name not in USER_FIELDS:
                raise self._unknown_field(name, "ThreadsUser")
            value = getattr(user, name)
            if value is not None:
                out[name] = value
        out.setdefault("id", user.id)
        return out

    def _render_container(
        self, container: Container, fields: list[tuple[str, str | None]]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, _ in fields or [("id", None)]:
            if name not in CONTAINER_FIELDS:
                raise self._unknown_field(name, "ThreadsMediaContainer")
            value = getattr(container, name)
            if value is not None:
                out[name] = value
        out.setdefault("id", container.id)
        return out

    def _render_media(
        self, media: Media, fields: list[tuple[str, str | None]], token: Token
    ) -> dict[str, Any]:
        user = self.users[media.user_id]
        out: dict[str, Any] = {}
        for name, sub in fields or [("id", None)]:
            if name not in MEDIA_FIELDS:
                raise self._unknown_field(name, "ThreadsMedia")
            value: Any = None
            if name == "id":
                value = media.id
            elif name == "media_product_type":
                value = "THREADS"
            elif name == "media_type":
                value = READ_BACK_MEDIA_TYPE[media.media_type]
            elif name in ("media_url", "permalink", "shortcode", "text", "alt_text", "topic_tag"):
                value = getattr(media, name)
            elif name == "thumbnail_url" and media.media_type == "VIDEO":
                value = f"https://scontent.cdninstagram.com/v/thumb/{media.id}.jpg"
            elif name == "owner":
                value = {"id": media.user_id}
            elif name == "username":
                value = user.username
            elif name == "timestamp":
                value = _iso(media.published_at)
            elif name == "children" and media.children:
                sub_fields = _parse_fields(sub) if sub else []
                value = {
                    "data": [
                        self._render_media(self._media[c], sub_fields, token)
                        for c in media.children
                    ]
                }
            elif name == "is_quote_post":
                value = media.quote_post_id is not None
            elif name == "quoted_post" and media.quote_post_id:
                value = {"id": media.quote_post_id}
            elif name == "link_attachment_url":
                value = media.link_attachment
            elif name == "has_replies":
                value = any(
                    m.reply_to_id == media.id and not m.deleted for m in self._media.values()
                )
            elif name == "is_reply":
                value = media.reply_to_id is not None
            elif name == "is_reply_owned_by_me":
                value = media.reply_to_id is not None and media.user_id == token.user_id
            elif name == "replied_to" and media.reply_to_id:
                value = {"id": media.reply_to_id}
            elif name == "root_post" and media.reply_to_id:
                value = {"id": media.root_id}
            elif name == "reply_audience":
                value = (media.reply_control or "everyone").upper()
            elif name == "hide_status" and media.reply_to_id:
                value = "NOT_HUSHED"
            elif name == "is_verified":
                value = user.is_verified
            elif name == "profile_picture_url":
                value = user.threads_profile_picture_url
            elif name == "is_spoiler_media":
                value = False
            if value is not None:
                out[name] = value
        out.setdefault("id", media.id)
        return out

    def _list(self, req: Request, replies: bool) -> Response:
        with self.lock:
            token = self._authenticate(req)
            user = self._resolve_user(token, req.params["uid"])
            fields = _parse_fields(req.arg("fields"))
            items = [
                self._media[mid]
                for mid in reversed(self._post_order)
                if self._media[mid].user_id == user.id and not self._media[mid].deleted
            ]
            if replies:
                items = [m for m in items if m.reply_to_id is not None]
            elif not self.list_replies_in_threads:
                items = [m for m in items if m.reply_to_id is None]
            since, until = req.arg("since"), req.arg("until")
            if since:
                items = [m for m in items if m.published_at >= float(since)]
            if until:
                items = [m for m in items if m.published_at <= float(until)]
            try:
                limit = max(1, min(100, int(req.arg("limit") or 25)))
            except ValueError as exc:
                raise GraphError(400, 100, "(#100) Param limit must be an integer") from exc
            start = 0
            after, before = req.arg("after"), req.arg("before")
            ids = [m.id for m in items]
            if after:
                cursor = self._decode_cursor(after)
                start = ids.index(cursor) + 1 if cursor in ids else len(ids)
            elif before:
                cursor = self._decode_cursor(before)
                end = ids.index(cursor) if cursor in ids else 0
                start = max(0, end - limit)
            page = items[start : start + limit]
            body: dict[str, Any] = {"data": [self._render_media(m, fields, token) for m in page]}
            if page:
                body["paging"] = {
                    "cursors": {
                        "before": self._encode_cursor(page[0].id),
                        "after": self._encode_cursor(page[-1].id),
                    }
                }
                if start + limit < len(items) and self._server is not None:
                    query = {k: v[-1] for k, v in req.query.items() if k not in ("after", "before")}
                    query["after"] = self._encode_cursor(page[-1].id)
                    body["paging"]["next"] = f"{self.url}{req.path}?{urlencode(query)}"
            return Response(200, body)

    def _list_threads(self, req: Request) -> Response:
        return self._list(req, replies=False)

    def _list_replies(self, req: Request) -> Response:
        return self._list(req, replies=True)

    @staticmethod
    def _encode_cursor(media_id: str) -> str:
        return base64.urlsafe_b64encode(media_id.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str) -> str:
        try:
            return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return ""

    def _publishing_limit(self, req: Request) -> Response:
        with self.lock:
            token = self._authenticate(req)
            user = self._resolve_user(token, req.params["uid"])
            fields = [name for name, _ in _parse_fields(req.arg("fields"))] or [
                "quota_usage",
                "config",
            ]
            entry: dict[str, Any] = {}
            for name in fields:
                if name not in LIMIT_FIELDS:
                    raise self._unknown_field(name, "ThreadsPublishingLimit")
                if name == "quota_usage":
                    entry[name] = self._usage(user.id, replies=False)
                elif name == "config":
                    entry[name] = {
                        "quota_total": self.quota_total,
                        "quota_duration": self.quota_duration,
                    }
                elif name == "reply_quota_usage":
                    entry[name] = self._usage(user.id, replies=True)
                elif name == "reply_config":
                    entry[name] = {
                        "quota_total": self.reply_quota_total,
                        "quota_duration": self.quota_duration,
                    }
            return Response(200, {"data": [entry]})
