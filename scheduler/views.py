"""HTML views for channels: the list and the actions on one channel.

Posts: `post_views` (list, one post) and `compose_views` (the composer); each network's
connect pages live in its package (`scheduler/networks/<name>/views.py`).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Membership

from . import channels as channel_flows
from .models import Channel
from .web import member_view, require_channel_manager


@member_view
def channels_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's channels with their status; managing them is for owners and admins."""
    channels = Channel.objects.for_workspace(membership.workspace).order_by("network", "handle")
    return render(
        request, "scheduler/channels.html", {"membership": membership, "channels": channels}
    )


@require_POST
@member_view
def channel_action(
    request: HttpRequest, membership: Membership, pk: int, action: str
) -> HttpResponse:
    require_channel_manager(membership)
    channel = get_object_or_404(Channel.objects.for_workspace(membership.workspace), pk=pk)
    if action in ("pause", "resume"):
        channel_flows.set_paused(channel, action == "pause")
    elif action == "verify":
        ok = channel_flows.verify_channel(channel)
        (messages.success if ok else messages.error)(
            request, "The connection works." if ok else f"{channel.handle} needs reconnecting."
        )
    return redirect("scheduler:channels")
