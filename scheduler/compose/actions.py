"""Acting on a saved post: cancel, retry a delivery, share now."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership

from .. import activity, states
from ..models import (
    ActivityVerb,
    Channel,
    Delivery,
    DeliveryStatus,
    Post,
    PostStatus,
)
from .common import (
    CHANGEABLE,
    PostNotEditable,
    _inputs,
    _queued_channels,
    _reflow_quietly,
    _save_parts,
    parts_for_post,
)


def cancel_post(post: Post, *, channel: Channel | None = None) -> int:
    """Cancel every delivery not yet publishing (only the one on `channel` if given); published
    history stays. Returns how many.

    Later queued posts on the same channels move up onto the freed slots.
    """
    with transaction.atomic():
        targets = (
            post.deliveries.all() if channel is None else post.deliveries.filter(channel=channel)
        )
        queued_channels = _queued_channels(targets.filter(status__in=CHANGEABLE))
        cancelled = states.apply(targets, "cancel", next_attempt_at=None)
        if not post.deliveries.exclude(status=DeliveryStatus.CANCELLED).exists():
            Post.objects.filter(pk=post.pk).update(status=PostStatus.CANCELLED)
        _reflow_quietly(queued_channels)
        if cancelled:
            activity.record(
                ActivityVerb.CANCELLED,
                workspace_id=post.workspace_id,
                post=post,
                changes={"deliveries": cancelled},
            )
    return cancelled


def retry_delivery(delivery: Delivery, *, at: datetime | None = None) -> None:
    """Put a failed or missed delivery back in the schedule, now or at `at`.


    Raises IllegalTransition if the delivery is not failed or missed.
    """
    at = at or timezone.now()
    # The retry is the new intended time: the catch-up window counts from it.
    states.transition(
        delivery,
        "retry",
        due_at=at,
        next_attempt_at=at,
        pinned=True,  # a retry has a time of its own; it no longer takes a queue slot
        attempts=0,
        failures=0,
        last_error_code="",
        last_error="",
    )
    activity.record(
        ActivityVerb.RETRIED,
        workspace_id=delivery.workspace_id,
        post=delivery.post,
        channel=delivery.channel,
        changes={"at": at.isoformat()},
    )


def share_now(post: Post) -> int:
    """Publish the post's waiting deliveries now: the dispatcher picks them up within a tick.


    A draft is scheduled for now. Queued posts behind on the same channels move up. Returns how
    many deliveries were brought forward; raises PostNotEditable when the post awaits approval,
    was cancelled or has nothing left to publish.
    """
    with transaction.atomic():
        post = Post.objects.select_for_update().get(pk=post.pk)
        if post.status == PostStatus.PENDING_APPROVAL:
            raise PostNotEditable("This post awaits approval; approve it before sharing it.")
        if post.status == PostStatus.CANCELLED:
            raise PostNotEditable("This post was cancelled; create a new post instead.")
        now = timezone.now()
        waiting = post.deliveries.filter(status__in=CHANGEABLE)
        queued_channels = _queued_channels(waiting)
        if post.status == PostStatus.DRAFT:
            post.status = PostStatus.SCHEDULED
            post.save(update_fields=["status", "updated_at"])
            states.apply(waiting, "schedule")
        moved = post.deliveries.filter(status=DeliveryStatus.SCHEDULED).update(
            due_at=now, next_attempt_at=now, pinned=True, failures=0
        )
        if not moved:
            raise PostNotEditable(
                "Nothing is waiting to be published: every delivery is publishing, published, "
                "failed, missed or cancelled."
            )
        _reflow_quietly(queued_channels)
        activity.record(
            ActivityVerb.RESCHEDULED,
            workspace_id=post.workspace_id,
            post=post,
            changes={"to": "now"},
        )
    return moved


def duplicate_post(membership: Membership, post: Post) -> Post:
    """A new draft by `membership`'s user with the post's parts, media, options, tags, channels
    and per-channel overrides; nothing of the original changes."""
    with transaction.atomic():
        copy = Post.objects.create(
            workspace=post.workspace,
            author=membership.user,
            status=PostStatus.DRAFT,
            options=dict(post.options),
            tags=list(post.tags),
        )
        _save_parts(copy, _inputs(parts_for_post(post)))
        Delivery.objects.bulk_create(
            Delivery(
                workspace=post.workspace,
                post=copy,
                channel_id=delivery.channel_id,
                status=DeliveryStatus.HELD,
                pinned=True,
                override_parts=delivery.override_parts,
            )
            for delivery in post.deliveries.all()
        )
    return copy
