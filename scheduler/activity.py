"""The activity log: one row per thing that happened, written by the workflow functions.

Who did it: workflows that know the acting member pass `actor`; the others (connecting a
channel, cancelling a post) read the person behind the current web request or API token, set
once per request by `ActorMiddleware` and the API's `WorkspaceView`. Work done by the engine
(published, failed, missed) has no actor: Herald did it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse

from .models import Activity, ActivityVerb

if TYPE_CHECKING:
    from accounts.models import User

    from .models import Channel, Post

_actor: contextvars.ContextVar[User | None] = contextvars.ContextVar("herald_actor", default=None)


def set_actor(user: User | None) -> contextvars.Token[User | None]:
    """Make `user` the actor of activity recorded from here on (in this request or task)."""
    return _actor.set(user)


def current_actor() -> User | None:
    return _actor.get()


class ActorMiddleware:
    """Records the logged-in user as the actor of what a web request does."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user if request.user.is_authenticated else None
        token = set_actor(user)  # type: ignore[arg-type]
        try:
            return self.get_response(request)
        finally:
            _actor.reset(token)


_UNSET: Any = object()


def record(verb: ActivityVerb | str, **subject: Any) -> Activity:
    """Add one entry to the workspace's log (the arguments are `entry`'s)."""
    activity = entry(verb, **subject)
    activity.save()
    return activity


def entry(
    verb: ActivityVerb | str,
    *,
    workspace_id: int,
    actor: User | None = _UNSET,
    post: Post | None = None,
    channel: Channel | None = None,
    member: User | None = None,
    changes: dict[str, Any] | None = None,
) -> Activity:
    """An entry, not saved yet (`record` saves it; a batch goes through `bulk_create`).

    `actor` defaults to the current request's user."""
    if actor is _UNSET:
        actor = current_actor()
    if channel is not None:
        changes = {"channel": channel.handle, "network": channel.network, **(changes or {})}
    if member is not None:
        changes = {"member": member.email, **(changes or {})}
    return Activity(
        workspace_id=workspace_id,
        actor=actor,
        verb=verb,
        post=post,
        channel=channel,
        member=member,
        changes=changes or {},
    )


def describe(entry: Activity) -> str:
    """One line a person reads: "alice@example.com approved post 12 (reason …)"."""
    who = entry.actor.display_name if entry.actor else "Herald"
    verb = ActivityVerb(entry.verb).label
    if entry.post_id:
        subject = f"post {entry.post_id}"
    elif entry.changes.get("channel"):
        subject = f"channel {entry.changes['channel']}"
    elif entry.changes.get("member"):
        subject = entry.changes["member"]
    else:
        subject = ""
    detail = _detail(entry)
    return " ".join(part for part in (who, verb, subject, detail) if part)


def _detail(entry: Activity) -> str:
    changes = entry.changes or {}
    if entry.verb == ActivityVerb.EDITED and changes.get("fields"):
        return "(" + ", ".join(changes["fields"]) + ")"
    if entry.verb == ActivityVerb.REJECTED and changes.get("reason"):
        return f"— “{changes['reason']}”"
    if entry.post_id and changes.get("channel"):
        return f"on {changes['channel']}" + (
            f": {changes['error']}" if changes.get("error") else ""
        )
    if changes.get("role"):
        return f"as {changes['role']}"
    if changes.get("to"):
        return f"to {changes['to']}"
    return ""
