"""Keeping channels healthy: verifying their credentials, pausing and resuming them."""

from __future__ import annotations

import logging

from django.utils import timezone

from .models import Channel, ChannelStatus
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
    Channel.objects.filter(pk=channel.pk, status=source).update(status=target)
    channel.refresh_from_db(fields=["status"])
