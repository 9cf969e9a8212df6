"""Mapping atproto SDK exceptions onto the engine's error taxonomy.

XRPC errors: https://atproto.com/specs/xrpc#error-responses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pydantic
from atproto_client import exceptions
from atproto_core.exceptions import AtProtocolError

from ..base import ErrorCategory, InvalidServerURL, NetworkError

# An expired or malformed token is HTTP 400 with these names, not 401
# (https://atproto.com/specs/xrpc).
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
# What an SDK call can raise: its own errors, raw httpx transport errors (the SDK lets
# e.g. RemoteProtocolError escape unwrapped), and pydantic errors from building models.
LIBRARY_ERRORS = (AtProtocolError, httpx.HTTPError, pydantic.ValidationError, InvalidServerURL)


def error_name(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return str(getattr(content, "error", "") or "")


def _error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return str(getattr(content, "message", "") or error_name(exc) or exc)


def classify(exc: BaseException, *, write: bool = False) -> NetworkError:
    """Map an SDK exception onto the engine's taxonomy
    (https://atproto.com/specs/xrpc#error-responses,
    https://docs.bsky.app/docs/advanced-guides/rate-limits).

    `write` marks a request that may have created the post before failing (unknown outcome).
    """
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    name, excerpt = error_name(exc), str(exc)
    if isinstance(exc, InvalidServerURL):  # refused before sending: nothing was created
        return NetworkError(ErrorCategory.REJECTED, "unsafe_server", str(exc))
    if isinstance(exc, exceptions.RateLimitExceededError):
        return _rate_limited(exc)
    if isinstance(exc, exceptions.InvokeTimeoutError):
        return NetworkError(
            ErrorCategory.TRANSIENT,
            "timeout",
            "Bluesky did not answer in time.",
            excerpt=excerpt,
            outcome_unknown=write,
        )
    if isinstance(exc, exceptions.NetworkError):
        if status == 413:  # the SDK calls it a NetworkError: it looks transient, is not
            return NetworkError(
                ErrorCategory.REJECTED,
                "too_large",
                "The file is larger than this Bluesky server accepts; use a smaller one.",
                http_status=413,
                excerpt=excerpt,
            )
        return NetworkError(
            ErrorCategory.TRANSIENT,
            "network_error",
            "Could not reach the Bluesky server (connection error).",
            http_status=status,
            excerpt=excerpt or repr(exc.__cause__),
            outcome_unknown=write,
        )
    if isinstance(exc, exceptions.UnauthorizedError):
        return _classify_unauthorized(exc, status, name, excerpt)
    if isinstance(exc, exceptions.BadRequestError):
        return _classify_bad_request(exc, name, excerpt)
    if isinstance(exc, exceptions.RequestException):
        return _classify_status(exc, status, excerpt, write)
    if isinstance(exc, exceptions.LoginRequiredError):
        return NetworkError(
            ErrorCategory.AUTH,
            "login_required",
            "Herald holds no Bluesky session for this channel.",
        )
    if isinstance(exc, httpx.HTTPError):  # e.g. RemoteProtocolError escapes the SDK unwrapped
        return NetworkError(
            ErrorCategory.TRANSIENT,
            "network_error",
            "The connection to the Bluesky server broke.",
            excerpt=repr(exc),
            outcome_unknown=write,
        )
    if isinstance(exc, pydantic.ValidationError):
        return NetworkError(
            ErrorCategory.REJECTED, "invalid_post", f"The post is not valid for Bluesky: {exc}"
        )
    return NetworkError(ErrorCategory.REJECTED, "bluesky_error", f"Bluesky error: {exc}")


def _rate_limited(exc: exceptions.RateLimitExceededError) -> NetworkError:
    # Retry-After only comes from newer PDSes; RateLimit-Reset (epoch seconds) always does
    # (https://docs.bsky.app/docs/advanced-guides/rate-limits).
    wait = exc.retry_after
    if wait is None and exc.reset_at is not None:
        wait = (exc.reset_at - datetime.now(UTC)).total_seconds()
    return NetworkError(
        ErrorCategory.RATE_LIMITED,
        "rate_limited",
        "Bluesky's rate limit for this account was reached.",
        retry_after=max(1.0, wait if wait is not None else 60.0),
        http_status=429,
        excerpt=f"{exc} policy={exc.policy}",
    )


def _classify_unauthorized(
    exc: BaseException, status: int | None, name: str, excerpt: str
) -> NetworkError:
    if name == "AccountTakedown":
        return NetworkError(
            ErrorCategory.REJECTED,
            "account_takedown",
            "Bluesky has taken this account down; it cannot publish.",
            http_status=status,
            excerpt=excerpt,
        )
    if name == "AuthFactorTokenRequired":
        return NetworkError(
            ErrorCategory.AUTH,
            "app_password_required",
            "Bluesky asks for an email sign-in code: use an app password (Settings → Privacy "
            "and security → App passwords) instead of the account password.",
            http_status=status,
            excerpt=excerpt,
        )
    return NetworkError(
        ErrorCategory.AUTH,
        "auth_revoked",
        f"Bluesky refused Herald's credentials ({_error_message(exc)}).",
        http_status=status,
        excerpt=excerpt,
    )


def _classify_bad_request(exc: BaseException, name: str, excerpt: str) -> NetworkError:
    if name in TOKEN_ERRORS:
        return NetworkError(
            ErrorCategory.AUTH,
            "session_expired",
            f"Bluesky no longer accepts Herald's session ({_error_message(exc)}).",
            http_status=400,
            excerpt=excerpt,
        )
    if name == "BlobNotFound":  # an unreferenced blob was garbage-collected: re-upload
        return NetworkError(
            ErrorCategory.TRANSIENT,
            "blob_not_found",
            "Bluesky lost an uploaded file before the post referenced it.",
            http_status=400,
            excerpt=excerpt,
        )
    if name == "RecordNotFound":
        return NetworkError(
            ErrorCategory.REJECTED,
            "record_not_found",
            "The record is not there.",
            http_status=400,
            excerpt=excerpt,
        )
    return NetworkError(
        ErrorCategory.REJECTED,
        _snake(name) if name else "rejected",
        f"Bluesky rejected the post: {_error_message(exc)}",
        http_status=400,
        excerpt=excerpt,
    )


def _classify_status(
    exc: BaseException, status: int | None, excerpt: str, write: bool
) -> NetworkError:
    if status is None or status >= 500 or status == 408:
        return NetworkError(
            ErrorCategory.TRANSIENT,
            f"server_error_{status}" if status else "server_error",
            f"The Bluesky server had a problem (HTTP {status}).",
            http_status=status,
            excerpt=excerpt,
            outcome_unknown=write,
        )
    if status in (404, 501):
        return NetworkError(
            ErrorCategory.REJECTED,
            "not_found",
            "The Bluesky server does not offer what Herald asked for (HTTP "
            f"{status}: {_error_message(exc)}). Is this an atproto PDS?",
            http_status=status,
            excerpt=excerpt,
        )
    return NetworkError(
        ErrorCategory.REJECTED,
        f"http_{status}",
        f"Bluesky refused the request (HTTP {status}: {_error_message(exc)}).",
        http_status=status,
        excerpt=excerpt,
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()[:64]
