"""HTML views: thin, workspace-scoped, calling the workflow modules."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.workspaces import current_membership

from . import channels as channel_flows
from .models import Channel
from .networks import mastodon
from .networks.base import InvalidServerURL, NetworkError, check_server_url

OAUTH_SESSION_KEY = "mastodon_oauth"


def member_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Log-in required; passes the request's Membership as the second argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return view(request, current_membership(request), *args, **kwargs)

    return wrapper


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


@member_view
def channels_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's channels with their status; managing them is for owners and admins."""
    channels = Channel.objects.for_workspace(membership.workspace).order_by("network", "handle")
    return render(
        request, "scheduler/channels.html", {"membership": membership, "channels": channels}
    )


# -- channels -----------------------------------------------------------------------------------------
@member_view
def connect_mastodon(request: HttpRequest, membership: Membership) -> HttpResponse:
    _require(membership.can_manage_channels, "Only owners and admins connect channels.")
    if request.method != "POST":
        return render(request, "scheduler/connect_mastodon.html", {"membership": membership})
    try:
        base_url = check_server_url(request.POST.get("server_url", ""))
        token = request.POST.get("access_token", "").strip()
        if token:
            channel = _connect_mastodon_token(membership, base_url, token)
            messages.success(request, f"Connected {channel.handle}.")
            return redirect("scheduler:dashboard")
        app = mastodon.register_app(
            base_url, request.build_absolute_uri(reverse("scheduler:mastodon_callback"))
        )
        state = secrets.token_urlsafe(24)
        request.session[OAUTH_SESSION_KEY] = {"state": state, "base_url": base_url}
        return redirect(mastodon.authorize_url(app, state=state))
    except (InvalidServerURL, NetworkError) as error:
        message = error.message if isinstance(error, NetworkError) else str(error)
        return render(
            request,
            "scheduler/connect_mastodon.html",
            {"membership": membership, "error": message, "form": request.POST},
            status=400,
        )


def _connect_mastodon_token(membership: Membership, base_url: str, token: str) -> Channel:
    return channel_flows.connect_mastodon_token(
        membership.workspace, server_url=base_url, access_token=token
    )


@member_view
def mastodon_callback(request: HttpRequest, membership: Membership) -> HttpResponse:
    pending = request.session.pop(OAUTH_SESSION_KEY, None)
    if not pending or not secrets.compare_digest(pending["state"], request.GET.get("state", "")):
        messages.error(
            request, "That Mastodon sign-in link expired or was not started here. Connect again."
        )
        return redirect("scheduler:connect_mastodon")
    if "error" in request.GET:
        messages.error(
            request,
            f"Mastodon did not authorize Herald: {request.GET.get('error_description') or request.GET['error']}.",
        )
        return redirect("scheduler:connect_mastodon")
    from .models import MastodonApp

    app = get_object_or_404(MastodonApp, base_url=pending["base_url"])
    try:
        token = mastodon.exchange_code(app, request.GET.get("code", ""))
        channel = _connect_mastodon_token(membership, app.base_url, token)
    except NetworkError as error:
        messages.error(request, error.message)
        return redirect("scheduler:connect_mastodon")
    messages.success(request, f"Connected {channel.handle}.")
    return redirect("scheduler:dashboard")


@require_POST
@member_view
def channel_action(
    request: HttpRequest, membership: Membership, pk: int, action: str
) -> HttpResponse:
    _require(membership.can_manage_channels, "Only owners and admins manage channels.")
    channel = get_object_or_404(Channel.objects.for_workspace(membership.workspace), pk=pk)
    if action in ("pause", "resume"):
        channel_flows.set_paused(channel, action == "pause")
    elif action == "verify":
        ok = channel_flows.verify_channel(channel)
        (messages.success if ok else messages.error)(
            request, "The connection works." if ok else f"{channel.handle} needs reconnecting."
        )
    return redirect("scheduler:channels")
