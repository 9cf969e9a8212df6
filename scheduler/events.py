"""What the engine tells the outside world: one place that every notification goes through.

Each function is called after the state change is committed. Webhooks and in-app
notifications subscribe here rather than in the engine.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.dispatch import receiver

from . import hooks, webhooks
from .models import Channel, Delivery

if TYPE_CHECKING:
    from accounts.models import User

    from .models import Post

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


def deliveries_published(deliveries: list[Delivery]) -> None:
    """A publish batch's successes: their activity entries and webhooks, in a few queries."""
    from . import notices

    try:
        notices.deliveries_published(deliveries)
    except Exception:
        logger.exception("could not record activity for %d published deliveries", len(deliveries))
    items = [(d.workspace_id, delivery_payload(d)) for d in deliveries]
    for workspace_id, payload in items:
        logger.info("delivery.published workspace=%s %s", workspace_id, payload)
    try:
        webhooks.enqueue_events("delivery.published", items)
    except Exception:
        logger.exception("delivery.published: could not enqueue webhooks")


def delivery_failed(delivery: Delivery) -> None:
    _log_delivery("failed", delivery)
    emit("delivery.failed", workspace_id=delivery.workspace_id, payload=delivery_payload(delivery))


def delivery_missed(delivery: Delivery) -> None:
    _log_delivery("missed", delivery)
    emit("delivery.missed", workspace_id=delivery.workspace_id, payload=delivery_payload(delivery))


def _log_delivery(verb: str, delivery: Delivery) -> None:
    """The activity entry (and, for a failure, the author's notification) of an engine outcome."""
    from . import notices

    try:
        notices.delivery_outcome(verb, delivery)
    except Exception:
        logger.exception("%s: could not record activity for delivery %s", verb, delivery.pk)


def post_event(event: str, post: Post, *, actor: User | None, reason: str = "") -> None:
    """post.submitted, post.approved, post.rejected."""
    payload: dict[str, Any] = {
        "post_id": post.pk,
        "status": post.status,
        "author_id": post.author_id,
        "actor_id": actor.pk if actor else None,
    }
    if reason:
        payload["reason"] = reason
    emit(event, workspace_id=post.workspace_id, payload=payload)


@receiver(hooks.channel_needs_reconnect)
def _on_channel_needs_reconnect(sender: type[Channel], *, channel: Channel, **kwargs: Any) -> None:
    channel_needs_reconnect(channel)


def channel_needs_reconnect(channel: Channel) -> None:
    from . import notices

    try:
        notices.channel_needs_reconnect(channel)
    except Exception:
        logger.exception("could not record activity for channel %s", channel.pk)
    emit(
        "channel.needs_reconnect",
        workspace_id=channel.workspace_id,
        payload={
            "channel_id": channel.pk,
            "handle": channel.handle,
            "reason": channel.status_detail,
        },
    )
