"""What creating, changing and acting on posts share: inputs, errors, validation, queue helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from .. import queue as queue_flows
from .. import states
from ..models import (
    Channel,
    Delivery,
    Media,
    PartMedia,
    Post,
    PostPart,
)
from ..networks import network_for
from ..networks.base import PartContent


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


def form_ids(values: Iterable[str]) -> list[int]:
    """The database ids among form or query values; anything else is dropped.

    Plain ASCII numbers that fit a bigint only: "²" passes str.isdigit() but not int(), and
    40 digits pass int() but overflow the column; either was a 500.
    """
    return [
        int(value) for value in values if value.isascii() and value.isdigit() and len(value) <= 18
    ]


@dataclass
class PartInput:
    text: str
    media: list[Media] = field(default_factory=list)


def parts_for(delivery: Delivery) -> list[PartContent]:
    """What this delivery publishes: the channel's override if any, else the post's parts."""
    return parts_for_deliveries([delivery])[delivery.pk]


def parts_for_deliveries(deliveries: Iterable[Delivery]) -> dict[int, list[PartContent]]:
    """`parts_for` of many deliveries (a publish batch), in at most three queries in all."""
    deliveries = list(deliveries)
    wanted = {
        pk for d in deliveries for part in d.override_parts or () for pk in part.get("media", [])
    }
    media = Media.objects.in_bulk(wanted) if wanted else {}
    post_ids = {d.post_id for d in deliveries if not d.override_parts}
    by_post: dict[int, list[PartContent]] = {pk: [] for pk in post_ids}
    if post_ids:
        parts = _with_ordered_media(PostPart.objects.filter(post_id__in=post_ids))
        for part in parts.order_by("post_id", "position"):
            by_post[part.post_id].append(PartContent(part.text, list(part.media.all())))
    contents: dict[int, list[PartContent]] = {}
    for d in deliveries:
        if not d.override_parts:
            contents[d.pk] = by_post[d.post_id]
            continue
        # An override names media by id: only the workspace's own are ever attached.
        own = {pk: m for pk, m in media.items() if m.workspace_id == d.workspace_id}
        contents[d.pk] = [
            PartContent(
                part.get("text", ""), [own[pk] for pk in part.get("media", []) if pk in own]
            )
            for part in d.override_parts
        ]
    return contents


def parts_for_post(post: Post) -> list[PartContent]:
    """The post's own parts (without any channel's override)."""
    return [
        PartContent(part.text, list(part.media.all())) for part in _with_ordered_media(post.parts)
    ]


def _with_ordered_media(parts: Any) -> Any:
    return parts.prefetch_related(
        Prefetch("media", queryset=Media.objects.order_by("partmedia__position"))
    )


def _inputs(contents: list[PartContent]) -> list[PartInput]:
    return [PartInput(content.text, list(content.media)) for content in contents]


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


# -- changing a post ------------------------------------------------------------------------------
# Deliveries whose content and time may still change: nothing has been sent for them yet (the
# rule lives in states.py; the composer's callers keep reading it here).
CHANGEABLE = states.CHANGEABLE


def _queued_channels(deliveries: Any) -> list[Channel]:
    return list(Channel.objects.filter(deliveries__in=deliveries.filter(pinned=False)).distinct())


def _reflow_quietly(channels: list[Channel]) -> None:
    # Moving up after a post leaves the queue can only need fewer slots, never more; a schedule
    # emptied meanwhile leaves the queue where it was rather than failing the cancel.
    for channel in channels:
        with contextlib.suppress(queue_flows.QueueError):
            queue_flows.reflow(channel)


def _enqueue_all(deliveries: list[Delivery], *, first: bool) -> None:
    errors: dict[str, list[str]] = {}
    for delivery in deliveries:
        try:
            queue_flows.enqueue(delivery, first=first)
        except queue_flows.QueueError as error:
            errors[str(delivery.channel_id)] = [str(error)]
    if errors:
        raise ComposeError(errors)
