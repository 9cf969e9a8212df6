"""Pages for teamwork: the review queue, approving and rejecting, comments, the activity log and
notifications. Thin over `scheduler.approvals`, `scheduler.comments`, `accounts.notifications`."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import notifications
from accounts.models import Membership, Notification

from . import approvals, compose
from . import comments as comment_flows
from .models import Activity, ActivityVerb, Channel, Post
from .web import member_view, require

ACTIVITY_PAGE = 50
REVIEW_PAGE = 25


def _zone(request: HttpRequest) -> str:
    return getattr(request.user, "timezone", "UTC") or "UTC"


@member_view
def review_queue(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Posts awaiting approval, oldest first and in pages, for editors, admins and owners."""
    require(membership.can_approve, "Only editors, admins and owners review posts.")
    posts = (
        approvals.review_queue(membership)
        .select_related("author")
        .prefetch_related("parts", "deliveries__channel")
    )
    page = Paginator(posts, REVIEW_PAGE).get_page(request.GET.get("page"))
    return render(request, "scheduler/review.html", {"membership": membership, "page": page})


def _post(membership: Membership, pk: int) -> Post:
    return get_object_or_404(Post.objects.for_workspace(membership.workspace), pk=pk)


@require_POST
@member_view
def approve(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    require(membership.can_approve, "Only editors, admins and owners approve posts.")
    post = _post(membership, pk)
    try:
        at = compose.parse_local(request.POST.get("scheduled_at", ""), _zone(request))
        approvals.approve_post(membership, post, at=at)
    except compose.ComposeError as error:
        messages.error(request, " ".join(m for msgs in error.errors.values() for m in msgs))
    except compose.PostNotEditable as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Approved: the post is scheduled.")
    return _back(request, post)


@require_POST
@member_view
def reject(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    require(membership.can_approve, "Only editors, admins and owners reject posts.")
    post = _post(membership, pk)
    try:
        approvals.reject_post(membership, post, reason=request.POST.get("reason", ""))
    except compose.ComposeError as error:
        messages.error(request, " ".join(m for msgs in error.errors.values() for m in msgs))
    except compose.PostNotEditable as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Rejected: the post went back to its author as a draft.")
    return _back(request, post)


def _back(request: HttpRequest, post: Post) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("scheduler:post_detail", pk=post.pk)


@require_POST
@member_view
def add_comment(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    require(membership.can_comment, "Viewers cannot comment.")
    post = _post(membership, pk)
    try:
        comment = comment_flows.add_comment(membership, post, text=request.POST.get("text", ""))
    except comment_flows.CommentError as error:
        messages.error(request, str(error))
        return redirect("scheduler:post_detail", pk=post.pk)
    mentioned = ", ".join(user.display_name for user in comment.mentions.all())
    messages.success(request, f"Comment added{'; notified ' + mentioned if mentioned else ''}.")
    return redirect(f"{post_url(post)}#comment-{comment.pk}")


def post_url(post: Post) -> str:
    return approvals.post_link(post)


def post_team_context(membership: Membership, post: Post) -> dict[str, Any]:
    """What the post page shows about reviewing, comments and history."""
    return {
        "approval_state": approvals.state(post),
        "approval_history": approvals.history(post),
        "comments": post.comments.select_related("author").prefetch_related("mentions"),
        "post_activity": post.activity.select_related("actor", "member", "channel").order_by(
            "created_at", "id"
        ),
        "members": Membership.objects.filter(workspace=membership.workspace).select_related("user"),
    }


@member_view
def activity_log(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's activity, newest first, filterable by kind, channel and person."""
    workspace = membership.workspace
    rows = Activity.objects.for_workspace(workspace).select_related("actor", "member")
    verb, channel, actor = (request.GET.get(k, "") for k in ("verb", "channel", "actor"))
    if verb in ActivityVerb.values:
        rows = rows.filter(verb=verb)
    if channel.isdigit():
        rows = rows.filter(channel_id=int(channel))
    if actor.isdigit():
        rows = rows.filter(actor_id=int(actor))
    page = Paginator(rows, ACTIVITY_PAGE).get_page(request.GET.get("page"))
    context = {
        "membership": membership,
        "page": page,
        "verbs": ActivityVerb.choices,
        "channels": Channel.objects.for_workspace(workspace).order_by("handle"),
        "people": Membership.objects.filter(workspace=workspace).select_related("user"),
        "chosen": {"verb": verb, "channel": channel, "actor": actor},
    }
    return render(request, "scheduler/activity.html", context)


@member_view
def notification_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = Notification.objects.filter(user=membership.user, workspace=membership.workspace)
    page = Paginator(rows, ACTIVITY_PAGE).get_page(request.GET.get("page"))
    return render(request, "scheduler/notifications.html", {"membership": membership, "page": page})


@require_POST
@member_view
def mark_read(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Mark one notification (`id`) or all of them read.

    From htmx, one notification comes back as its updated list item and the bell refreshes.
    """
    raw = request.POST.get("id", "")
    ids = compose.form_ids([raw]) or None
    notifications.mark_read(membership.user, membership.workspace, ids)
    if request.headers.get("HX-Request") and ids:
        note = get_object_or_404(
            Notification, pk=ids[0], user=membership.user, workspace=membership.workspace
        )
        response = render(request, "scheduler/_notification.html", {"note": note})
        response["HX-Trigger"] = "notifications-changed"
        return response
    return redirect("scheduler:notifications")


@member_view
def bell(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The bell with the unread count (an htmx partial, refreshed in place)."""
    return render(request, "scheduler/_bell.html", {"membership": membership})
