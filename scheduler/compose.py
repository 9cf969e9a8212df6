"""Creating, scheduling, cancelling and retrying posts: the workflows the UI and the API share."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.db.models import Prefetch
from django.utils import timezone

from accounts.models import Membership, Workspace

from . import queue as queue_flows
from . import states
from .models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Media,
    PartMedia,
    Post,
    PostPart,
    PostStatus,
)
from .networks import network_for
from .networks.base import PartContent


class ComposeError(Exception):
    """The post cannot be saved as asked. `errors` maps a field or channel id to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items()))
        self.errors = errors


class PostNotEditable(Exception):
    """Nothing of the post can change as asked (every delivery is past changing, or it waits
    for approval); the message says why."""


# Where a queued post goes: after the others ("add to queue") or in front ("share next").
QUEUE_LAST, QUEUE_FIRST = "last", "first"


@dataclass
class PartInput:
    text: str
    media: list[Media] = field(default_factory=list)


def parts_for(delivery: Delivery) -> list[PartContent]:
    """What this delivery publishes: the channel's override if any, else the post's parts."""
    if delivery.override_parts:
        wanted = {pk for part in delivery.override_parts for pk in part.get("media", [])}
        media = Media.objects.for_workspace(delivery.workspace_id).in_bulk(wanted)
        return [
            PartContent(
                part.get("text", ""), [media[pk] for pk in part.get("media", []) if pk in media]
            )
            for part in delivery.override_parts
        ]
    return parts_for_post(delivery.post)


def validate_for_channels(
    channels: list[Channel],
    parts: list[PartInput],
    options: dict[str, Any],
    overrides: dict[int, list[PartInput]] | None = None,
) -> dict[str, list[str]]:
    """Per-channel validation messages (keyed by channel id); empty when every network accepts."""
    errors: dict[str, list[str]] = {}
    for channel in channels:
        own = (overrides or {}).get(channel.pk, parts)
        contents = [PartContent(p.text, list(p.media)) for p in own]
        problems = network_for(channel).validate(contents, options)
        if problems:
            errors[str(channel.pk)] = [
                f"{channel.handle} ({channel.get_network_display()}): {m}" for m in problems
            ]
    return errors


def create_post(
    membership: Membership,
    *,
    channels: list[Channel],
    parts: list[PartInput],
    at: datetime | None,
    options: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    overrides: dict[int, list[PartInput]] | None = None,
    draft: bool = False,
    queue: str | None = None,
) -> Post:
    """Validate for every target network, then save the post with one delivery per channel.

    `at` is when to publish (None with draft=True keeps it a draft). `queue` (QUEUE_LAST or
    QUEUE_FIRST) puts each delivery on its channel's queue instead of at `at`. Raises
    ComposeError with per-field or per-channel messages; nothing is saved then.
    """
    workspace = membership.workspace
    options = options or {}
    queue = None if draft else queue
    errors = _check_input(workspace, channels, parts, at, draft or queue is not None)
    if not errors:
        errors = validate_for_channels(channels, parts, options, overrides)
    if not errors and queue is not None:
        errors = queue_flows.check_queueable(channels)
    if errors:
        raise ComposeError(errors)
    # Validation may ask a server for its limits: done above, outside the transaction.
    with transaction.atomic():
        return _save_new_post(
            membership, channels, parts, at, options, tags, overrides, draft, queue
        )


def _save_new_post(
    membership: Membership,
    channels: list[Channel],
    parts: list[PartInput],
    at: datetime | None,
    options: dict[str, Any],
    tags: list[str] | None,
    overrides: dict[int, list[PartInput]] | None,
    draft: bool,
    queue: str | None,
) -> Post:
    workspace = membership.workspace
    status = PostStatus.DRAFT if draft else PostStatus.SCHEDULED
    if status == PostStatus.SCHEDULED and not membership.can_publish:
        status = PostStatus.PENDING_APPROVAL
    post = Post.objects.create(
        workspace=workspace, author=membership.user, status=status, options=options, tags=tags or []
    )
    _save_parts(post, parts)
    delivery_status = (
        DeliveryStatus.SCHEDULED if status == PostStatus.SCHEDULED else DeliveryStatus.HELD
    )
    if queue is not None:
        at = None
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            workspace=workspace,
            post=post,
            channel=channel,
            status=delivery_status,
            due_at=at,
            next_attempt_at=at if delivery_status == DeliveryStatus.SCHEDULED else None,
            pinned=queue is None,
            override_parts=_override_json((overrides or {}).get(channel.pk)),
        )
        for channel in channels
    )
    if queue is not None:
        _enqueue_all(deliveries, first=queue == QUEUE_FIRST)
    return post


def _enqueue_all(deliveries: list[Delivery], *, first: bool) -> None:
    errors: dict[str, list[str]] = {}
    for delivery in deliveries:
        try:
            queue_flows.enqueue(delivery, first=first)
        except queue_flows.QueueError as error:
            errors[str(delivery.channel_id)] = [str(error)]
    if errors:
        raise ComposeError(errors)


def _check_input(
    workspace: Workspace,
    channels: list[Channel],
    parts: list[PartInput],
    at: datetime | None,
    draft: bool,
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not channels:
        errors["channels"] = ["Choose at least one channel to publish to."]
    if any(channel.workspace_id != workspace.pk for channel in channels):
        errors["channels"] = ["One of the channels does not exist."]
    if not parts or all(not p.text.strip() and not p.media for p in parts):
        errors["text"] = ["Write something to publish, or attach media."]
    if not draft and at is None:
        errors["scheduled_at"] = ["Choose when to publish."]
    if at is not None and timezone.is_naive(at):
        errors["scheduled_at"] = ["Give the time with its time zone or UTC offset."]
    return errors


def _save_parts(post: Post, parts: list[PartInput]) -> None:
    for position, part in enumerate(parts):
        saved = PostPart.objects.create(post=post, position=position, text=part.text)
        PartMedia.objects.bulk_create(
            PartMedia(part=saved, media=media, position=n) for n, media in enumerate(part.media)
        )


def _override_json(parts: list[PartInput] | None) -> list[dict[str, Any]] | None:
    if parts is None:
        return None
    return [{"text": p.text, "media": [m.pk for m in p.media]} for p in parts]


def cancel_post(post: Post) -> int:
    """Cancel every delivery not yet publishing; published history stays. Returns how many.

    Later queued posts on the same channels move up onto the freed slots.
    """
    with transaction.atomic():
        queued_channels = _queued_channels(post.deliveries.filter(status__in=states.CHANGEABLE))
        cancelled = states.apply(post.deliveries.all(), "cancel", next_attempt_at=None)
        if not post.deliveries.exclude(status=DeliveryStatus.CANCELLED).exists():
            Post.objects.filter(pk=post.pk).update(status=PostStatus.CANCELLED)
        _reflow_quietly(queued_channels)
    return cancelled


def _queued_channels(deliveries: Any) -> list[Channel]:
    return list(Channel.objects.filter(deliveries__in=deliveries.filter(pinned=False)).distinct())


def _reflow_quietly(channels: list[Channel]) -> None:
    # Moving up after a post leaves the queue can only need fewer slots, never more; a schedule
    # emptied meanwhile leaves the queue where it was rather than failing the cancel.
    for channel in channels:
        with contextlib.suppress(queue_flows.QueueError):
            queue_flows.reflow(channel)


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
        last_error_code="",
        last_error="",
    )


# -- changing a post ------------------------------------------------------------------------------
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
    return delivery.status in states.CHANGEABLE and not delivery.has_sent_anything()


def _why_unchanged(delivery: Delivery) -> str:
    if delivery.status in states.CHANGEABLE:
        return (
            "Part of it is already published, or Herald is confirming whether it went out; "
            "it can no longer change."
        )
    return _UNCHANGED_REASONS[DeliveryStatus(delivery.status)]


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
    deliveries = list(
        post.deliveries.select_related("channel").select_for_update(of=("self",)).order_by("pk")
    )
    changeable = [d for d in deliveries if _changeable(d)]
    unchanged = {d.pk: _why_unchanged(d) for d in deliveries if not _changeable(d)}
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


def parts_for_post(post: Post) -> list[PartContent]:
    """The post's own parts (without any channel's override)."""
    ordered_media = Prefetch("media", queryset=Media.objects.order_by("partmedia__position"))
    parts = post.parts.prefetch_related(ordered_media)
    return [PartContent(part.text, list(part.media.all())) for part in parts]


def _inputs(contents: list[PartContent]) -> list[PartInput]:
    return [PartInput(content.text, list(content.media)) for content in contents]


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
    if (timing and post.status == PostStatus.DRAFT) or (
        content and post.status == PostStatus.SCHEDULED and not membership.can_publish
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
            next_attempt_at=models.F("due_at")
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
        waiting = post.deliveries.filter(status__in=states.CHANGEABLE)
        queued_channels = _queued_channels(waiting)
        if post.status == PostStatus.DRAFT:
            post.status = PostStatus.SCHEDULED
            post.save(update_fields=["status", "updated_at"])
            states.apply(waiting, "schedule")
        moved = post.deliveries.filter(status=DeliveryStatus.SCHEDULED).update(
            due_at=now, next_attempt_at=now, pinned=True
        )
        if not moved:
            raise PostNotEditable(
                "Nothing is waiting to be published: every delivery is publishing, published, "
                "failed, missed or cancelled."
            )
        _reflow_quietly(queued_channels)
    return moved
