"""Creating a post: validate for every target network, then save it with its deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Workspace

from .. import queue as queue_flows
from ..models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Post,
    PostStatus,
)
from . import history
from .common import (
    QUEUE_FIRST,
    ComposeError,
    PartInput,
    _enqueue_all,
    _override_json,
    _save_parts,
    validate_for_channels,
)


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
        post = _save_new_post(
            membership, channels, parts, at, options, tags, overrides, draft, queue
        )
        history.record_created(membership, post, channels)
    return post


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
