"""What the engine's outcomes mean for people: the activity entry and who is notified."""

from __future__ import annotations

from django.urls import reverse

from accounts import notifications
from accounts.models import NotificationKind

from . import activity
from .approvals import excerpt, post_link
from .models import Activity, ActivityVerb, Channel, Delivery


def delivery_outcome(verb: str, delivery: Delivery) -> None:
    """Log a delivery failed or missed and tell the author (published ones: `deliveries_published`)."""
    # The engine's delivery comes with its post and channel loaded: no query for them here.
    post = delivery.post
    channel = delivery.channel
    changes = {"error": delivery.last_error} if delivery.last_error else {}
    activity.record(
        ActivityVerb(verb),
        workspace_id=delivery.workspace_id,
        actor=None,
        post=post,
        channel=channel,
        changes=changes,
    )
    what = "failed to publish" if verb == ActivityVerb.FAILED else "missed its time"
    recipients = (
        [post.author]
        if post.author
        else notifications.members_who(post.workspace_id, "can_publish")
    )
    notifications.notify(
        recipients,
        workspace=post.workspace_id,
        kind=NotificationKind.DELIVERY_FAILED,
        text=f"{excerpt(post)} {what} on {channel.handle}: {delivery.last_error or 'no reason given'}",
        link=post_link(post),
    )


def deliveries_published(deliveries: list[Delivery]) -> None:
    """Log deliveries published (nobody is notified of a success), in one INSERT."""
    Activity.objects.bulk_create(
        activity.entry(
            ActivityVerb.PUBLISHED,
            workspace_id=d.workspace_id,
            actor=None,
            post=d.post,
            channel=d.channel,
        )
        for d in deliveries
    )


def channel_needs_reconnect(channel: Channel) -> None:
    """Log it and tell the owners and admins, who can reconnect it."""
    activity.record(
        ActivityVerb.NEEDS_RECONNECT,
        workspace_id=channel.workspace_id,
        actor=None,
        channel=channel,
        changes={"reason": channel.status_detail},
    )
    notifications.notify(
        notifications.members_who(channel.workspace_id, "can_manage_channels"),
        workspace=channel.workspace_id,
        kind=NotificationKind.CHANNEL_NEEDS_RECONNECT,
        text=f"{channel.handle} needs reconnecting: {channel.status_detail}",
        link=reverse("scheduler:channels"),
    )
