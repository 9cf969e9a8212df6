"""Serializers: validate input shapes and render rows. No workflow logic lives here."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import approvals, compose
from ..models import (
    Channel,
    ChannelStatus,
    Delivery,
    DeliveryStatus,
    Media,
    Post,
    PostPart,
    PostStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from ..networks import network_for
from ..networks.base import Limits
from ..queue import WEEKDAYS
from .fields import (
    ModelSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    UTCDateTimeField,
)


class AwareDateTimeField(UTCDateTimeField):
    """ISO 8601 with a UTC offset (or Z); a time without one is refused, never guessed."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            parsed = None
            with contextlib.suppress(ValueError):
                parsed = parse_datetime(value.strip())
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        result: datetime = super().to_internal_value(value)
        return result

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": "Give the time with its UTC offset or Z, e.g. 2026-05-01T09:30:00+02:00.",
    }


# -- me -------------------------------------------------------------------------------------------------
class UserSerializer(serializers.Serializer):
    id = StrictIntegerField()
    email = serializers.EmailField()
    timezone = StrictCharField()


class WorkspaceSerializer(serializers.Serializer):
    id = StrictIntegerField()
    name = StrictCharField()
    slug = serializers.SlugField()
    timezone = StrictCharField()


class TokenInfoSerializer(serializers.Serializer):
    id = StrictIntegerField()
    name = StrictCharField()
    scope = serializers.ChoiceField(choices=["read", "write"])
    created_at = UTCDateTimeField()
    last_used_at = UTCDateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    user = UserSerializer()
    workspace = WorkspaceSerializer()
    role = serializers.ChoiceField(choices=["owner", "admin", "editor", "contributor", "viewer"])
    token = TokenInfoSerializer()


# -- channels -------------------------------------------------------------------------------------------
class LimitsSerializer(serializers.Serializer):
    max_characters = StrictIntegerField()
    max_media = StrictIntegerField()
    characters_reserved_per_url = StrictIntegerField(allow_null=True)
    max_image_bytes = StrictIntegerField(allow_null=True)
    max_video_bytes = StrictIntegerField(allow_null=True)
    max_alt_text = StrictIntegerField(allow_null=True)
    supported_mime_types = serializers.ListField(child=StrictCharField())
    supports_video = StrictBooleanField()
    supports_threads = StrictBooleanField()
    supports_content_warning = StrictBooleanField()
    max_links = StrictIntegerField(allow_null=True)


class ChannelSerializer(ModelSerializer):
    status = serializers.ChoiceField(choices=ChannelStatus.choices)
    paused = serializers.SerializerMethodField()
    limits = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "id",
            "network",
            "name",
            "handle",
            "display_name",
            "avatar_url",
            "profile_url",
            "server_url",
            "status",
            "status_detail",
            "paused",
            "timezone",
            "limits",
            "created_at",
            "last_verified_at",
        ]

    def get_paused(self, channel: Channel) -> bool:
        return channel.status == ChannelStatus.PAUSED

    @extend_schema_field(LimitsSerializer)
    def get_limits(self, channel: Channel) -> dict[str, Any]:
        # The cached limits only: listing channels never calls the networks.
        if channel.limits:
            return Limits.from_dict(channel.limits).as_dict()
        return network_for(channel).default_limits().as_dict()


class ChannelUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False, allow_blank=True)
    timezone = StrictCharField(max_length=64, required=False)
    paused = StrictBooleanField(required=False)

    def validate_timezone(self, value: str) -> str:
        from accounts.models import validate_timezone

        try:
            validate_timezone(value)
        except Exception as exc:
            raise serializers.ValidationError(
                f"“{value}” is not an IANA time zone, e.g. Europe/Berlin."
            ) from exc
        return value


# -- schedule and queue ------------------------------------------------------------------------------------
def _day_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", max_length=5),
        required=False,
        max_length=48,
        help_text="Times as HH:MM (24-hour) in the channel's time zone",
    )


class SlotsSerializer(serializers.Serializer):
    mon = _day_field()
    tue = _day_field()
    wed = _day_field()
    thu = _day_field()
    fri = _day_field()
    sat = _day_field()
    sun = _day_field()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(WEEKDAYS))
            if unknown:
                raise serializers.ValidationError(
                    {day: [f"Not a weekday; use {', '.join(WEEKDAYS)}."] for day in unknown}
                )
        return super().to_internal_value(data)


class ScheduleSerializer(serializers.Serializer):
    timezone = StrictCharField(max_length=64, help_text="IANA time zone, e.g. Europe/Berlin")
    slots = SlotsSerializer()


class QueueItemSerializer(serializers.Serializer):
    position = StrictIntegerField()
    delivery = StrictIntegerField()
    post = StrictIntegerField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    due_at = UTCDateTimeField()
    text = StrictCharField(help_text="The start of the post's text")


class QueueSerializer(serializers.Serializer):
    channel = StrictIntegerField()
    timezone = StrictCharField()
    items = QueueItemSerializer(many=True)
    next_free_slots = serializers.ListField(child=UTCDateTimeField())


class ReorderSerializer(serializers.Serializer):
    delivery_ids = serializers.ListField(
        child=StrictIntegerField(min_value=1),
        min_length=1,
        max_length=1000,
        help_text="Queued deliveries in their new order; unlisted ones follow in their old order",
    )


# -- media -----------------------------------------------------------------------------------------------
class MediaSerializer(ModelSerializer):
    class Meta:
        model = Media
        fields = ["id", "kind", "mime_type", "width", "height", "size", "alt_text", "created_at"]


class MediaUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JPEG, PNG, WebP, GIF, MP4, MOV or WebM")
    alt_text = StrictCharField(required=False, allow_blank=True, max_length=5000)


class MediaUpdateSerializer(serializers.Serializer):
    alt_text = StrictCharField(allow_blank=True, max_length=5000, required=False)


# -- posts -----------------------------------------------------------------------------------------------
class PartInputSerializer(serializers.Serializer):
    text = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=100_000, default=""
    )
    media = serializers.ListField(
        child=StrictIntegerField(min_value=1), required=False, max_length=20, default=list
    )


class OverrideSerializer(serializers.Serializer):
    parts = serializers.ListField(child=PartInputSerializer(), min_length=1, max_length=50)


class OptionsSerializer(serializers.Serializer):
    content_warning = StrictCharField(required=False, allow_blank=True, max_length=1000)
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*(\s*,\s*[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)*$",
        required=False,
        allow_blank=True,
        max_length=50,
        help_text="Language tag, e.g. en or pt-BR (Bluesky accepts several: en, de)",
    )
    sensitive = StrictBooleanField(required=False, help_text="Mastodon: mark media sensitive")
    visibility = serializers.ChoiceField(
        choices=["public", "unlisted", "private", "direct"], required=False, help_text="Mastodon"
    )
    reply_control = serializers.ChoiceField(
        choices=[
            "everyone",
            "accounts_you_follow",
            "mentioned_only",
            "parent_post_author_only",
            "followers_only",
        ],
        required=False,
        help_text="Threads: who may reply",
    )
    topic_tag = StrictCharField(
        required=False, allow_blank=True, max_length=50, help_text="Threads: one topic tag"
    )


class _PostContentSerializer(serializers.Serializer):
    text = StrictCharField(
        required=False, trim_whitespace=False, allow_blank=True, max_length=100_000
    )
    parts = serializers.ListField(
        child=PartInputSerializer(), required=False, min_length=1, max_length=50
    )
    overrides = serializers.DictField(
        child=OverrideSerializer(allow_null=True),
        required=False,
        help_text="Per-channel parts, keyed by channel id (null drops a channel's override)",
    )
    options = OptionsSerializer(required=False)
    tags = serializers.ListField(
        child=StrictCharField(max_length=50), required=False, max_length=30
    )
    scheduled_at = AwareDateTimeField(
        required=False, allow_null=True, help_text="For when=at: ISO 8601 with offset"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if "text" in data and "parts" in data:
            raise serializers.ValidationError({"parts": ["Send either text or parts, not both."]})
        for key in data.get("overrides") or {}:
            if not (key.isascii() and key.isdigit() and len(key) <= 18):  # "²" is a digit too
                raise serializers.ValidationError({"overrides": [f"“{key}” is not a channel id."]})
        try:  # the pages parse "when" through the same function
            compose.timing(data.get("when"), data.get("scheduled_at"))
        except compose.ComposeError as error:
            raise serializers.ValidationError(error.errors) from error
        return data


class PostCreateSerializer(_PostContentSerializer):
    channels = serializers.ListField(
        child=StrictIntegerField(min_value=1), min_length=1, max_length=50
    )
    when = serializers.ChoiceField(
        choices=list(compose.WHEN_CHOICES.items()),
        help_text="; ".join(f"`{key}`: {text}" for key, text in compose.WHEN_CHOICES.items()),
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data = super().validate(data)
        if "text" not in data and "parts" not in data:
            raise serializers.ValidationError({"text": ["Send text, or parts for a thread."]})
        if len(set(data["channels"])) != len(data["channels"]):
            raise serializers.ValidationError({"channels": ["List each channel once."]})
        extra = {int(key) for key in data.get("overrides") or {}} - set(data["channels"])
        if extra:
            raise serializers.ValidationError(
                {"overrides": ["Overrides may only name channels in `channels`."]}
            )
        return data


class PostUpdateSerializer(_PostContentSerializer):
    when = serializers.ChoiceField(
        choices=list(compose.WHEN_CHOICES.items()),
        required=False,
        help_text="Leave out to keep the time. "
        + "; ".join(f"`{key}`: {text}" for key, text in compose.WHEN_CHOICES.items()),
    )


class PartSerializer(serializers.Serializer):
    text = StrictCharField()
    media = MediaSerializer(many=True)


class PublishedPartSerializer(serializers.Serializer):
    remote_id = StrictCharField()
    url = StrictCharField(allow_blank=True)


class OverridePartSerializer(serializers.Serializer):
    text = StrictCharField(allow_blank=True)
    media = serializers.ListField(child=StrictIntegerField())


class DeliveryErrorSerializer(serializers.Serializer):
    code = StrictCharField()
    message = StrictCharField()


class DeliverySerializer(ModelSerializer):
    network = StrictCharField(source="channel.network")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    queued = serializers.SerializerMethodField()
    parts = serializers.SerializerMethodField()
    override = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id",
            "post",
            "channel",
            "network",
            "status",
            "due_at",
            "queued",
            "next_attempt_at",
            "published_at",
            "attempts",
            "error",
            "parts",
            "override",
        ]

    def get_queued(self, delivery: Delivery) -> bool:
        return not delivery.pinned

    @extend_schema_field(PublishedPartSerializer(many=True))
    def get_parts(self, delivery: Delivery) -> list[dict[str, str]]:
        return [
            {"remote_id": str(state["remote_id"]), "url": state.get("url") or ""}
            for state in delivery.part_states
            if state.get("remote_id")
        ]

    @extend_schema_field(OverridePartSerializer(many=True, allow_null=True))
    def get_override(self, delivery: Delivery) -> list[dict[str, Any]] | None:
        if delivery.override_parts is None:
            return None
        return [
            {"text": part.get("text", ""), "media": list(part.get("media", []))}
            for part in delivery.override_parts
        ]

    @extend_schema_field(DeliveryErrorSerializer(allow_null=True))
    def get_error(self, delivery: Delivery) -> dict[str, str] | None:
        if not (delivery.last_error_code or delivery.last_error):
            return None
        return {"code": delivery.last_error_code or "error", "message": delivery.error_message()}


class AuthorSerializer(serializers.Serializer):
    id = StrictIntegerField()
    email = serializers.EmailField()


class ApprovalEntrySerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["submitted", "approved", "rejected"])
    actor = AuthorSerializer(allow_null=True)
    at = UTCDateTimeField(help_text="When it happened")
    reason = StrictCharField(allow_blank=True, help_text="Why it was rejected")
    scheduled_at = UTCDateTimeField(
        allow_null=True, help_text="The new time an approval chose, if it changed the time"
    )


class ApprovalSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["not_required", "pending", "approved", "rejected"],
        help_text="pending: awaits an editor, admin or owner; rejected: back to its author",
    )
    history = ApprovalEntrySerializer(many=True)


class PostListSerializer(serializers.ListSerializer):
    """A list of posts loads the parts of all of them at once."""

    def to_representation(self, data: Any) -> list[Any]:
        posts = list(data)
        load_part_rows(posts)
        return super().to_representation(posts)


def load_part_rows(posts: list[Post]) -> None:
    """Give each post `part_rows`: its parts in order as `{"text", "media"}`, the media as rows
    of MediaSerializer's fields, in order. Two queries for a whole list, of plain rows: a page
    of 200 posts builds no model instance for its parts and media."""
    for post in posts:
        post.part_rows = []
    by_post = {post.pk: post for post in posts}
    by_part: dict[int, list[dict[str, Any]]] = {}
    parts = PostPart.objects.filter(post_id__in=by_post).order_by("post_id", "position")
    for part_id, post_id, text in parts.values_list("id", "post_id", "text"):
        by_part[part_id] = []
        by_post[post_id].part_rows.append({"text": text, "media": by_part[part_id]})
    if by_part:
        media = (
            Media.objects.filter(partmedia__part_id__in=by_part)
            .order_by("partmedia__position", "partmedia__pk")
            .values(*MediaSerializer.Meta.fields, part_id=F("partmedia__part_id"))
        )
        for row in media:
            by_part[row.pop("part_id")].append(row)


class PostSerializer(ModelSerializer):
    status = serializers.ChoiceField(choices=PostStatus.choices)
    author = AuthorSerializer(allow_null=True)
    approval = serializers.SerializerMethodField()
    parts = serializers.SerializerMethodField()
    deliveries = DeliverySerializer(many=True, source="delivery_list")
    options = OptionsSerializer()
    tags = serializers.ListField(child=StrictCharField())

    class Meta:
        model = Post
        list_serializer_class = PostListSerializer
        fields = [
            "id",
            "status",
            "author",
            "approval",
            "parts",
            "options",
            "tags",
            "deliveries",
            "created_at",
            "updated_at",
        ]

    def _nested(self, serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
        """One instance of a nested serializer for every post of a list: building a
        serializer's fields costs more than using them, so a list of 200 posts builds them once."""
        cache = self.__dict__.setdefault("_nested_serializers", {})
        if serializer_class not in cache:
            cache[serializer_class] = serializer_class()
        return cache[serializer_class]

    @extend_schema_field(ApprovalSerializer)
    def get_approval(self, post: Post) -> dict[str, Any]:
        entries = approvals.history(post)
        return self._nested(ApprovalSerializer).to_representation(
            {
                "state": approvals.state(post, entries),
                "history": [
                    {
                        "action": entry.verb,
                        "actor": entry.actor,
                        "at": entry.created_at,
                        "reason": entry.changes.get("reason", ""),
                        "scheduled_at": entry.changes.get("at"),
                    }
                    for entry in entries
                ],
            }
        )

    def to_representation(self, post: Post) -> dict[str, Any]:
        if not hasattr(post, "part_rows"):  # one post alone; a list loads them all at once
            load_part_rows([post])
        return super().to_representation(post)

    @extend_schema_field(PartSerializer(many=True))
    def get_parts(self, post: Post) -> list[dict[str, Any]]:
        media_field = self._nested(MediaSerializer)
        return [
            {
                "text": part["text"],
                "media": [media_field.to_representation(m) for m in part["media"]],
            }
            for part in post.part_rows
        ]


class NotChangedSerializer(serializers.Serializer):
    delivery = StrictIntegerField()
    channel = StrictIntegerField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    reason = StrictCharField()


class PostUpdateResultSerializer(serializers.Serializer):
    post = PostSerializer()
    not_changed = NotChangedSerializer(
        many=True, help_text="Deliveries that could not change, and why"
    )


class ShareNowResultSerializer(serializers.Serializer):
    shared = StrictIntegerField(help_text="How many deliveries were brought forward")
    post = PostSerializer()


# -- webhooks --------------------------------------------------------------------------------------------
class WebhookSerializer(ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = StrictCharField(
        allow_null=True,
        help_text="Signs every request; shown only in this answer. Null in a replay of it "
        "(same Idempotency-Key): Herald does not keep the secret anywhere readable, so if the "
        "first answer was lost, delete the webhook and create it again.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookCreateSerializer(serializers.Serializer):
    url = StrictCharField(max_length=1000, help_text="An https:// address that accepts POST")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1, max_length=10
    )


class WebhookDeliverySerializer(ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_id",
            "status",
            "attempts",
            "next_attempt_at",
            "response_status",
            "response_excerpt",
            "error",
            "created_at",
            "delivered_at",
        ]
