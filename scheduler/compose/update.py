"""Changing a post: what may still change, validation of the result, re-timing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from accounts.models import Membership

from .. import states
from ..models import (
    Delivery,
    DeliveryStatus,
    Post,
    PostStatus,
)
from . import history
from .common import (
    CHANGEABLE,
    QUEUE_FIRST,
    ComposeError,
    PartInput,
    PostNotEditable,
    _enqueue_all,
    _inputs,
    _override_json,
    _reflow_quietly,
    _save_parts,
    parts_for,
    parts_for_post,
    validate_for_channels,
)

_UNCHANGED_REASONS = {
    DeliveryStatus.PUBLISHING: "It is being published right now.",
    DeliveryStatus.PUBLISHED: "It is already published.",
    DeliveryStatus.FAILED: "It failed; retry it, or leave it as it was.",
    DeliveryStatus.MISSED: "It was missed; retry it, or leave it as it was.",
    DeliveryStatus.CANCELLED: "It was cancelled.",
}


def _changeable(delivery: Delivery) -> bool:
    # A delivery waiting to retry may already have live parts, or a send whose outcome is
    # being confirmed: changing it then would publish a mix, or nothing of the change.
    return delivery.status in CHANGEABLE and not delivery.has_sent_anything()


def why_unchangeable(delivery: Delivery) -> str | None:
    """Why the delivery's content or time can no longer change, or None if it still can."""
    return None if _changeable(delivery) else _why_unchanged(delivery)


def _why_unchanged(delivery: Delivery) -> str:
    if delivery.status in CHANGEABLE:
        return (
            "Part of it is already published, or Herald is confirming whether it went out; "
            "it can no longer change."
        )
    return _UNCHANGED_REASONS[DeliveryStatus(delivery.status)]


def what_can_change(deliveries: list[Delivery]) -> tuple[list[Delivery], dict[int, str]]:
    """The deliveries whose content and time may still change, and why each other one cannot."""
    changeable = [d for d in deliveries if _changeable(d)]
    return changeable, {d.pk: _why_unchanged(d) for d in deliveries if not _changeable(d)}


@dataclass
class UpdateResult:
    post: Post
    changed: list[Delivery]
    # delivery id -> why it could not change
    unchanged: dict[int, str]


@transaction.atomic
def update_post(
    membership: Membership,
    post: Post,
    *,
    parts: list[PartInput] | None = None,
    overrides: dict[int, list[PartInput] | None] | None = None,
    options: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    at: datetime | None = None,
    queue: str | None = None,
    draft: bool | None = None,
) -> UpdateResult:
    """Change the text, parts, per-channel overrides, options, tags or time of a post.


    Only deliveries not yet publishing (held or scheduled) change; the result says which could
    not and why. Arguments left as None stay as they are; in `overrides`, None for a channel
    drops its override. When some deliveries are past changing, new parts are written as the
    changeable deliveries' own text, so what was published stays on record. A contributor's
    change to an approved post sends it back for approval.


    Raises ComposeError (validation, per field or channel; nothing is saved) or PostNotEditable.
    """
    post = Post.objects.select_for_update().get(pk=post.pk)
    before = history.Before.of(post)
    deliveries = list(
        post.deliveries.select_related("channel").select_for_update(of=("self",)).order_by("pk")
    )
    changeable, unchanged = what_can_change(deliveries)
    if not changeable:
        raise PostNotEditable(
            "Nothing in this post can change: every delivery is publishing, (partly) published, "
            "failed, missed or cancelled. Create a new post instead."
        )
    _check_update(post, deliveries, parts, overrides, options, at, queue)
    _validate_update(post, changeable, parts, overrides, options)
    all_changeable = len(changeable) == len(deliveries)
    _save_content(post, changeable, parts, overrides, all_changeable=all_changeable)
    if options is not None:
        post.options = options
    if tags is not None:
        post.tags = tags
    post.save()
    content_changed = parts is not None or overrides is not None or options is not None
    if content_changed:
        # Handles built from the old content (a Bluesky record, a Threads container, uploaded
        # media) were never sent: drop them, so the new content is what goes out.
        Delivery.objects.filter(pk__in=[d.pk for d in changeable]).update(part_states=[])
    _retime(membership, post, changeable, at=at, queue=queue, draft=draft, content=content_changed)
    history.record_update(
        membership,
        post,
        before,
        parts=parts,
        overrides=overrides,
        options=options,
        tags=tags,
        at=at,
        queue=queue,
        draft=draft,
    )
    return UpdateResult(post, changeable, unchanged)


def _check_update(
    post: Post,
    deliveries: list[Delivery],
    parts: list[PartInput] | None,
    overrides: dict[int, list[PartInput] | None] | None,
    options: dict[str, Any] | None,
    at: datetime | None,
    queue: str | None,
) -> None:
    errors: dict[str, list[str]] = {}
    if post.status == PostStatus.CANCELLED:
        raise PostNotEditable("This post was cancelled; create a new post instead.")
    if parts is not None and all(not p.text.strip() and not p.media for p in parts):
        errors["text"] = ["Write something to publish, or attach media."]
    channel_ids = {d.channel_id for d in deliveries}
    if overrides and set(overrides) - channel_ids:
        errors["overrides"] = ["Overrides may only name channels this post goes to."]
    if options is not None and any(d.status == DeliveryStatus.PUBLISHING for d in deliveries):
        errors["options"] = ["Options cannot change while a delivery is being published."]
    if at is not None and timezone.is_naive(at):
        errors["scheduled_at"] = ["Give the time with its time zone or UTC offset."]
    if errors:
        raise ComposeError(errors)


def _validate_update(
    post: Post,
    changeable: list[Delivery],
    parts: list[PartInput] | None,
    overrides: dict[int, list[PartInput] | None] | None,
    options: dict[str, Any] | None,
) -> None:
    """Validate what each changeable delivery would publish after the change."""
    base = parts if parts is not None else _inputs(parts_for_post(post))
    effective: dict[int, list[PartInput]] = {}
    for delivery in changeable:
        own: list[PartInput] | None
        if overrides is not None and delivery.channel_id in overrides:
            own = overrides[delivery.channel_id]
        else:
            own = _inputs(parts_for(delivery)) if delivery.override_parts else None
        effective[delivery.channel_id] = own if own is not None else base
    errors = validate_for_channels(
        [d.channel for d in changeable],
        base,
        options if options is not None else post.options,
        effective,
    )
    if errors:
        raise ComposeError(errors)


def _save_content(
    post: Post,
    changeable: list[Delivery],
    parts: list[PartInput] | None,
    overrides: dict[int, list[PartInput] | None] | None,
    *,
    all_changeable: bool,
) -> None:
    for delivery in changeable:
        if overrides is not None and delivery.channel_id in overrides:
            delivery.override_parts = _override_json(overrides[delivery.channel_id])
        elif parts is not None and not all_changeable and not delivery.override_parts:
            # Published deliveries keep the post's parts as their record; the rest get the
            # new text as their own.
            delivery.override_parts = _override_json(parts)
        Delivery.objects.filter(pk=delivery.pk).update(override_parts=delivery.override_parts)
    if parts is not None and all_changeable:
        post.parts.all().delete()
        _save_parts(post, parts)


def _retime(
    membership: Membership,
    post: Post,
    changeable: list[Delivery],
    *,
    at: datetime | None,
    queue: str | None,
    draft: bool | None,
    content: bool,
) -> None:
    """Apply a new time (or queue place, or back to draft) and the post status it implies."""
    timing = at is not None or queue is not None or draft is not None
    if draft:
        _to_draft(post, changeable)
        return
    # Anything a contributor changes in a scheduled post goes back for approval.
    if (timing and post.status == PostStatus.DRAFT) or (
        (content or timing) and post.status == PostStatus.SCHEDULED and not membership.can_publish
    ):
        post.status = (
            PostStatus.SCHEDULED if membership.can_publish else PostStatus.PENDING_APPROVAL
        )
        post.save(update_fields=["status", "updated_at"])
    if at is not None:
        for delivery in changeable:
            _pin(delivery, at)
    elif queue is not None:
        _enqueue_all(changeable, first=queue == QUEUE_FIRST)
    elif timing and any(d.due_at is None for d in changeable):
        raise ComposeError({"scheduled_at": ["Choose when to publish."]})
    _sync_delivery_status(post, changeable, retimed=at is not None or queue is not None)


def _pin(delivery: Delivery, at: datetime) -> None:
    was_queued = not delivery.pinned
    Delivery.objects.filter(pk=delivery.pk).update(due_at=at, pinned=True)
    delivery.due_at, delivery.pinned = at, True
    if was_queued:
        _reflow_quietly([delivery.channel])


def _sync_delivery_status(post: Post, changeable: list[Delivery], *, retimed: bool) -> None:
    """Scheduled posts have scheduled deliveries due at their time; others are held.


    A delivery waiting out a backoff keeps its next attempt unless its time changed.
    """
    ids = [d.pk for d in changeable]
    rows = Delivery.objects.filter(pk__in=ids)
    if post.status == PostStatus.SCHEDULED:
        released = rows.filter(status=DeliveryStatus.HELD, due_at__isnull=False)
        to_time = ids if retimed else list(released.values_list("pk", flat=True))
        states.apply(released, "schedule")
        Delivery.objects.filter(pk__in=to_time, status=DeliveryStatus.SCHEDULED).update(
            next_attempt_at=models.F("due_at"),
            failures=0,  # a new time: the backoff starts over
        )
    else:
        states.apply(rows, "hold")
        rows.update(next_attempt_at=None)
    for delivery in changeable:
        delivery.refresh_from_db(fields=["status", "due_at", "next_attempt_at", "pinned"])


def _to_draft(post: Post, changeable: list[Delivery]) -> None:
    queued_channels = [d.channel for d in changeable if not d.pinned]
    post.status = PostStatus.DRAFT
    post.save(update_fields=["status", "updated_at"])
    rows = Delivery.objects.filter(pk__in=[d.pk for d in changeable])
    states.apply(rows, "hold")
    rows.update(next_attempt_at=None, due_at=None, pinned=True)
    _reflow_quietly(queued_channels)
    for delivery in changeable:
        delivery.refresh_from_db(fields=["status", "due_at", "next_attempt_at", "pinned"])
