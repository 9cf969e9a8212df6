"""Comments on posts, with @mentions of workspace members.

A mention is `@` followed by a member's email address (`@carol@example.com`) or by the part of
it before the `@` when no other member shares it (`@carol`). Each member mentioned is notified.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts import notifications
from accounts.models import Membership, NotificationKind, User

from . import activity
from .approvals import excerpt, post_link
from .models import ActivityVerb, Comment, Post

MAX_LENGTH = 5000
_MENTION = re.compile(r"(?<![\w.@])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")


class CommentError(ValueError):
    """The comment cannot be saved; the message says why."""


def mentioned_members(workspace_id: int, text: str) -> list[User]:
    """Members of the workspace named in `text`, in order of first mention."""
    wanted = [name.lower().rstrip(".") for name in _MENTION.findall(text)]
    if not wanted:
        return []
    members = [
        m.user for m in Membership.objects.filter(workspace_id=workspace_id).select_related("user")
    ]
    by_email = {user.email.lower(): user for user in members}
    locals_: dict[str, list[User]] = {}
    for member in members:
        locals_.setdefault(member.email.lower().split("@")[0], []).append(member)
    found: dict[int, User] = {}
    for name in wanted:
        same_local = locals_.get(name, [])
        match = by_email.get(name) or (same_local[0] if len(same_local) == 1 else None)
        if match is not None:
            found.setdefault(match.pk, match)
    return list(found.values())


@transaction.atomic
def add_comment(membership: Membership, post: Post, *, text: str) -> Comment:
    """Save a comment by the member on the post and notify the members it mentions.

    Raises PermissionDenied for a viewer, CommentError for an empty or overlong text.
    """
    if not membership.can_comment:
        raise PermissionDenied("Viewers cannot comment.")
    text = text.strip()
    if not text:
        raise CommentError("Write something to comment.")
    if len(text) > MAX_LENGTH:
        raise CommentError(f"Keep comments under {MAX_LENGTH} characters.")
    author = membership.user
    comment = Comment.objects.create(
        workspace_id=post.workspace_id, post=post, author=author, text=text
    )
    mentioned = mentioned_members(post.workspace_id, text)
    comment.mentions.set(mentioned)
    activity.record(
        ActivityVerb.COMMENTED,
        workspace_id=post.workspace_id,
        actor=author,
        post=post,
        changes={"comment": comment.pk, "mentions": [u.email for u in mentioned]},
    )
    notifications.notify(
        mentioned,
        workspace=post.workspace_id,
        kind=NotificationKind.MENTIONED,
        text=f"{author.display_name} mentioned you on {excerpt(post)}: {text[:200]}",
        link=post_link(post) + f"#comment-{comment.pk}",
        skip=author,
    )
    return comment
