"""HTML views: thin, workspace-scoped, calling the workflow modules."""

from __future__ import annotations

import secrets
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.workspaces import current_membership

from . import channels as channel_flows
from . import compose, states
from . import media as media_flows
from .models import Channel, Delivery, Post
from .networks import mastodon
from .networks.base import InvalidServerURL, NetworkError, check_server_url

OAUTH_SESSION_KEY = "mastodon_oauth"


def member_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Log-in required; passes the request's Membership as the second argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, current_membership(request), *args, **kwargs)

    return wrapper


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


@member_view
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    workspace = membership.workspace
    posts = (
        Post.objects.for_workspace(workspace)
        .select_related("author")
        .prefetch_related(
            "parts", Prefetch("deliveries", Delivery.objects.select_related("channel"))
        )[:50]
    )
    return render(
        request,
        "scheduler/dashboard.html",
        {
            "membership": membership,
            "channels": Channel.objects.for_workspace(workspace).order_by("network", "handle"),
            "posts": posts,
        },
    )


@member_view
def post_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    post = get_object_or_404(Post.objects.for_workspace(membership.workspace), pk=pk)
    deliveries = post.deliveries.select_related("channel").prefetch_related("attempt_log")
    from .team_views import post_team_context

    return render(
        request,
        "scheduler/post_detail.html",
        {
            "membership": membership,
            "post": post,
            "deliveries": deliveries,
            **post_team_context(membership, post),
        },
    )


@member_view
def compose_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    _require(membership.can_compose, "Viewers cannot write posts.")
    workspace = membership.workspace
    channel_qs = Channel.objects.for_workspace(workspace).order_by("handle")
    user_zone = zoneinfo.ZoneInfo(request.user.timezone)  # type: ignore[union-attr]
    context: dict[str, Any] = {"membership": membership, "channels": channel_qs, "errors": {}}
    if request.method == "POST":
        form = request.POST
        context["form"] = form
        try:
            post = _create_from_form(request, membership, channel_qs, user_zone)
        except compose.ComposeError as error:
            context["errors"] = error.errors
            return render(request, "scheduler/compose.html", context, status=400)
        messages.success(
            request, "Post saved." if post.status != "scheduled" else "Post scheduled."
        )
        return redirect("scheduler:post_detail", pk=post.pk)
    return render(request, "scheduler/compose.html", context)


def _create_from_form(
    request: HttpRequest, membership: Membership, channel_qs: Any, zone: zoneinfo.ZoneInfo
) -> Post:
    form = request.POST
    chosen = list(channel_qs.filter(pk__in=form.getlist("channels")))
    texts = [part.strip() for part in form.get("text", "").split("\n---\n")]
    parts = [compose.PartInput(text) for text in texts]
    upload = request.FILES.get("media")
    if upload:
        try:
            parts[0].media.append(
                media_flows.save_upload(membership, upload, alt_text=form.get("alt_text", ""))
            )
        except media_flows.MediaError as error:
            raise compose.ComposeError({"media": [str(error)]}) from error
    when = form.get("when", "at")
    at: datetime | None = timezone.now()
    if when == "at":
        at = _parse_local(form.get("scheduled_at", ""), zone)
    elif when == "draft":
        at = None
    options = {
        key: form.get(key, "").strip()
        for key in ("content_warning", "visibility", "language")
        if form.get(key, "").strip()
    }
    return compose.create_post(
        membership, channels=chosen, parts=parts, at=at, options=options, draft=when == "draft"
    )


def _parse_local(value: str, zone: zoneinfo.ZoneInfo) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=zone) if value else None
    except ValueError as exc:
        raise compose.ComposeError(
            {"scheduled_at": ["Give a date and time like 2026-12-01 09:30."]}
        ) from exc


@require_POST
@member_view
def cancel_post(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    _require(membership.can_compose, "Viewers cannot change posts.")
    post = get_object_or_404(Post.objects.for_workspace(membership.workspace), pk=pk)
    cancelled = compose.cancel_post(post)
    messages.info(request, f"Cancelled {cancelled} scheduled delivery(ies); published ones stay.")
    return redirect("scheduler:post_detail", pk=post.pk)


@require_POST
@member_view
def retry_delivery(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    _require(membership.can_publish, "Only editors and above can publish.")
    delivery = get_object_or_404(Delivery.objects.for_workspace(membership.workspace), pk=pk)
    try:
        compose.retry_delivery(delivery)
        messages.success(request, "Retrying now.")
    except states.IllegalTransition:
        messages.error(request, "Only failed or missed deliveries can be retried.")
    return redirect("scheduler:post_detail", pk=delivery.post_id)


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
    return redirect("scheduler:dashboard")
