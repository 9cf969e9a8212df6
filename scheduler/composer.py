"""The composer page's form: read it, fill it from a post, and check it as the server validates.

Counters, errors and previews all come from the networks' own `count_characters`, `limits` and
`validate` (the code the API and the publisher use); the page asks `check` while typing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import regex
from django.http import QueryDict
from django.utils import timezone

from accounts.models import Membership

from . import compose
from .models import Channel, Media, Post
from .networks import network_for
from .networks.base import Network, PartContent

OPTION_KEYS = ("content_warning", "visibility", "language", "reply_control", "topic_tag")
WHEN_VALUES = ("queue", "next", "now", "at", "draft", "keep")
# A line holding only "---" starts the next part (the browser sends CRLF line ends).
PART_BREAK = re.compile(r"\n[ \t]*---[ \t]*(?:\n|$)")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
GRAPHEME = regex.compile(r"\X")


@dataclass
class PartDraft:
    text: str = ""
    media: list[Media] = field(default_factory=list)

    def as_input(self) -> compose.PartInput:
        return compose.PartInput(self.text, list(self.media))


@dataclass
class ComposerForm:
    """Everything the composer holds, exactly as typed (kept whole after any error)."""

    channels: list[Channel] = field(default_factory=list)
    parts: list[PartDraft] = field(default_factory=lambda: [PartDraft()])
    overrides: dict[int, list[PartDraft]] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    tags: str = ""
    when: str = "queue"
    scheduled_at: str = ""
    draft_id: int | None = None

    @property
    def channel_ids(self) -> set[int]:
        return {channel.pk for channel in self.channels}

    def inputs(self) -> list[compose.PartInput]:
        return [part.as_input() for part in self.parts]

    def override_inputs(self) -> dict[int, list[compose.PartInput]]:
        return {
            pk: [p.as_input() for p in parts]
            for pk, parts in self.overrides.items()
            if pk in self.channel_ids
        }

    def tag_list(self) -> list[str]:
        return [tag.strip().lstrip("#")[:50] for tag in self.tags.split(",") if tag.strip()][:30]

    def clean_options(self) -> dict[str, str]:
        return {key: value for key, value in self.options.items() if value}


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_parts(part: PartDraft) -> list[PartDraft]:
    """A part whose text has `---` lines becomes several; its media stay on the first."""
    pieces = [piece.strip("\n") for piece in PART_BREAK.split(normalise(part.text))]
    return [PartDraft(pieces[0], part.media), *(PartDraft(p) for p in pieces[1:])]


def read_form(membership: Membership, data: QueryDict) -> ComposerForm:
    """The composer's fields from a POST; unknown channels and media are left out."""
    workspace = membership.workspace
    media_ids = {
        pk for key in data if key.endswith("-media") for pk in compose.form_ids(data.getlist(key))
    }
    media = Media.objects.for_workspace(workspace).in_bulk(media_ids)
    for pk, item in media.items():
        if f"alt-{pk}" in data:
            item.alt_text = normalise(str(data.get(f"alt-{pk}", ""))).strip()
    wanted = compose.form_ids(data.getlist("channels"))
    channels = Channel.objects.for_workspace(workspace).in_bulk(wanted)
    form = ComposerForm(
        channels=[channels[pk] for pk in wanted if pk in channels],
        parts=_read_parts(data, "part", media) or [PartDraft()],
        options={key: data.get(key, "").strip() for key in OPTION_KEYS},
        tags=data.get("tags", "").strip(),
        when=str(data.get("when")) if data.get("when") in WHEN_VALUES else "queue",
        scheduled_at=data.get("scheduled_at", "").strip(),
        draft_id=next(iter(compose.form_ids([str(data.get("draft_id", ""))])), None),
    )
    for channel in form.channels:
        if data.get(f"override-{channel.pk}") == "on":
            form.overrides[channel.pk] = _read_parts(data, f"override-{channel.pk}", media) or [
                PartDraft()
            ]
    return form


def _read_parts(data: QueryDict, prefix: str, media: dict[int, Media]) -> list[PartDraft]:
    parts: list[PartDraft] = []
    index = 0
    while f"{prefix}-{index}-text" in data:
        ids = compose.form_ids(data.getlist(f"{prefix}-{index}-media"))
        text = str(data.get(f"{prefix}-{index}-text", ""))
        draft = PartDraft(text, [media[i] for i in ids if i in media])
        parts.extend(split_parts(draft))
        index += 1
    return parts


def form_from_post(post: Post) -> ComposerForm:
    """A composer filled with a saved post: its channels, parts, overrides, options, tags."""
    deliveries = list(post.deliveries.select_related("channel").order_by("pk"))
    parts = [PartDraft(c.text, list(c.media)) for c in compose.parts_for_post(post)]
    overrides = {
        d.channel_id: [PartDraft(c.text, list(c.media)) for c in compose.parts_for(d)]
        for d in deliveries
        if d.override_parts
    }
    due = min((d.due_at for d in deliveries if d.due_at), default=None)
    return ComposerForm(
        channels=[d.channel for d in deliveries],
        parts=parts or [PartDraft()],
        overrides=overrides,
        options={key: str(post.options.get(key, "")) for key in OPTION_KEYS},
        tags=", ".join(post.tags),
        when="draft" if post.status == "draft" else "keep",
        scheduled_at=timezone.localtime(due).strftime("%Y-%m-%dT%H:%M") if due else "",
        draft_id=post.pk if post.status == "draft" else None,
    )


def persist_alt_texts(membership: Membership, form: ComposerForm) -> None:
    """Alt texts typed in the composer are saved with their media (even if the post fails),
    where the member may describe that media."""
    seen: dict[int, Media] = {}
    for parts in [form.parts, *form.overrides.values()]:
        for part in parts:
            seen.update({m.pk: m for m in part.media})
    for item in seen.values():
        if membership.can_change_media(item):
            Media.objects.filter(pk=item.pk).update(alt_text=item.alt_text)


# -- counters, problems and previews ----------------------------------------------------------------
@dataclass
class PartCount:
    count: int
    limit: int

    @property
    def over(self) -> int:
        return max(0, self.count - self.limit)


@dataclass
class ChannelCheck:
    channel: Channel
    parts: list[PartContent]
    counts: list[PartCount]
    problems: list[str]
    own_version: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.channel.pk,
            "network": self.channel.network,
            "label": self.channel.get_network_display(),
            "handle": self.channel.handle,
            "own_version": self.own_version,
            "parts": [{"count": c.count, "limit": c.limit, "over": c.over} for c in self.counts],
            "problems": self.problems,
        }


def check_form(form: ComposerForm) -> list[ChannelCheck]:
    """Per selected channel: each part's count against its limit and what the network refuses."""
    checks = []
    for channel in form.channels:
        network = network_for(channel)
        own = form.overrides.get(channel.pk)
        parts = [PartContent(p.text, list(p.media)) for p in (own or form.parts)]
        limit = network.limits().max_characters
        counts = [PartCount(network.count_characters(p.text), limit) for p in parts]
        problems = network.validate(parts, form.clean_options())
        checks.append(ChannelCheck(channel, parts, counts, problems, own is not None))
    return checks


def split_suggestion(form: ComposerForm, text: str) -> list[str]:
    """`text` cut at sentence (else word) boundaries into pieces every selected network accepts."""
    networks = [network_for(channel) for channel in form.channels]
    if not networks:
        return [text]

    def fits(candidate: str) -> bool:
        return all(n.count_characters(candidate) <= n.limits().max_characters for n in networks)

    return _greedy(SENTENCE_END.split(normalise(text).strip()), fits, " ")


def _greedy(units: list[str], fits: Any, joiner: str) -> list[str]:
    pieces: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if fits(candidate):
            current = candidate
            continue
        if current:
            pieces.append(current)
        if fits(unit):
            current = unit
        elif " " in unit.strip():
            words = _greedy(unit.split(" "), fits, " ")
            pieces.extend(words[:-1])
            current = words[-1]
        elif len(characters := GRAPHEME.findall(unit)) > 1:
            # One word longer than a part may be: cut between characters.
            chunks = _greedy(characters, fits, "")
            pieces.extend(chunks[:-1])
            current = chunks[-1]
        else:
            current = unit
    if current:
        pieces.append(current)
    return pieces


def limits_by_channel(channels: list[Channel]) -> dict[str, dict[str, Any]]:
    """What the page needs to check a file before uploading it, per channel id."""
    result: dict[str, dict[str, Any]] = {}
    for channel in channels:
        network: Network = network_for(channel)
        limits = network.limits()
        result[str(channel.pk)] = {
            "label": f"{channel.handle} ({channel.get_network_display()})",
            "max_media": limits.max_media,
            "max_image_bytes": limits.max_image_bytes,
            "max_video_bytes": limits.max_video_bytes,
            "types": list(limits.supported_mime_types),
            "video": limits.supports_video,
        }
    return result
