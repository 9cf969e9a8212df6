"""Connecting channels and keeping them healthy."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Workspace

from . import activity, events
from .models import ActivityVerb, Channel, ChannelStatus, DeliveryStatus, web_link
from .networks import network_for
from .networks.base import ErrorCategory, NetworkError, Profile

logger = logging.getLogger(__name__)


def save_channel(
    workspace: Workspace,
    *,
    network: str,
    server_url: str,
    profile: Profile,
    credentials: dict[str, Any],
    **fields: Any,
) -> Channel:
    """Create the channel for this account, or reconnect the existing one. Returns it.

    Reconnecting merges credentials, so a reconnect that does not return (say) a refresh token
    never wipes the stored one; it sets the channel active again, and deliveries that waited
    for the reconnect go out (within the catch-up window).
    """
    with transaction.atomic():
        channel, created = Channel.objects.select_for_update().get_or_create(
            workspace=workspace,
            network=network,
            server_url=server_url,
            remote_id=profile.remote_id,
            defaults={"handle": profile.handle, "timezone": workspace.timezone},
        )
        merged = dict(channel.credentials) if not created else {}
        merged.update({key: value for key, value in credentials.items() if value})
        channel.credentials = merged
        channel.handle = profile.handle
        channel.display_name = profile.display_name
        channel.avatar_url = web_link(profile.avatar_url)
        channel.profile_url = web_link(profile.profile_url)
        channel.status = ChannelStatus.ACTIVE
        channel.status_detail = ""
        channel.last_verified_at = timezone.now()
        channel.credentials_version += 1
        for name, value in fields.items():
            setattr(channel, name, value)
        channel.save()
        verb = ActivityVerb.CONNECTED if created else ActivityVerb.RECONNECTED
        activity.record(verb, workspace_id=workspace.pk, channel=channel)
    network_for(channel).limits(refresh=True)
    return channel


def mark_needs_reconnect(channel: Channel, reason: str) -> bool:
    """Flag an active channel for reconnecting and notify once. Returns True if it changed."""
    changed = Channel.objects.filter(pk=channel.pk, status=ChannelStatus.ACTIVE).update(
        status=ChannelStatus.NEEDS_RECONNECT, status_detail=reason
    )
    channel.status, channel.status_detail = ChannelStatus.NEEDS_RECONNECT, reason
    if changed:
        logger.warning("channel %s needs reconnect: %s", channel.pk, reason)
        transaction.on_commit(lambda: events.channel_needs_reconnect(channel))
    return bool(changed)


def verify_channel(channel: Channel) -> bool:
    """Check the stored credentials with the network. Returns True if they still work.

    Only an auth error marks the channel; a transient failure (server down, timeout) is logged
    and the channel stays as it was.
    """
    network = network_for(channel)
    try:
        network.refresh_credentials()
        profile = network.verify_credentials()
    except NetworkError as error:
        if error.category == ErrorCategory.AUTH:
            mark_needs_reconnect(channel, error.message)
            return False
        logger.info("channel %s: verification postponed: %s", channel.pk, error.message)
        return True
    Channel.objects.filter(pk=channel.pk).update(
        last_verified_at=timezone.now(),
        display_name=profile.display_name,
        avatar_url=profile.avatar_url,
    )
    return True


def set_paused(channel: Channel, paused: bool) -> None:
    """Pause (nothing is published; due posts wait) or resume an active channel."""
    source, target = (
        (ChannelStatus.ACTIVE, ChannelStatus.PAUSED)
        if paused
        else (ChannelStatus.PAUSED, ChannelStatus.ACTIVE)
    )
    if Channel.objects.filter(pk=channel.pk, status=source).update(status=target):
        verb = ActivityVerb.PAUSED if paused else ActivityVerb.RESUMED
        activity.record(verb, workspace_id=channel.workspace_id, channel=channel)
    channel.refresh_from_db(fields=["status"])


class ChannelBusy(Exception):
    """The channel cannot be removed now; the message says why."""


def remove_channel(channel: Channel) -> None:
    """Disconnect and delete the channel with its deliveries (their history included).

    Raises ChannelBusy while one of its deliveries is being published.
    """
    with transaction.atomic():
        locked = Channel.objects.select_for_update().get(pk=channel.pk)
        if locked.deliveries.filter(status=DeliveryStatus.PUBLISHING).exists():
            raise ChannelBusy("A post is being published on this channel; try again in a minute.")
        activity.record(ActivityVerb.REMOVED, workspace_id=locked.workspace_id, channel=locked)
        locked.delete()
