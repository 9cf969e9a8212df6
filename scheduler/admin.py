"""Admin for operators (staff). Credentials are never shown or editable here."""

from django.contrib import admin

from .models import (
    CalendarFeed,
    Channel,
    Delivery,
    DeliveryAttempt,
    EngineHeartbeat,
    MastodonApp,
    Media,
    Post,
    PostPart,
)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["handle", "network", "workspace", "status", "timezone", "last_verified_at"]
    list_filter = ["network", "status"]
    search_fields = ["handle", "display_name", "workspace__name"]
    readonly_fields = ["limits", "limits_fetched_at", "credentials_version"]
    list_select_related = ["workspace"]


@admin.register(MastodonApp)
class MastodonAppAdmin(admin.ModelAdmin):
    list_display = ["base_url", "client_id", "created_at"]
    readonly_fields = ["client_id"]


class PostPartInline(admin.TabularInline):
    model = PostPart
    extra = 0


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    fields = ("channel", "status", "due_at", "attempts", "last_error_code", "published_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["__str__", "workspace", "author", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["parts__text", "workspace__name"]
    inlines = [PostPartInline, DeliveryInline]
    list_select_related = ["workspace", "author"]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = [
        "started_at",
        "finished_at",
        "outcome",
        "part_index",
        "http_status",
        "error_code",
        "message",
        "excerpt",
    ]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "post", "channel", "status", "due_at", "attempts", "last_error_code"]
    list_filter = ["status", "channel__network"]
    search_fields = ["last_error", "channel__handle"]
    # State changes go through the engine's transitions, not through form edits.
    readonly_fields = [
        "status",
        "claim_token",
        "claimed_until",
        "attempts",
        "part_states",
        "published_at",
        "last_error_code",
        "last_error",
        "next_attempt_at",
    ]
    inlines = [AttemptInline]
    list_select_related = ["post", "channel"]


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "workspace", "size", "width", "height", "created_at"]
    list_filter = ["kind"]


@admin.register(EngineHeartbeat)
class EngineHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "beat_at"]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Staff can see who subscribes and delete a feed (its URL then answers 404)."""

    list_display = ["user", "workspace", "created_at", "last_fetched_at"]
    list_select_related = ["user", "workspace"]
    readonly_fields = ["user", "workspace", "created_at", "last_fetched_at"]
    exclude = ["token_hash"]
