"""Post pages: the list (filters, bulk actions), one post, and what can be done to it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import CANCEL_REFUSED, Membership

from . import compose, states
from .listing import SORTS, PostFilters, find_posts
from .models import Channel, Delivery, Post
from .overview import OverallStatus, delivery_status, with_overview
from .team_views import post_team_context
from .web import member_view

PAGE_SIZE = 25
# Statuses whose time is still ahead ("Goes out ..."); for the others it is past ("Was due ...").
UPCOMING = [
    OverallStatus.PENDING_APPROVAL,
    OverallStatus.QUEUED,
    OverallStatus.SCHEDULED,
    OverallStatus.PUBLISHING,
]


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _zone(request: HttpRequest) -> str:
    return getattr(request.user, "timezone", "") or "UTC"


@member_view
def post_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Posts by due time, in pages, with filters and text search."""
    filters = PostFilters.from_query(request.GET)
    posts = find_posts(membership.workspace, filters, _zone(request))
    page = Paginator(posts, PAGE_SIZE).get_page(request.GET.get("page"))
    for post in page.object_list:  # what each row shows, read once from the prefetched rows
        parts = list(post.parts.all())
        post.first_text = parts[0].text if parts else ""  # type: ignore[attr-defined]
        post.part_count = len(parts)  # type: ignore[attr-defined]
        post.rows = [(d, delivery_status(d, post)) for d in post.deliveries.all()]  # type: ignore[attr-defined]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "membership": membership,
        "page": page,
        "filters": filters,
        "query": query.urlencode(),
        "statuses": OverallStatus.choices,
        "sorts": SORTS,
        "channels": Channel.objects.for_workspace(membership.workspace).order_by("handle"),
    }
    return render(request, "scheduler/post_list.html", context)


def _post_for(membership: Membership, pk: int) -> Post:
    return get_object_or_404(with_overview(Post.objects.for_workspace(membership.workspace)), pk=pk)


def _require_change(membership: Membership, post: Post) -> None:
    if not membership.can_change_post(post):
        raise PermissionDenied("Contributors can change only their own posts; viewers none.")


@member_view
def post_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    post = _post_for(membership, pk)
    deliveries = list(
        post.deliveries.select_related("channel").prefetch_related("attempt_log").order_by("pk")
    )
    changeable, unchanged = compose.what_can_change(deliveries)
    for delivery in deliveries:
        delivery.shown_status = delivery_status(delivery, post)  # type: ignore[attr-defined]
        delivery.sent_parts = compose.parts_for(delivery)  # type: ignore[attr-defined]
        delivery.why_unchanged = unchanged.get(delivery.pk, "")  # type: ignore[attr-defined]
    may_change = membership.can_change_post(post)
    context = {
        "membership": membership,
        "post": post,
        "deliveries": deliveries,
        "can_edit": may_change
        and bool(changeable)
        and getattr(post, "overall", "") != OverallStatus.CANCELLED,
        "can_cancel": membership.can_cancel(post) and any(d.can_cancel() for d in deliveries),
        "can_share_now": membership.can_publish
        and any(d.can_cancel() for d in deliveries)
        and getattr(post, "overall", "") != OverallStatus.PENDING_APPROVAL,
        "unchanged": [d for d in deliveries if d.pk in unchanged],
        "upcoming": UPCOMING,
        **post_team_context(membership, post),
    }
    return render(request, "scheduler/post_detail.html", context)


@member_view
def cancel_post(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST cancels every delivery not yet publishing."""
    post = _post_for(membership, pk)
    if not membership.can_cancel(post):
        raise PermissionDenied(CANCEL_REFUSED)
    deliveries = list(post.deliveries.select_related("channel"))
    waiting = [d for d in deliveries if d.can_cancel()]
    if request.method != "POST":
        context = {"membership": membership, "post": post, "waiting": waiting, "posts": [post]}
        return render(request, "scheduler/confirm_cancel.html", context)
    cancelled = compose.cancel_post(post)
    kept = sum(1 for d in deliveries if not d.can_cancel() and d.status != "cancelled")
    if cancelled:
        text = f"Cancelled: {_plural(cancelled, 'channel')} will not get this post."
        if kept:
            text += (
                f" {_plural(kept, 'delivery')} that already went out or failed stay as they were."
            )
        messages.success(request, text)
    else:
        messages.warning(request, "Nothing was cancelled: no delivery was still waiting.")
    return redirect("scheduler:post_detail", pk=post.pk)


@require_POST
@member_view
def retry_delivery(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    if not membership.can_publish:
        raise PermissionDenied("Only editors and above can publish.")
    delivery = get_object_or_404(
        Delivery.objects.for_workspace(membership.workspace).select_related("channel"), pk=pk
    )
    try:
        compose.retry_delivery(delivery)
        messages.success(request, f"Retrying on {delivery.channel.handle} now.")
    except states.IllegalTransition:
        messages.error(request, "Only failed or missed deliveries can be retried.")
    return redirect("scheduler:post_detail", pk=delivery.post_id)


@require_POST
@member_view
def duplicate_post(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    if not membership.can_compose:
        raise PermissionDenied("Viewers cannot write posts.")
    copy = compose.duplicate_post(membership, _post_for(membership, pk))
    messages.success(request, "Duplicated as a new draft. Change what you like, then choose when.")
    return redirect("scheduler:edit_post", pk=copy.pk)


@require_POST
@member_view
def reschedule_post(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    post = _post_for(membership, pk)
    _require_change(membership, post)
    try:
        at = compose.parse_local(request.POST.get("scheduled_at", ""), _zone(request))
        result = compose.update_post(membership, post, **compose.timing("at", at))
    except compose.ComposeError as error:
        for text in (m for msgs in error.errors.values() for m in msgs):
            messages.error(request, f"Not rescheduled: {text}")
        return redirect("scheduler:post_detail", pk=post.pk)
    except compose.PostNotEditable as error:
        messages.error(request, f"Not rescheduled: {error}")
        return redirect("scheduler:post_detail", pk=post.pk)
    moved = len(result.changed)
    text = f"Rescheduled {_plural(moved, 'channel')}."
    if result.unchanged:
        text += f" {_plural(len(result.unchanged), 'channel')} kept as they were (see below)."
    messages.success(request, text)
    return redirect("scheduler:post_detail", pk=post.pk)


@require_POST
@member_view
def share_post_now(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    if not membership.can_publish:
        raise PermissionDenied("Only editors and above can publish.")
    post = _post_for(membership, pk)
    try:
        moved = compose.share_now(post)
    except compose.PostNotEditable as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Publishing now to {_plural(moved, 'channel')}.")
    return redirect("scheduler:post_detail", pk=post.pk)


@require_POST
@member_view
def bulk_action(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Cancel (after a confirmation) or retry the selected posts; says what happened."""
    ids = compose.form_ids(request.POST.getlist("post"))
    posts = list(with_overview(Post.objects.for_workspace(membership.workspace).filter(pk__in=ids)))
    back = request.POST.get("back", "") or "/"
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    if not posts:
        messages.warning(request, "Select at least one post first.")
        return redirect(back)
    if request.POST.get("action") == "retry":
        return _bulk_retry(request, membership, posts, back)
    return _bulk_cancel(request, membership, posts, back)


def _bulk_cancel(
    request: HttpRequest, membership: Membership, posts: list[Post], back: str
) -> HttpResponse:
    allowed = [p for p in posts if membership.can_cancel(p)]
    if request.POST.get("confirmed") != "yes":
        context: dict[str, Any] = {"membership": membership, "posts": allowed, "back": back}
        context["refused"] = len(posts) - len(allowed)
        return render(request, "scheduler/confirm_cancel.html", context)
    counts = [compose.cancel_post(p) for p in allowed]
    changed = sum(1 for n in counts if n)
    text = f"Cancelled {_plural(changed, 'post')} ({_plural(sum(counts), 'delivery')})."
    if len(allowed) > changed:
        text += f" {_plural(len(allowed) - changed, 'post')} had nothing left to cancel."
    messages.success(request, text)
    return redirect(back)


def _bulk_retry(
    request: HttpRequest, membership: Membership, posts: list[Post], back: str
) -> HttpResponse:
    if not membership.can_publish:
        raise PermissionDenied("Only editors and above can publish.")
    retried = 0
    for delivery in Delivery.objects.filter(post__in=posts, status__in=["failed", "missed"]):
        try:
            compose.retry_delivery(delivery)
            retried += 1
        except states.IllegalTransition:
            continue  # it changed meanwhile; the page shows its state
    if retried:
        messages.success(request, f"Retrying {_plural(retried, 'failed or missed delivery')} now.")
    else:
        messages.warning(
            request, "Nothing to retry: no selected post has a failed or missed delivery."
        )
    return redirect(back)
