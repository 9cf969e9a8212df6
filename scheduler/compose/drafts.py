"""Saving a draft as it is typed: no network validation, channels may still change."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Membership

from ..models import Channel, Delivery, DeliveryStatus, Post, PostStatus
from .common import ComposeError, PartInput, PostNotEditable, _override_json, _save_parts


@transaction.atomic
def save_draft(
    membership: Membership,
    post: Post | None,
    *,
    channels: list[Channel],
    parts: list[PartInput],
    overrides: dict[int, list[PartInput]],
    options: dict[str, Any],
    tags: list[str],
) -> Post:
    """Create (post=None) or overwrite a draft with exactly what the composer holds.

    Nothing is checked against the networks: a draft may be over a limit while it is written.
    Raises PostNotEditable when `post` is no longer a draft, ComposeError for a foreign channel.
    """
    if any(channel.workspace_id != membership.workspace_id for channel in channels):
        raise ComposeError({"channels": ["One of the channels does not exist."]})
    if post is None:
        post = Post.objects.create(
            workspace=membership.workspace, author=membership.user, status=PostStatus.DRAFT
        )
    else:
        post = Post.objects.select_for_update().get(pk=post.pk)
        if post.status != PostStatus.DRAFT:
            raise PostNotEditable("This post is no longer a draft; open it again to change it.")
    post.options, post.tags = options, tags
    post.save()
    post.parts.all().delete()
    _save_parts(post, parts)
    wanted = {channel.pk for channel in channels}
    post.deliveries.exclude(channel_id__in=wanted).delete()
    have = set(post.deliveries.values_list("channel_id", flat=True))
    Delivery.objects.bulk_create(
        Delivery(
            workspace=membership.workspace,
            post=post,
            channel_id=pk,
            status=DeliveryStatus.HELD,
            pinned=True,
        )
        for pk in wanted - have
    )
    for channel in channels:
        post.deliveries.filter(channel=channel).update(
            override_parts=_override_json(overrides.get(channel.pk))
        )
    return post
