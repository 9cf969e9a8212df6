"""Celery tasks: a few lines each; the work lives in plain functions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver

from . import channels, dispatch, hooks, media, publishing, webhooks
from .api.idempotency import purge_expired
from .models import Channel, ChannelStatus
from .networks import entries


@shared_task(ignore_result=True)
def dispatch_tick() -> None:
    dispatch.run_tick(enqueue=enqueue_publish, backlog=broker_backlog)


def broker_backlog() -> int:
    """Tasks waiting in the broker's queue for a worker to fetch them (0 if it cannot tell)."""
    try:
        with publish.app.connection_for_read() as connection:
            queue = connection.default_channel.queue_declare(
                queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True
            )
            return int(queue.message_count)
    except Exception:
        return 0


@shared_task(ignore_result=True, acks_late=False)
def publish(delivery_ids: list[int] | int, claim_token: str) -> dict[int, str]:
    """Publish a batch of claimed deliveries (one id: a task enqueued by an earlier version)."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
    return publishing.publish_batch(ids, claim_token=UUID(claim_token))


def enqueue_publish(batch: list[dispatch.Claim]) -> None:
    ids = [claim.delivery_id for claim in batch]
    publish.apply_async((ids, str(batch[0].token)), eta=min(claim.eta for claim in batch))


@shared_task(ignore_result=True)
def verify_channels() -> None:
    for pk in Channel.objects.filter(status=ChannelStatus.ACTIVE).values_list("pk", flat=True):
        verify_channel.delay(pk)


@shared_task(ignore_result=True)
def verify_channel(channel_id: int) -> None:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is not None:
        channels.verify_channel(channel)


@shared_task(ignore_result=True)
def send_webhook(webhook_delivery_id: int) -> None:
    retry_in = webhooks.send(webhook_delivery_id)
    if retry_in is not None:
        # A wake-up only: the next attempt time is on the row, and the sweep below catches a
        # retry whose task was lost.
        send_webhook.apply_async((webhook_delivery_id,), countdown=retry_in)


@receiver(hooks.webhook_deliveries_logged)
def _on_webhook_deliveries_logged(sender: type[Any], *, ids: list[int], **kwargs: Any) -> None:
    for pk in ids:
        send_webhook.delay(pk)


@shared_task(ignore_result=True)
def send_due_webhooks() -> None:
    for pk in webhooks.due_ids():
        send_webhook.delay(pk)


@shared_task(ignore_result=True)
def purge_idempotency_records() -> None:
    purge_expired()


@shared_task(ignore_result=True)
def delete_unused_uploads() -> None:
    media.delete_unused_uploads(older_than=timedelta(hours=settings.HERALD_UNUSED_MEDIA_HOURS))


@shared_task(ignore_result=True)
def refresh_credentials() -> None:
    """Every network's credential job (those whose credentials expire), from the registry."""
    for entry in entries():
        if entry.refresh_due_credentials is not None:
            entry.refresh_due_credentials()
