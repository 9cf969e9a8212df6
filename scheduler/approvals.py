"""Approvals: a contributor's post waits for an editor, admin or owner to approve or reject it.

    draft / scheduled --contributor schedules or changes it--> pending_approval (deliveries held)
    pending_approval  --approve (keeping or changing its time)--> scheduled
    pending_approval  --reject with a reason--> draft (the author edits and submits again)

Held deliveries never reach the dispatcher: only `approve_post` moves them to scheduled (through
`compose.update_post`, which uses the delivery state machine). A contributor's later change to
the text, media, options or time sends the post back here (`compose.update._retime`, and
`send_back_for_review` for a move on the calendar).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import notifications
from accounts.models import Membership, NotificationKind, User

from . import activity, compose, events, states
from .compose.common import _queued_channels, _reflow_quietly
from .models import Activity, ActivityVerb, DeliveryStatus, Post, PostStatus

DECISIONS = (ActivityVerb.SUBMITTED, ActivityVerb.APPROVED, ActivityVerb.REJECTED)


def post_link(post: Post) -> str:
    return reverse("scheduler:post_detail", args=[post.pk])


def excerpt(post: Post, length: int = 60) -> str:
    first = post.parts.first()
    text = " ".join((first.text if first else "").split())
    return f"“{text[:length]}{'…' if len(text) > length else ''}”" if text else f"post {post.pk}"


def submitted(post: Post, *, actor: User) -> None:
    """Record that `post` now awaits approval and tell the people who can approve it."""
    activity.record(ActivityVerb.SUBMITTED, workspace_id=post.workspace_id, actor=actor, post=post)
    notifications.notify(
        notifications.members_who(post.workspace_id, "can_approve"),
        workspace=post.workspace_id,
        kind=NotificationKind.APPROVAL_REQUESTED,
        text=f"{actor.display_name} asks you to approve {excerpt(post)}.",
        link=post_link(post),
        skip=actor,
    )
    transaction.on_commit(lambda: events.post_event("post.submitted", post, actor=actor))


def send_back_for_review(membership: Membership, post: Post) -> bool:
    """A contributor changed an approved post outside the composer (moved it on the calendar):
    it waits for approval again, its unsent deliveries held. Returns True if it went back."""
    if membership.can_publish:
        return False
    if not Post.objects.filter(pk=post.pk, status=PostStatus.SCHEDULED).update(
        status=PostStatus.PENDING_APPROVAL
    ):
        return False
    waiting = post.deliveries.filter(status=DeliveryStatus.SCHEDULED)
    unsent = [d.pk for d in waiting if not d.has_sent_anything()]
    states.apply(post.deliveries.filter(pk__in=unsent), "hold", next_attempt_at=None)
    post.refresh_from_db()
    submitted(post, actor=membership.user)
    return True


def approve_post(membership: Membership, post: Post, *, at: datetime | None = None) -> Post:
    """Approve a post awaiting approval: it is scheduled at its time, or at `at` when given.

    A time that passed while the post waited becomes "now". Raises PermissionDenied for a role
    that cannot approve, PostNotEditable when the post is not awaiting approval, ComposeError
    for a time in the past.
    """
    if not membership.can_approve:
        raise PermissionDenied("Only editors, admins and owners approve posts.")
    now = timezone.now()
    if at is not None and at < now - compose.PAST_TOLERANCE:
        raise compose.ComposeError({"scheduled_at": ["Choose a time in the future."]})
    with transaction.atomic():
        post = _lock_pending(post)
        post.status = PostStatus.SCHEDULED
        post.save(update_fields=["status", "updated_at"])
        held = post.deliveries.filter(status=DeliveryStatus.HELD)
        if at is None:
            # A time that passed while the post waited (or none at all) means "now".
            held.filter(due_at__lt=now).update(due_at=now, pinned=True)
            held.filter(due_at__isnull=True).update(due_at=now, pinned=True)
        compose.update_post(membership, post, at=at)
        activity.record(
            ActivityVerb.APPROVED,
            workspace_id=post.workspace_id,
            actor=membership.user,
            post=post,
            changes={"at": at.isoformat()} if at else {},
        )
        _tell_author(post, membership.user, f"approved {excerpt(post)}; it is scheduled.")
        transaction.on_commit(
            lambda: events.post_event("post.approved", post, actor=membership.user)
        )
    post.refresh_from_db()
    return post


def reject_post(membership: Membership, post: Post, *, reason: str) -> Post:
    """Send a post awaiting approval back to its author as a draft, saying why.

    Queued deliveries leave the queue (their slots go to the posts behind); custom times stay,
    so submitting again can keep them. Raises PermissionDenied, PostNotEditable, or
    ComposeError for an empty reason.
    """
    if not membership.can_approve:
        raise PermissionDenied("Only editors, admins and owners reject posts.")
    reason = reason.strip()
    if not reason:
        raise compose.ComposeError({"reason": ["Say why, so the author knows what to change."]})
    with transaction.atomic():
        post = _lock_pending(post)
        post.status = PostStatus.DRAFT
        post.save(update_fields=["status", "updated_at"])
        held = post.deliveries.filter(status=DeliveryStatus.HELD)
        queued_channels = _queued_channels(held)
        held.filter(pinned=False).update(due_at=None, pinned=True, next_attempt_at=None)
        _reflow_quietly(queued_channels)
        activity.record(
            ActivityVerb.REJECTED,
            workspace_id=post.workspace_id,
            actor=membership.user,
            post=post,
            changes={"reason": reason},
        )
        _tell_author(post, membership.user, f"rejected {excerpt(post)}: {reason}")
        transaction.on_commit(
            lambda: events.post_event("post.rejected", post, actor=membership.user, reason=reason)
        )
    post.refresh_from_db()
    return post


def _lock_pending(post: Post) -> Post:
    locked = Post.objects.select_for_update().get(pk=post.pk)
    if locked.status != PostStatus.PENDING_APPROVAL:
        raise compose.PostNotEditable(
            f"This post is not awaiting approval (it is {locked.get_status_display().lower()})."
        )
    return locked


def _tell_author(post: Post, actor: User, what: str) -> None:
    notifications.notify(
        [post.author],
        workspace=post.workspace_id,
        kind=NotificationKind.POST_REVIEWED,
        text=f"{actor.display_name} {what}",
        link=post_link(post),
        skip=actor,
    )


def history(post: Post) -> list[Activity]:
    """Submissions and decisions, oldest first (from a prefetched `approval_history` if set)."""
    entries = getattr(post, "approval_history", None)
    if entries is None:
        entries = list(
            post.activity.filter(verb__in=DECISIONS)
            .select_related("actor")
            .order_by("created_at", "id")
        )
    return list(entries)


def state(post: Post, entries: list[Activity] | None = None) -> str:
    """not_required, pending, approved or rejected: the post's standing with reviewers."""
    if post.status == PostStatus.PENDING_APPROVAL:
        return "pending"
    entries = history(post) if entries is None else entries
    decided = [e for e in entries if e.verb != ActivityVerb.SUBMITTED]
    if not decided:
        return "not_required"
    return "approved" if decided[-1].verb == ActivityVerb.APPROVED else "rejected"


def review_queue(membership: Membership) -> Any:
    """Posts of the workspace awaiting approval, oldest first (by id among equal times, so its
    pages do not overlap)."""
    return (
        Post.objects.for_workspace(membership.workspace)
        .filter(status=PostStatus.PENDING_APPROVAL)
        .order_by("created_at", "pk")
    )
