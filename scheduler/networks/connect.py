"""What every network's connect code shares: saving the account it has verified as a channel."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Workspace

from .. import activity
from ..models import ActivityVerb, Channel, ChannelStatus, web_link
from .base import Network, Profile


def save_channel(
    workspace: Workspace,
    *,
    network: type[Network],
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
            network=network.key,
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
    network(channel).limits(refresh=True)
    return channel
