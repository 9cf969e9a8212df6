"""Template context every page gets."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Membership, Notification
from accounts.workspaces import SESSION_KEY

from .models import Post, PostStatus
from .networks import NetworkEntry, entries


def networks(request: HttpRequest) -> dict[str, list[NetworkEntry]]:
    """`networks`: the registry's entries, for the "Connect <label>" navigation."""
    return {"networks": entries()}


def team(request: HttpRequest) -> dict[str, Any]:
    """Counts for the navigation: posts awaiting my review, my unread notifications."""
    if not request.user.is_authenticated:
        return {}
    chosen = request.session.get(SESSION_KEY)
    memberships = Membership.objects.filter(user=request.user)  # type: ignore[misc]
    membership = (chosen and memberships.filter(workspace_id=chosen).first()) or (
        memberships.order_by("pk").first()
    )
    if membership is None:
        return {}
    review = 0
    if membership.can_approve:
        review = Post.objects.filter(
            workspace_id=membership.workspace_id, status=PostStatus.PENDING_APPROVAL
        ).count()
    unread = (
        Notification.objects.filter(user=request.user, workspace_id=membership.workspace_id)  # type: ignore[misc]
        .unread()
        .count()
    )
    return {"review_count": review, "unread_count": unread}
