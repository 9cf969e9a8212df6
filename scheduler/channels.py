"""Keeping channels healthy: verifying their credentials, pausing and resuming them."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from . import activity
from .models import ActivityVerb, Channel, ChannelStatus, DeliveryStatus
from .networks import network_for
from .networks.base import ErrorCategory, NetworkError

logger = logging.getLogger(__name__)


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
            channel.mark_needs_reconnect(error.message)
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
