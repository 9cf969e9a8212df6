"""The Threads Graph API over `requests`: one session per token, Graph errors classified.

Errors: https://developers.facebook.com/docs/graph-api/guides/error-handling and
https://developers.facebook.com/docs/threads/troubleshooting.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

from ... import outbound
from ..base import ErrorCategory, NetworkError

TOKEN_CODE = 190
TOKEN_EXPIRED_SUBCODE = 463
INVALID_PARAMETER_CODE = 100
MEDIA_NOT_FOUND = (24, 4279009)
# Instagram's code for the publishing limit; Threads does not document its own, so the budget is
# checked with threads_publishing_limit before publishing anyway.
QUOTA_EXCEEDED = (9, 2207042)
THROTTLE_CODES = {4, 17, 32, 341, 613}
POLICY_BLOCK_CODE = 368
RESTRICTED_SUBCODES = {2207051, 4279013}
LINK_LIMIT_MESSAGE = "THREADS_API__LINK_LIMIT_EXCEEDED"
MAX_LINKS = 5
LONG_LIVED_LIFETIME = timedelta(days=60)

_SECRET_RE = re.compile(r"((?:access_token|client_secret|code)=)[^&\s'\"]+")


class GraphError(NetworkError):
    """A NetworkError from a Graph error body, keeping Meta's code, subcode and message."""

    def __init__(
        self, *args: Any, graph_code: int | None, graph_subcode: int | None, said: str, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.graph_code = graph_code
        self.graph_subcode = graph_subcode
        self.said = said


class Graph:
    """A `requests` session for one access token against one Graph host."""

    def __init__(self, base_url: str, access_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        # The Graph host is a setting, not a user's choice; the guarded session still gives it
        # Herald's one User-Agent, timeouts and size cap (and checks the paging links it sends).
        self.session = outbound.session()

    def url(self, path: str, *, versioned: bool = True) -> str:
        if path.startswith(("http://", "https://")):
            return path  # a paging "next" link
        version = f"/{settings.THREADS_API_VERSION}" if versioned else ""
        return f"{self.base_url}{version}/{path.lstrip('/')}"

    def get(self, path: str, *, versioned: bool = True, **params: Any) -> dict[str, Any]:
        # The documented way to pass the token is a parameter
        # (https://developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions);
        # error texts are scrubbed.
        if self.access_token and "access_token" not in params and "?" not in path:
            params["access_token"] = self.access_token
        return self._request("GET", self.url(path, versioned=versioned), params=params)

    def post(
        self, path: str, *, versioned: bool = True, write: bool = False, **data: Any
    ) -> dict[str, Any]:
        """POST a form. `write` marks a request whose loss leaves the outcome unknown."""
        if self.access_token and "access_token" not in data:
            data["access_token"] = self.access_token
        form = {key: value for key, value in data.items() if value not in (None, "")}
        return self._request("POST", self.url(path, versioned=versioned), data=form, write=write)

    def _request(self, method: str, url: str, *, write: bool = False, **kwargs: Any) -> Any:
        try:
            response = self.session.request(
                method, url, timeout=settings.HERALD_NETWORK_TIMEOUT, **kwargs
            )
        except outbound.UnsafeURL as exc:
            raise NetworkError(ErrorCategory.REJECTED, "unsafe_server", str(exc)) from exc
        except requests.RequestException as exc:
            raise NetworkError(
                ErrorCategory.TRANSIENT,
                "network_error",
                "Could not reach Threads (timeout or connection error).",
                excerpt=_scrub(f"{type(exc).__name__}: {exc}"),
                outcome_unknown=write,
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok and isinstance(body, dict) and "error" not in body:
            return body
        raise classify(response.status_code, body, response.text, write=write)


def _scrub(text: str) -> str:
    return _SECRET_RE.sub(r"\1[hidden]", text)


def classify(status: int, body: Any, text: str = "", *, write: bool = False) -> NetworkError:
    """Map a Graph error answer onto the engine's taxonomy.

    (https://developers.facebook.com/docs/graph-api/guides/error-handling,
    https://developers.facebook.com/docs/threads/troubleshooting.)

    `write` marks a request that may have published something before failing (unknown outcome).
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if status >= 500 or status == 429 or status < 400:  # a proxy's page, or garbled JSON
            return NetworkError(
                ErrorCategory.TRANSIENT,
                f"server_error_{status}",
                f"Threads had an internal problem (HTTP {status}, unexpected answer).",
                http_status=status,
                excerpt=_scrub(text[:500]),
                outcome_unknown=write,
            )
        return NetworkError(
            ErrorCategory.REJECTED,
            f"http_{status}",
            f"Threads answered HTTP {status} without an explanation.",
            http_status=status,
            excerpt=_scrub(text[:500]),
        )
    code, subcode = error.get("code"), error.get("error_subcode")
    said = str(error.get("error_user_msg") or error.get("message") or "no reason given")
    category, stable, message, retry_after = _graph_rule(
        code, subcode, str(error.get("message") or ""), said, status
    )
    if category is None:
        category = ErrorCategory.TRANSIENT if error.get("is_transient") else ErrorCategory.REJECTED
        stable = "server_error" if category == ErrorCategory.TRANSIENT else "rejected"
        message = (
            f"Threads had a temporary problem: {said}"
            if category == ErrorCategory.TRANSIENT
            else f"Threads rejected the post: {said}"
        )
    return GraphError(
        category,
        stable,
        message,
        retry_after=retry_after,
        http_status=status,
        excerpt=_scrub(json.dumps(error)),
        outcome_unknown=write and category == ErrorCategory.TRANSIENT,
        graph_code=code,
        graph_subcode=subcode,
        said=said,
    )


def _graph_rule(
    code: Any, subcode: Any, raw: str, said: str, status: int
) -> tuple[ErrorCategory | None, str, str, float | None]:
    """(category, stable code, user message, retry_after) for one Graph error; None: fallback."""
    if code == TOKEN_CODE:
        kind = "token_expired" if subcode == TOKEN_EXPIRED_SUBCODE else "token_revoked"
        return (
            ErrorCategory.AUTH,
            kind,
            f"Threads no longer accepts Herald's access token (Meta says: {said}).",
            None,
        )
    if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
        return (
            ErrorCategory.AUTH,
            "permission_missing",
            f"Threads says Herald lacks a permission for this account ({said}); reconnect and "
            "grant every permission Herald asks for.",
            None,
        )
    if (code, subcode) == MEDIA_NOT_FOUND:
        return ErrorCategory.TRANSIENT, "media_not_found", f"Threads: {said}", None
    if (code, subcode) == QUOTA_EXCEEDED:
        return (
            ErrorCategory.RATE_LIMITED,
            "publishing_limit",
            f"This Threads profile reached Threads' limit of posts per 24 hours ({said}).",
            3600.0,
        )
    if code in THROTTLE_CODES:
        return (
            ErrorCategory.RATE_LIMITED,
            "throttled",
            f"Threads is limiting how often Herald may call it ({said}).",
            settings.THREADS_THROTTLE_RETRY,
        )
    if code == POLICY_BLOCK_CODE:
        return (
            ErrorCategory.RATE_LIMITED,
            "temporarily_blocked",
            f"Threads temporarily blocked this profile from posting ({said}).",
            6 * 3600.0,
        )
    if subcode in RESTRICTED_SUBCODES:
        return (
            ErrorCategory.REJECTED,
            "account_restricted",
            f"Threads restricted this profile: {said}",
            None,
        )
    if code in (1, 2) or status >= 500:
        return (
            ErrorCategory.TRANSIENT,
            "server_error",
            f"Threads had a temporary problem: {said}",
            None,
        )
    if LINK_LIMIT_MESSAGE in raw:
        return (
            ErrorCategory.REJECTED,
            "too_many_links",
            f"Threads allows at most {MAX_LINKS} links in a post ({said}).",
            None,
        )
    if code == INVALID_PARAMETER_CODE:
        return (
            ErrorCategory.REJECTED,
            "invalid_parameter",
            f"Threads rejected the post: {said}",
            None,
        )
    return None, "", "", None


# -- token endpoints (unversioned:
# https://developers.facebook.com/docs/threads/get-started/long-lived-tokens)
# ---------------------------------------------------------------
def refresh_token(base_url: str, token: str) -> tuple[str, datetime]:
    """A new long-lived token for `token`, and its expiry. Raises NetworkError."""
    data = Graph(base_url).get(
        "refresh_access_token",
        versioned=False,
        grant_type="th_refresh_token",
        access_token=token,
    )
    return str(data["access_token"]), expiry(data)


def exchange_for_long_lived(base_url: str, short_token: str) -> tuple[str, datetime]:
    """The 60-day token for a short-lived one, and its expiry. Raises NetworkError."""
    data = Graph(base_url).get(
        "access_token",
        versioned=False,
        grant_type="th_exchange_token",
        client_secret=settings.THREADS_APP_SECRET,
        access_token=short_token,
    )
    return str(data["access_token"]), expiry(data)


def expiry(data: dict[str, Any]) -> datetime:
    seconds = data.get("expires_in")
    lifetime = timedelta(seconds=int(seconds)) if seconds else LONG_LIVED_LIFETIME
    return timezone.now() + lifetime
