"""Signed webhooks: subscriptions, the delivery log, and sending with retries as data.

Every event a workspace's webhook subscribes to becomes one `WebhookDelivery` row, sent by a
Celery task. A failed send (connection error, timeout, any non-2xx answer) is retried with
exponential backoff: the next time is stored on the row (`next_attempt_at`), the task re-enqueues
itself with that countdown, and a beat sweep picks up any retry whose wake-up was lost. Sending
claims the row with a conditional UPDATE, so the countdown and the sweep never both send.

Each request carries (documented in the README):

    Herald-Event:      delivery.published
    Herald-Event-Id:   UUID of the event, the same on every retry (deduplicate on it)
    Herald-Timestamp:  Unix seconds when this attempt was signed
    Herald-Signature:  v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the webhook secret>

The URL is checked like a server URL when the webhook is created; every send goes through
scheduler/outbound.py, which checks the address it connects to (DNS may have changed), and
redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership

from . import hooks
from .models import Webhook, WebhookDelivery, WebhookDeliveryStatus, WebhookEvent
from .networks.base import InvalidServerURL, check_server_url
from .outbound import Fetched, OutboundError, fetch
from .retry import backoff_seconds

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Herald-Signature"
TIMESTAMP_HEADER = "Herald-Timestamp"
EVENT_HEADER = "Herald-Event"
EVENT_ID_HEADER = "Herald-Event-Id"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
MAX_WEBHOOKS_PER_WORKSPACE = 20
EXCERPT_CHARS = 500


class WebhookError(ValueError):
    """The webhook cannot be created as asked; `errors` maps a field to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items()))
        self.errors = errors


# -- subscriptions ----------------------------------------------------------------------------------
def create_webhook(membership: Membership, *, url: str, events: list[str]) -> tuple[Webhook, str]:
    """Subscribe `url` to `events` for the membership's workspace. Returns (webhook, secret).

    Raises WebhookError for an unknown event, a refused URL, or too many webhooks.
    """
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if not events or unknown:
        errors["events"] = [
            f"Choose events among {', '.join(WebhookEvent.values)}"
            + (f"; unknown: {', '.join(unknown)}." if unknown else ".")
        ]
    try:
        url = check_server_url(url)
    except InvalidServerURL as error:
        errors["url"] = [str(error)]
    workspace = membership.workspace
    if Webhook.objects.for_workspace(workspace).count() >= MAX_WEBHOOKS_PER_WORKSPACE:
        errors["url"] = [f"A workspace has at most {MAX_WEBHOOKS_PER_WORKSPACE} webhooks."]
    if errors:
        raise WebhookError(errors)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook = Webhook(
        workspace=workspace,
        created_by=membership.user,
        url=url,
        events=sorted(set(events)),
    )
    webhook.secrets = {"secret": secret}
    webhook.save()
    return webhook, secret


# -- signing ----------------------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Herald-Signature` value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify_signature(
    secret: str, *, timestamp: str, body: bytes, signature: str, tolerance: int = 300
) -> bool:
    """What a receiver does: True if the signature matches and the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)


# -- events -----------------------------------------------------------------------------------------
def enqueue_event(event: str, *, workspace_id: int, payload: dict[str, Any]) -> list[int]:
    """Log one delivery per webhook subscribed to `event` and enqueue their sending.

    Returns the new WebhookDelivery ids. Sending starts after the surrounding commit.
    """
    return enqueue_events(event, [(workspace_id, payload)])


def enqueue_events(event: str, items: list[tuple[int, dict[str, Any]]]) -> list[int]:
    """`enqueue_event` for several (workspace id, payload) pairs: each pair is one event, with
    its own id. One query finds the webhooks of every workspace concerned."""
    subscribed: dict[int, list[Webhook]] = {}
    for webhook in Webhook.objects.filter(workspace_id__in={ws for ws, _ in items}):
        if event in (webhook.events or []):
            subscribed.setdefault(webhook.workspace_id, []).append(webhook)
    if not subscribed:
        return []
    now = timezone.now()
    rows = []
    for workspace_id, payload in items:
        event_id = uuid.uuid4()
        body = {
            "id": str(event_id),
            "event": event,
            "created_at": now.isoformat(),
            "workspace_id": workspace_id,
            "data": json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
        }
        rows += [
            WebhookDelivery(
                webhook=webhook,
                event=event,
                event_id=event_id,
                payload=body,
                next_attempt_at=now,
                created_at=now,
            )
            for webhook in subscribed.get(workspace_id, [])
        ]
    with transaction.atomic():  # a failure here must not break a caller's transaction
        rows = WebhookDelivery.objects.bulk_create(rows)
    ids = [row.pk for row in rows]
    transaction.on_commit(
        lambda: hooks.webhook_deliveries_logged.send(sender=WebhookDelivery, ids=ids)
    )
    return ids


# -- sending ----------------------------------------------------------------------------------------
def send(delivery_id: int) -> float | None:
    """Send one logged webhook delivery if it is due and nobody else is sending it.

    Returns the seconds until the next attempt when this one failed and another is planned,
    else None (sent, given up, or not ours to send).
    """
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    webhook = delivery.webhook
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    try:
        response = _post(webhook.url, webhook.secret, delivery, body)
    except InvalidServerURL as error:
        return _record_failure(delivery, f"Not sent: {error}", retry=False)
    except OutboundError as error:
        return _record_failure(delivery, f"Could not reach the webhook URL: {error}")
    excerpt = response.text[:EXCERPT_CHARS]
    if 200 <= response.status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDeliveryStatus.SUCCEEDED,
            response_status=response.status,
            response_excerpt=excerpt,
            error="",
            delivered_at=timezone.now(),
            claimed_until=None,
            next_attempt_at=None,
        )
        return None
    return _record_failure(
        delivery,
        f"The webhook URL answered HTTP {response.status}; Herald expects a 2xx answer.",
        status=response.status,
        excerpt=excerpt,
    )


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    lease = timedelta(seconds=settings.HERALD_WEBHOOK_TIMEOUT * 2 + 30)
    due = Q(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=WebhookDeliveryStatus.SENDING, claimed_until__lt=now
    )
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("webhook")
            .filter(due, pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        delivery.status = WebhookDeliveryStatus.SENDING
        delivery.claimed_until = now + lease
        delivery.attempts += 1
        delivery.save(update_fields=["status", "claimed_until", "attempts"])
    return delivery


def _post(url: str, secret: str, delivery: WebhookDelivery, body: bytes) -> Fetched:
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: delivery.event,
        EVENT_ID_HEADER: str(delivery.event_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    # No redirects: the receiver is the URL the workspace registered, nowhere else.
    return fetch(
        "POST",
        url,
        content=body,
        headers=headers,
        max_bytes=64 * 1024,
        truncate=True,  # only an excerpt of the answer is kept
        timeout=settings.HERALD_WEBHOOK_TIMEOUT,
        max_redirects=0,
    )


def _record_failure(
    delivery: WebhookDelivery,
    message: str,
    *,
    retry: bool = True,
    status: int | None = None,
    excerpt: str = "",
) -> float | None:
    retry = retry and delivery.attempts < settings.HERALD_WEBHOOK_MAX_ATTEMPTS
    wait = (
        backoff_seconds(
            delivery.attempts,
            base=settings.HERALD_WEBHOOK_BACKOFF_BASE,
            cap=settings.HERALD_WEBHOOK_BACKOFF_MAX,
        )
        if retry
        else None
    )
    if not retry and delivery.attempts >= settings.HERALD_WEBHOOK_MAX_ATTEMPTS:
        message += f" Gave up after {delivery.attempts} attempts."
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDeliveryStatus.PENDING if retry else WebhookDeliveryStatus.FAILED,
        next_attempt_at=timezone.now() + timedelta(seconds=wait) if wait is not None else None,
        claimed_until=None,
        response_status=status,
        response_excerpt=excerpt,
        error=message,
    )
    logger.info(
        "webhook delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, message
    )
    return wait


def due_ids(*, limit: int = 500) -> list[int]:
    """Deliveries whose next attempt is due, or whose sender stopped: for the beat sweep."""
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=WebhookDeliveryStatus.SENDING, claimed_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
