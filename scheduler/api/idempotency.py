"""Idempotency-Key on API POSTs: the same key with the same request acts once.

1. The first request with a key inserts a record (user, workspace, key, request hash). The unique
   constraint decides which of two concurrent duplicates acts: the one whose insert succeeds.
2. It runs its view in a transaction that also stores the response on the record, so the work and
   the stored response commit together (or neither does).
3. A repeat with the same request gets the stored status and body back (header
   `Idempotent-Replayed: true`) without acting again; a different request with the same key gets
   422. A duplicate that arrives while the first still runs waits up to
   HERALD_IDEMPOTENCY_WAIT seconds for it, then answers 409 with Retry-After.
4. Only successful responses are stored: an error leaves no record, so a corrected retry with the
   same key runs. A record whose request died (its lock expired) is taken over by the next one.
5. Records are kept HERALD_IDEMPOTENCY_TTL_HOURS (at least 24) and purged by a beat job.
6. Secrets are never stored: a view lists the fields of its answer that hold one in
   `ResponseWithSecrets` (a new webhook's signing secret), and the record keeps them as null.
   A replay therefore answers the same status and body with those fields null: the secret is
   shown once, to the request that created it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import IdempotencyRecord
from .base import token_auth
from .errors import ApiError, validation_error

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# A request holding a key longer than this is presumed dead and another may take the key over.
LOCK_SECONDS = 300
POLL_SECONDS = 0.05

# Printable Latin-1 (what a header can carry) with at least one character besides spaces: the
# one rule the server checks and the schema declares.
_PRINTABLE = r"\x20-\x7e\xa1-\xac\xae-\xff"
KEY_PATTERN = rf"^[{_PRINTABLE}]*[\x21-\x7e\xa1-\xac\xae-\xff][{_PRINTABLE}]*$"
_KEY_RE = re.compile(KEY_PATTERN)

PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (a UUID, say), at most 255 characters. Repeating the request "
    "with the same key returns the first response without acting again; the same key with a "
    "different request is refused with 422. Keys are kept at least 24 hours.",
)

Handler = Callable[..., Response]


class ResponseWithSecrets(Response):
    """An answer whose `secret_fields` are shown to this request only: never stored for replays."""

    def __init__(self, data: dict[str, Any], *, secret_fields: tuple[str, ...], **kw: Any) -> None:
        super().__init__(data, **kw)
        self.secret_fields = secret_fields


def idempotent(handler: Handler) -> Handler:
    """Decorate an API view's `post` so an Idempotency-Key header makes it act once."""

    @wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        key = _check_key(key)
        outcome = begin(request, key)
        if isinstance(outcome, Response):
            return outcome
        try:
            with transaction.atomic():
                response = handler(view, request, *args, **kwargs)
                if response.status_code < 400:
                    _finish(outcome, response)
        except BaseException:
            release(outcome)
            raise
        if response.status_code >= 400:
            release(outcome)
        return response

    return wrapper


def _check_key(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH or not _KEY_RE.match(key):
        raise validation_error(
            {HEADER: [f"Use 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID."]}
        )
    return key.strip()


def fingerprint(request: Request) -> str:
    """SHA-256 of the method, path and body content (parsed, so formatting does not matter)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data
    if hasattr(data, "lists"):  # multipart: fields and files
        fields = sorted((name, values) for name, values in data.lists())
        digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
        for name, upload in sorted(request.FILES.items()):
            digest.update(name.encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def begin(request: Request, key: str) -> IdempotencyRecord | Response:
    """Reserve the key for this request, or answer from the request that reserved it first.

    Returns the new record (go ahead and act) or the stored Response. Raises ApiError 422 for
    a different request under the same key, 409 while the first one is still running.
    """
    membership = token_auth(request).membership
    scope = {"workspace": membership.workspace, "user": membership.user, "key": key}
    request_hash = fingerprint(request)
    deadline = time.monotonic() + settings.HERALD_IDEMPOTENCY_WAIT
    while True:
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    **scope,
                    request_hash=request_hash,
                    locked_until=now + timedelta(seconds=LOCK_SECONDS),
                )
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(**scope).first()
        if record is None:
            continue  # the first request failed and released the key meanwhile
        if record.request_hash != request_hash:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request. Use a new key "
                "for a new request.",
            )
        if record.response_status is not None:
            return replay(record)
        if _take_over_if_dead(record, now):
            return record
        if time.monotonic() >= deadline:
            raise ApiError(
                409,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being processed. Retry shortly "
                "to get its response.",
                headers={"Retry-After": "1"},
            )
        time.sleep(POLL_SECONDS)


def _take_over_if_dead(record: IdempotencyRecord, now: Any) -> bool:
    if record.locked_until is None or record.locked_until > now:
        return False
    return bool(
        IdempotencyRecord.objects.filter(
            pk=record.pk, response_status__isnull=True, locked_until=record.locked_until
        ).update(locked_until=now + timedelta(seconds=LOCK_SECONDS))
    )


def replay(record: IdempotencyRecord) -> Response:
    return Response(
        record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"}
    )


def _finish(record: IdempotencyRecord, response: Response) -> None:
    body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
    for field in response.secret_fields if isinstance(response, ResponseWithSecrets) else ():
        body[field] = None
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=response.status_code, response_body=body, locked_until=None
    )


def release(record: IdempotencyRecord) -> None:
    """Forget an unfinished reservation so the key can be used again."""
    IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True).delete()


def purge_expired() -> int:
    """Delete records older than HERALD_IDEMPOTENCY_TTL_HOURS. Returns how many."""
    hours = max(24, settings.HERALD_IDEMPOTENCY_TTL_HOURS)
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
