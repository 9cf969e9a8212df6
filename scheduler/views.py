"""HTML views: thin, workspace-scoped, calling the workflow modules."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import CANCEL_REFUSED, Membership

from . import channels as channel_flows
from . import compose, states
from . import media as media_flows
from .models import Channel, Delivery, Post
from .web import member_view, require, require_channel_manager


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
    return render(request, "scheduler/dashboard.html", {"membership": membership, "posts": posts})


@member_view
def channels_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's channels with their status; managing them is for owners and admins."""
    channels = Channel.objects.for_workspace(membership.workspace).order_by("network", "handle")
    return render(
        request, "scheduler/channels.html", {"membership": membership, "channels": channels}
    )


@member_view
def post_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    post = get_object_or_404(Post.objects.for_workspace(membership.workspace), pk=pk)
    deliveries = post.deliveries.select_related("channel").prefetch_related("attempt_log")
    return render(
        request,
        "scheduler/post_detail.html",
        {"membership": membership, "post": post, "deliveries": deliveries},
    )


@member_view
def compose_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    require(membership.can_compose, "Viewers cannot write posts.")
    workspace = membership.workspace
    channel_qs = Channel.objects.for_workspace(workspace).order_by("handle")
    user_zone = zoneinfo.ZoneInfo(request.user.timezone)  # type: ignore[union-attr]
    context: dict[str, Any] = {"membership": membership, "channels": channel_qs, "errors": {}}
    if request.method == "POST":
        form = request.POST
        context["form"] = form
        try:
            post = _create_from_form(request, membership, user_zone)
        except compose.ComposeError as error:
            context["errors"] = error.errors
            return render(request, "scheduler/compose.html", context, status=400)
        messages.success(
            request, "Post saved." if post.status != "scheduled" else "Post scheduled."
        )
        return redirect("scheduler:post_detail", pk=post.pk)
    return render(request, "scheduler/compose.html", context)


def _create_from_form(
    request: HttpRequest, membership: Membership, zone: zoneinfo.ZoneInfo
) -> Post:
    form = request.POST
    chosen = compose.pick_channels(membership.workspace, form.getlist("channels"))
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
    try:
        return _save_post(membership, form, parts, chosen, zone)
    except BaseException:
        media_flows.discard_uploads(parts[0].media)  # a failed compose keeps no upload
        raise


def _save_post(
    membership: Membership,
    form: Any,
    parts: list[compose.PartInput],
    chosen: list[Channel],
    zone: zoneinfo.ZoneInfo,
) -> Post:
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
    post = get_object_or_404(Post.objects.for_workspace(membership.workspace), pk=pk)
    require(membership.can_cancel(post), CANCEL_REFUSED)
    cancelled = compose.cancel_post(post)
    messages.info(request, f"Cancelled {cancelled} scheduled delivery(ies); published ones stay.")
    return redirect("scheduler:post_detail", pk=post.pk)


@require_POST
@member_view
def retry_delivery(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    require(membership.can_publish, "Only editors and above can publish.")
    delivery = get_object_or_404(Delivery.objects.for_workspace(membership.workspace), pk=pk)
    try:
        compose.retry_delivery(delivery)
        messages.success(request, "Retrying now.")
    except states.IllegalTransition:
        messages.error(request, "Only failed or missed deliveries can be retried.")
    return redirect("scheduler:post_detail", pk=delivery.post_id)


# -- channels -----------------------------------------------------------------------------------------
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
