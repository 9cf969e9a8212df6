"""What each change to a post means for the activity log and for approvals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.models import Membership

from .. import activity, approvals
from ..models import ActivityVerb, Channel, Post, PostStatus
from .common import PartInput, parts_for_post


def record_created(membership: Membership, post: Post, channels: list[Channel]) -> None:
    activity.record(
        ActivityVerb.CREATED,
        workspace_id=post.workspace_id,
        actor=membership.user,
        post=post,
        changes={"status": post.status, "channels": [channel.handle for channel in channels]},
    )
    record_status_change(membership, post, PostStatus.DRAFT)


def record_status_change(membership: Membership, post: Post, before: str) -> None:
    """Scheduled, or submitted for approval: what a change of post status means."""
    if post.status == before:
        return
    if post.status == PostStatus.PENDING_APPROVAL:
        approvals.submitted(post, actor=membership.user)
    elif post.status == PostStatus.SCHEDULED:
        first = post.deliveries.order_by("due_at").values_list("due_at", flat=True).first()
        activity.record(
            ActivityVerb.SCHEDULED,
            workspace_id=post.workspace_id,
            actor=membership.user,
            post=post,
            changes={"at": first.isoformat() if first else None},
        )


@dataclass
class Before:
    """A post as it was before a change, to say what the change did."""

    status: str
    texts: list[str]
    media: list[list[int]]
    options: dict[str, Any]
    tags: list[str]

    @classmethod
    def of(cls, post: Post) -> Before:
        contents = parts_for_post(post)
        return cls(
            status=post.status,
            texts=[content.text for content in contents],
            media=[[m.pk for m in content.media] for content in contents],
            options=dict(post.options),
            tags=list(post.tags),
        )


def record_update(
    membership: Membership,
    post: Post,
    before: Before,
    *,
    parts: list[PartInput] | None,
    overrides: Any,
    options: dict[str, Any] | None,
    tags: list[str] | None,
    at: datetime | None,
    queue: str | None,
    draft: bool | None,
) -> None:
    """Log an edit (naming what changed), a new time, and a status change."""
    edits = {
        "text": parts is not None and [p.text for p in parts] != before.texts,
        "media": parts is not None and [[m.pk for m in p.media] for p in parts] != before.media,
        "channel texts": overrides is not None,
        "options": options is not None and options != before.options,
        "tags": tags is not None and tags != before.tags,
    }
    fields = [name for name, changed in edits.items() if changed]
    common: dict[str, Any] = {
        "workspace_id": post.workspace_id,
        "actor": membership.user,
        "post": post,
    }
    if fields:
        changes: dict[str, Any] = {"fields": fields}
        if edits["text"] and parts is not None:
            changes["text"] = {
                "from": "\n---\n".join(before.texts),
                "to": "\n---\n".join(p.text for p in parts),
            }
        activity.record(ActivityVerb.EDITED, changes=changes, **common)
    moved = at is not None or queue is not None or bool(draft)
    if moved and before.status != PostStatus.DRAFT and post.status == before.status:
        to = "draft" if draft else (at.isoformat() if at else f"queue ({queue})")
        activity.record(ActivityVerb.RESCHEDULED, changes={"to": to}, **common)
    record_status_change(membership, post, before.status)
