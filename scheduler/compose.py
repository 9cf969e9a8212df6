"""Creating, scheduling, cancelling and retrying posts: the workflows the UI and the API share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from accounts.models import Membership, Workspace

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
    ordered_media = Prefetch("media", queryset=Media.objects.order_by("partmedia__position"))
    parts = delivery.post.parts.prefetch_related(ordered_media)
    return [PartContent(part.text, list(part.media.all())) for part in parts]


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


@transaction.atomic
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
) -> Post:
    """Validate for every target network, then save the post with one delivery per channel.

    `at` is when to publish (None with draft=True keeps it a draft). Raises ComposeError with
    per-field or per-channel messages; nothing is saved then.
    """
    workspace = membership.workspace
    options = options or {}
    errors = _check_input(workspace, channels, parts, at, draft)
    if not errors:
        errors = validate_for_channels(channels, parts, options, overrides)
    if errors:
        raise ComposeError(errors)
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
    Delivery.objects.bulk_create(
        Delivery(
            workspace=workspace,
            post=post,
            channel=channel,
            status=delivery_status,
            due_at=at,
            next_attempt_at=at if delivery_status == DeliveryStatus.SCHEDULED else None,
            pinned=True,
            override_parts=_override_json((overrides or {}).get(channel.pk)),
        )
        for channel in channels
    )
    return post


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
    """Cancel every delivery not yet publishing; published history stays. Returns how many."""
    with transaction.atomic():
        cancelled = states.apply(post.deliveries.all(), "cancel", next_attempt_at=None)
        if not post.deliveries.exclude(status=DeliveryStatus.CANCELLED).exists():
            Post.objects.filter(pk=post.pk).update(status=PostStatus.CANCELLED)
    return cancelled


def retry_delivery(delivery: Delivery, *, at: datetime | None = None) -> None:
    """Put a failed or missed delivery back in the schedule, now or at `at`.

    Raises IllegalTransition if the delivery is not failed or missed.
    """
    states.transition(
        delivery,
        "retry",
        next_attempt_at=at or timezone.now(),
        attempts=0,
        last_error_code="",
        last_error="",
    )
