"""One error shape for the whole API, with stable codes.

Every error answers `{"error": {"code": "...", "message": "...", "details": {...}}}`. Validation
errors put per-field messages under `details.fields` and per-channel messages (keyed by channel
id) under `details.channels`.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import set_rollback

# code -> meaning; the README and the schema list these.
CODES = {
    "validation_error": "The request body or query is invalid; see details.",
    "parse_error": "The body is not valid JSON (or multipart).",
    "not_authenticated": "No token: send Authorization: Bearer <token>.",
    "invalid_token": "The token is unknown or revoked.",
    "insufficient_scope": "The token is read-only; this needs a write token.",
    "forbidden": "Your role in the workspace does not allow this.",
    "not_found": "No such object in this workspace.",
    "method_not_allowed": "This path does not accept that method.",
    "not_acceptable": "The API only answers application/json.",
    "unsupported_media_type": "Send application/json (or multipart/form-data for uploads).",
    "request_too_large": "The request body is too large.",
    "conflict": "The object is not in a state that allows this.",
    "idempotency_in_progress": "A request with this Idempotency-Key is still running.",
    "idempotency_key_reused": "This Idempotency-Key was used with a different request.",
    "invalid_credentials": "The network refused the credentials.",
    "network_rejected": "The network refused the request.",
    "network_unavailable": "The network could not be reached; try again later.",
    "rate_limited": "Too many requests for this token; wait Retry-After seconds.",
}


class ApiError(exceptions.APIException):
    """An error with a stable code, a message for people and optional details."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def validation_error(
    fields: dict[str, Any] | None = None, channels: dict[str, Any] | None = None
) -> ApiError:
    details: dict[str, Any] = {}
    if fields:
        details["fields"] = fields
    if channels:
        details["channels"] = channels
    parts = []
    if fields:
        parts.append("fields: " + ", ".join(fields))
    if channels:
        parts.append("channels: " + ", ".join(channels))
    return ApiError(
        400,
        "validation_error",
        "The request is invalid (" + "; ".join(parts) + "). See details for what to fix.",
        details=details,
    )


def split_compose_errors(errors: dict[str, list[str]]) -> ApiError:
    """A ComposeError's messages, keyed by field name or channel id, as a validation error."""
    channels = {key: msgs for key, msgs in errors.items() if key.isascii() and key.isdigit()}
    fields = {key: msgs for key, msgs in errors.items() if key not in channels}
    return validation_error(fields, channels)


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


def not_found(what: str = "object") -> exceptions.NotFound:
    return exceptions.NotFound(f"No such {what} in this workspace.")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, answering every error in the one shape."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such object in this workspace.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None, code="forbidden")
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError(413, "request_too_large", "The request body is too large.")
    if not isinstance(exc, exceptions.APIException):
        return None
    code, message, details, headers = _describe(exc)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    set_rollback()
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(body, status=exc.status_code, headers=headers)


def _describe(exc: exceptions.APIException) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    if isinstance(exc, ApiError):
        return exc.code, exc.message, exc.details, dict(exc.headers)
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        error = validation_error(_plain(fields))
        return error.code, error.message, error.details, {}
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 1))
        message = f"Too many requests for this token; try again in {wait} seconds."
        return "rate_limited", message, {"retry_after": wait}, {"Retry-After": str(wait)}
    code = _CODES_BY_CLASS.get(type(exc)) or str(exc.get_codes() or "error")
    return code, str(exc.detail), {}, {}


_CODES_BY_CLASS: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
}


def _plain(detail: Any) -> Any:
    """ErrorDetail strings as plain strings (the renderer would do it; tests compare them)."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(value) for value in detail]
    return str(detail)


# -- schema -------------------------------------------------------------------------------------------
class ErrorBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=sorted(CODES), help_text="Stable error code")
    message = serializers.CharField(help_text="What happened and what to do, for people")
    details = serializers.DictField(
        help_text="`fields`: messages per field; `channels`: messages per channel id; "
        "`retry_after` for rate_limited"
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


STATUS_TEXT = {
    400: "Invalid request (validation_error, parse_error)",
    401: "No token, or an unknown or revoked one",
    403: "Read-only token, or your role does not allow this",
    404: "No such object in this workspace",
    405: "Method not allowed",
    406: "Only application/json is served",
    409: "The object's state does not allow this, or the same Idempotency-Key is in flight",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Idempotency-Key reused with a different request",
    429: "Rate limited: see the Retry-After header",
    502: "The network could not be reached to verify the credentials",
}
