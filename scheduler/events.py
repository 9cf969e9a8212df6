"""What the engine tells the outside world: one place that every notification goes through.

Each function is called after the state change is committed. Webhooks and in-app
notifications subscribe here rather than in the engine.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from . import hooks, webhooks
from .models import Channel, Delivery

logger = logging.getLogger("herald.events")


def emit(event: str, *, workspace_id: int, payload: dict[str, Any]) -> None:
    """Record an event for the workspace and enqueue its webhooks. Never raises into the engine."""
    logger.info("%s workspace=%s %s", event, workspace_id, payload)
    try:
        webhooks.enqueue_event(event, workspace_id=workspace_id, payload=payload)
    except Exception:
        logger.exception("%s: could not enqueue webhooks for workspace %s", event, workspace_id)


def delivery_payload(delivery: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": delivery.pk,
        "post_id": delivery.post_id,
        "channel_id": delivery.channel_id,
        "status": delivery.status,
        "due_at": delivery.due_at.isoformat() if delivery.due_at else None,
        "published_at": delivery.published_at.isoformat() if delivery.published_at else None,
        "urls": delivery.remote_urls,
        "error": {"code": delivery.last_error_code, "message": delivery.last_error}
        if delivery.last_error_code
        else None,
    }


def delivery_published(delivery: Delivery) -> None:
    emit(
        "delivery.published", workspace_id=delivery.workspace_id, payload=delivery_payload(delivery)
    )


def delivery_failed(delivery: Delivery) -> None:
    emit("delivery.failed", workspace_id=delivery.workspace_id, payload=delivery_payload(delivery))


def delivery_missed(delivery: Delivery) -> None:
    emit("delivery.missed", workspace_id=delivery.workspace_id, payload=delivery_payload(delivery))


@receiver(hooks.channel_needs_reconnect)
def _on_channel_needs_reconnect(sender: type[Channel], *, channel: Channel, **kwargs: Any) -> None:
    channel_needs_reconnect(channel)


def channel_needs_reconnect(channel: Channel) -> None:
    emit(
        "channel.needs_reconnect",
        workspace_id=channel.workspace_id,
        payload={
            "channel_id": channel.pk,
            "handle": channel.handle,
            "reason": channel.status_detail,
        },
    )
