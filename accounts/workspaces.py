"""Creating users with workspaces, and resolving the workspace a request acts in."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils.text import slugify

from .models import Membership, Role, User, Workspace

SESSION_KEY = "workspace_id"


@transaction.atomic
def create_user_with_workspace(
    email: str, *, password: str | None, workspace_name: str, timezone: str = "UTC"
) -> tuple[User, Workspace]:
    """Create a user who owns a new workspace. Returns both; raises IntegrityError on a taken email."""
    user = User.objects.create_user(email, password, timezone=timezone)
    workspace = create_workspace(workspace_name, owner=user, timezone=timezone)
    return user, workspace


def create_workspace(name: str, *, owner: User, timezone: str = "UTC") -> Workspace:
    """Create a workspace with a unique slug and make `owner` its owner."""
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    workspace = Workspace.objects.create(name=name, slug=slug, timezone=timezone)
    Membership.objects.create(user=owner, workspace=workspace, role=Role.OWNER)
    return workspace


def current_membership(request: HttpRequest) -> Membership:
    """The membership the logged-in user acts through; raises Http404 if they have none."""
    memberships = Membership.objects.for_user(request.user)  # type: ignore[arg-type]
    chosen = request.session.get(SESSION_KEY)
    membership = (chosen and memberships.filter(workspace_id=chosen).first()) or memberships.first()
    if membership is None:
        raise Http404("You are not a member of any workspace yet. Ask an owner to invite you.")
    if chosen != membership.workspace_id:  # unchanged: no session write on every request
        request.session[SESSION_KEY] = membership.workspace_id
    return membership


def switch_workspace(request: HttpRequest, workspace_id: int) -> Membership:
    """Make the user act in `workspace_id` from now on; raises Http404 if they are not a member."""
    membership = (
        Membership.objects.for_user(request.user)  # type: ignore[arg-type]
        .filter(workspace_id=workspace_id)
        .first()
    )
    if membership is None:
        raise Http404("You are not a member of that workspace.")
    request.session[SESSION_KEY] = membership.workspace_id
    return membership
