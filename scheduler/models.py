"""Channels, posts, deliveries, attempts and media.

Every row belongs to one workspace and every queryset offers `for_workspace(ws)`: views and the
API never look a row up without it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import Case, Q, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import Workspace, validate_timezone

from . import hooks, states
from .crypto import EncryptedJSONField
from .networks import network_choices
from .states import DeliveryStatus
from .timefmt import moment_text

logger = logging.getLogger(__name__)


def web_link(url: str) -> str:
    """`url` if it is an http(s) URL safe to put in a link, else "" (`javascript:` and friends)."""
    url = url.strip()
    scheme, _, rest = url.partition(":")
    if scheme.lower() in ("http", "https") and rest.startswith("//") and "\\" not in url:
        return url
    return ""


class WorkspaceQuerySet(models.QuerySet):
    def for_workspace(self, workspace: Workspace | int) -> WorkspaceQuerySet:
        return self.filter(workspace=workspace)


class ChannelStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    PAUSED = "paused", "Paused"


class Channel(models.Model):
    """One connected account on one network."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channels")
    network = models.CharField(max_length=16, choices=network_choices())
    server_url = models.URLField(help_text="Mastodon instance or Bluesky PDS")
    remote_id = models.CharField(max_length=255, help_text="Account id on the network (or DID)")
    handle = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, blank=True)
    name = models.CharField(
        max_length=100, blank=True, help_text="Label chosen in Herald; empty shows the display name"
    )
    avatar_url = models.URLField(max_length=1000, blank=True)
    profile_url = models.URLField(max_length=1000, blank=True)
    credentials = EncryptedJSONField(default=dict, editable=False)
    status = models.CharField(
        max_length=20, choices=ChannelStatus.choices, default=ChannelStatus.ACTIVE
    )
    status_detail = models.TextField(blank=True, help_text="Why the channel needs attention")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    schedule = models.JSONField(default=dict, blank=True, help_text='{"mon": ["09:00"], ...}')
    limits = models.JSONField(default=dict, blank=True, editable=False)
    limits_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_refreshed_at = models.DateTimeField(null=True, blank=True)
    credentials_version = models.PositiveIntegerField(default=0, editable=False)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "network", "server_url", "remote_id"],
                name="one_channel_per_account_per_workspace",
            )
        ]

    def __str__(self) -> str:
        return f"{self.handle} ({self.get_network_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == ChannelStatus.ACTIVE

    def mark_needs_reconnect(self, reason: str) -> bool:
        """Flag an active channel for reconnecting and notify once. Returns True if it changed."""
        changed = Channel.objects.filter(pk=self.pk, status=ChannelStatus.ACTIVE).update(
            status=ChannelStatus.NEEDS_RECONNECT, status_detail=reason
        )
        self.status, self.status_detail = ChannelStatus.NEEDS_RECONNECT, reason
        if changed:
            logger.warning("channel %s needs reconnect: %s", self.pk, reason)
            transaction.on_commit(
                lambda: hooks.channel_needs_reconnect.send(sender=Channel, channel=self)
            )
        return bool(changed)

    @property
    def label(self) -> str:
        """What Herald calls the channel: its chosen name, else display name, else handle."""
        return self.name or self.display_name or self.handle


class MastodonApp(models.Model):
    """Herald's OAuth app on one Mastodon instance, registered once and reused."""

    base_url = models.URLField(unique=True)
    client_id = models.CharField(max_length=255)
    secrets = EncryptedJSONField(default=dict, editable=False)
    redirect_uri = models.URLField(max_length=1000)
    scopes = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.base_url


class MediaKind(models.TextChoices):
    IMAGE = "image", "Image"
    GIF = "gif", "Animated GIF"
    VIDEO = "video", "Video"


class Media(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="media")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file = models.FileField(upload_to="uploads/%Y/%m/")
    kind = models.CharField(max_length=8, choices=MediaKind.choices)
    mime_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    alt_text = models.TextField(blank=True)
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the file")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "media"

    def __str__(self) -> str:
        return f"{self.kind} {self.file.name}"


class PostStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    SCHEDULED = "scheduled", "Scheduled"
    CANCELLED = "cancelled", "Cancelled"


class Post(models.Model):
    """One composition; its outcome is derived from its deliveries."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="posts"
    )
    status = models.CharField(max_length=20, choices=PostStatus.choices, default=PostStatus.DRAFT)
    tags = models.JSONField(default=list, blank=True)
    # Network options: content_warning, language, visibility, sensitive, reply_control, topic_tag.
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()
    # Set by the API for lists: deliveries prefetched into a plain list (post_queryset), the
    # parts as plain rows (load_part_rows).
    delivery_list: list[Delivery]
    part_rows: list[dict[str, Any]]

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        first = self.parts.first()
        return (first.text[:60] if first else "") or f"Post {self.pk}"


class PostPart(models.Model):
    """One part of a post; a thread has several, published as replies in order."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="parts")
    position = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)
    media = models.ManyToManyField(Media, through="PartMedia", blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["post", "position"], name="one_part_per_position")
        ]

    def __str__(self) -> str:
        return f"{self.post_id}#{self.position}"


class PartMedia(models.Model):
    part = models.ForeignKey(PostPart, on_delete=models.CASCADE)
    media = models.ForeignKey(Media, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.part_id}: media {self.media_id}"


def parts_sent(part_states: list[dict[str, Any]]) -> bool:
    return any(state.get("remote_id") or state.get("in_flight") for state in part_states)


class DeliveryQuerySet(WorkspaceQuerySet):
    def due(self, horizon: datetime) -> DeliveryQuerySet:
        return self.filter(status=DeliveryStatus.SCHEDULED, next_attempt_at__lte=horizon)

    def lease_expired(self, now: datetime) -> DeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PUBLISHING, claimed_until__lt=now)

    def update_each(self, deliveries: list[Delivery], fields: list[str]) -> int:
        """Write `fields` of each of `deliveries` (those in this queryset) in one UPDATE; returns
        the rows written. Like `bulk_update`, but cheaper for a publish batch, whose writes share
        most of their values: a field holding one value in every instance is set plainly, and
        the others per row, from one JSON object keyed by id on PostgreSQL (elsewhere by CASE
        on the id, whose branches cost the ORM far more than the database)."""
        if not deliveries:
            return 0
        connection = connections[self.db]
        values: dict[str, Any] = {}
        for name in fields:
            field = Delivery._meta.get_field(name)
            assert isinstance(field, models.Field)
            first = getattr(deliveries[0], name)
            if all(getattr(d, name) == first for d in deliveries[1:]):
                values[name] = first
            elif connection.vendor == "postgresql":
                values[name] = _per_row(field, deliveries, connection)
            else:
                values[name] = Case(
                    *(
                        When(pk=d.pk, then=Value(getattr(d, name), output_field=field))
                        for d in deliveries
                    ),
                    output_field=field,
                )
        return self.filter(pk__in=[d.pk for d in deliveries]).update(**values)


def _per_row(field: models.Field[Any, Any], rows: list[Any], connection: Any) -> RawSQL:
    """Each row's own value of `field`, looked up by id in one JSON parameter (PostgreSQL)."""
    by_id = {}
    for row in rows:
        value = getattr(row, field.attname)
        plain = value is None or isinstance(field, models.JSONField)
        by_id[str(row.pk)] = value if plain else field.value_to_string(row)
    row_id = f"{connection.ops.quote_name(type(rows[0])._meta.db_table)}.id::text"
    if isinstance(field, models.JSONField):
        sql = f"(%s::jsonb -> {row_id})"
    else:
        sql = f"CAST((%s::jsonb ->> {row_id}) AS {field.cast_db_type(connection)})"
    return RawSQL(sql, [json.dumps(by_id)], output_field=field)


class Delivery(models.Model):
    """The post on one channel, moving through the state machine in `scheduler.states`."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="deliveries")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    # [{"text": ..., "media": [ids]}] replacing the post's parts on this channel, or null.
    override_parts = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.HELD
    )
    due_at = models.DateTimeField(null=True, blank=True)
    pinned = models.BooleanField(default=True, help_text="Custom time; queued posts re-flow")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    # Runs started (a run whose worker died counts too: repeated crashes end the retries).
    attempts = models.PositiveIntegerField(default=0)
    # Transient errors the network answered in a row: the retry backoff doubles with each. A
    # run that never finished is not one, so a crash does not make the next retry wait longer.
    failures = models.PositiveSmallIntegerField(default=0)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    # One dict per part: the idempotency handle, in_flight flag, remote id and URL.
    part_states = models.JSONField(default=list, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["post", "channel"], name="one_delivery_per_channel")
        ]
        indexes = [
            # The dispatch tick's two scans stay index-only however many rows are history.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="scheduled"),
                name="delivery_due_idx",
            ),
            models.Index(
                fields=["claimed_until"],
                condition=Q(status="publishing"),
                name="delivery_lease_idx",
            ),
            models.Index(
                fields=["due_at"],
                condition=Q(status="scheduled"),
                name="delivery_catch_up_idx",
            ),
            models.Index(fields=["channel", "status", "due_at"], name="delivery_channel_idx"),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} of post {self.post_id} to channel {self.channel_id}"

    @property
    def remote_urls(self) -> list[str]:
        """Links to the published parts; only http(s) ones (a server's answer is not trusted)."""
        urls = (web_link(state.get("url") or "") for state in self.part_states)
        return [url for url in urls if url]

    def has_sent_anything(self) -> bool:
        """True once a part is live, or was sent without a known outcome."""
        return parts_sent(self.part_states)

    def can_retry(self) -> bool:
        return self.status in states.RETRYABLE

    def error_message(self) -> str:
        """The last error, and when Herald tries again (in the active zone: the reader's)."""
        if self.status == DeliveryStatus.SCHEDULED and self.last_error and self.next_attempt_at:
            return (
                f"{self.last_error} Herald will try again at {moment_text(self.next_attempt_at)}."
            )
        return self.last_error

    def can_cancel(self) -> bool:
        return self.status in states.CHANGEABLE

    def lateness(self) -> float | None:
        if self.published_at and self.due_at:
            return (self.published_at - self.due_at).total_seconds()
        return None


class AttemptOutcome(models.TextChoices):
    PUBLISHED = "published", "Published"
    RETRY = "retry", "Will retry"
    RATE_LIMITED = "rate_limited", "Rate limited"
    FAILED = "failed", "Failed"
    NEEDS_RECONNECT = "needs_reconnect", "Channel needs reconnect"
    LEASE_LOST = "lease_lost", "Taken over by another worker"


class DeliveryAttempt(models.Model):
    """One try at publishing a delivery."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    part_index = models.PositiveSmallIntegerField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class EngineHeartbeat(models.Model):
    """When a periodic job last ran; /healthz reads it."""

    name = models.CharField(max_length=64, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"

    @classmethod
    def touch(cls, name: str) -> None:
        """Record that `name` ran now: one UPDATE (an INSERT the first time)."""
        now = timezone.now()
        if not cls.objects.filter(name=name).update(beat_at=now):
            cls.objects.get_or_create(name=name, defaults={"beat_at": now})


class IdempotencyRecord(models.Model):
    """An API POST made with an Idempotency-Key, and the response it got.

    The unique constraint makes the first request to insert the key the one that acts; a repeat
    gets the stored response, a concurrent duplicate waits for it or gets 409.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    # Null while the first request is still running; `locked_until` lets a crashed one expire.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user", "key"], name="one_request_per_idempotency_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status or 'in progress'})"


class WebhookEvent(models.TextChoices):
    DELIVERY_PUBLISHED = "delivery.published", "A delivery was published"
    DELIVERY_FAILED = "delivery.failed", "A delivery failed"
    DELIVERY_MISSED = "delivery.missed", "A delivery was missed"
    CHANNEL_NEEDS_RECONNECT = "channel.needs_reconnect", "A channel needs reconnecting"
    POST_SUBMITTED = "post.submitted", "A post was submitted for approval"
    POST_APPROVED = "post.approved", "A post was approved"
    POST_REJECTED = "post.rejected", "A post was rejected"


class Webhook(models.Model):
    """An HTTPS endpoint told about a workspace's events, signed with its own secret."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhooks")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    url = models.URLField(max_length=1000)
    events = models.JSONField(default=list, help_text="Event names this webhook receives")
    secrets = EncryptedJSONField(default=dict, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return str(self.secrets.get("secret", ""))


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook: the log `GET /webhooks/{id}/deliveries` shows."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    event_id = models.UUIDField(help_text="Same for every webhook told about one event")
    payload = models.JSONField()
    status = models.CharField(
        max_length=10,
        choices=WebhookDeliveryStatus.choices,
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to webhook {self.webhook_id} ({self.status})"


class ActivityVerb(models.TextChoices):
    CREATED = "created", "created"
    EDITED = "edited", "edited"
    SUBMITTED = "submitted", "submitted for approval"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"
    SCHEDULED = "scheduled", "scheduled"
    RESCHEDULED = "rescheduled", "rescheduled"
    CANCELLED = "cancelled", "cancelled"
    PUBLISHED = "published", "published"
    FAILED = "failed", "failed"
    MISSED = "missed", "missed"
    RETRIED = "retried", "retried"
    COMMENTED = "commented", "commented on"
    CONNECTED = "connected", "connected"
    RECONNECTED = "reconnected", "reconnected"
    NEEDS_RECONNECT = "needs_reconnect", "needs reconnecting"
    PAUSED = "paused", "paused"
    RESUMED = "resumed", "resumed"
    REMOVED = "removed", "removed"
    INVITED = "invited", "invited"
    JOINED = "joined", "joined"
    ROLE_CHANGED = "role_changed", "changed the role of"
    LEFT = "left", "left"


class Activity(models.Model):
    """One thing that happened in a workspace: who did what to which post, channel or member.

    `changes` holds what the entry needs to be read later even if its subject is deleted
    (a channel's handle, an invited address, a text before and after an edit).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="activity")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    verb = models.CharField(max_length=20, choices=ActivityVerb.choices)
    post = models.ForeignKey(
        Post, on_delete=models.SET_NULL, null=True, blank=True, related_name="activity"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="activity"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person an invitation, role change or removal is about",
    )
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "activity"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-id"], name="activity_workspace_idx")]

    def __str__(self) -> str:
        return f"{self.actor or 'Herald'} {self.verb} ({self.created_at:%Y-%m-%d %H:%M})"


class Comment(models.Model):
    """A note on a post by a workspace member; @mentions notify the members named."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="comments")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on post {self.post_id}"


class CalendarFeed(models.Model):
    """One member's private iCalendar feed of a workspace's posts, reached by a secret URL.

    Lookups go through a SHA-256 hash of the token; the token itself is kept encrypted only so
    its owner can copy the URL again.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    secrets = EncryptedJSONField(default=dict, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="one_feed_per_member")
        ]

    def __str__(self) -> str:
        return f"Calendar feed of {self.user_id} in workspace {self.workspace_id}"
