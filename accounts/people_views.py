"""Pages for people: first run, sign-up, invitations, members, account settings, workspaces.

Thin: read the form, call `accounts.people`, render or redirect. Role rules come from
`Membership`; a refused action is a 403 page (PermissionDenied).
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from . import people
from .models import Invitation, Membership, NotificationKind, Role
from .urlcache import reverse_pk
from .workspaces import SESSION_KEY, current_membership

TIMEZONES = sorted(zoneinfo.available_timezones())
BACKEND = "django.contrib.auth.backends.ModelBackend"


def _start_session(request: HttpRequest, user: Any, workspace_id: int) -> None:
    login(request, user, backend=BACKEND)
    request.session[SESSION_KEY] = workspace_id


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per address and per client IP (PASSWORD_RESET_LIMIT an
    hour each), so nobody can flood an inbox. Over the limit the page answers as usual (it never
    says whether an account exists) but sends nothing."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form: Any) -> HttpResponse:
        email = form.cleaned_data["email"].strip().lower()
        client = self.request.META.get("REMOTE_ADDR", "")
        if people.over_reset_limit(email=email, client=client):
            return redirect(self.get_success_url())
        return super().form_valid(form)


class LoginView(auth_views.LoginView):
    """Django's login page, except that before anyone has an account it leads to first-run setup."""

    template_name = "accounts/login.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if people.needs_setup():
            return redirect("setup")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "signup_open": settings.HERALD_SIGNUP_OPEN}


def _account_form(request: HttpRequest, template: str, create: Any) -> HttpResponse:
    """GET shows the form; POST creates the account through `create(**fields)` and logs in."""
    context: dict[str, Any] = {"timezones": TIMEZONES, "errors": {}, "form": {}}
    if request.method == "POST":
        form = request.POST
        try:
            user, workspace = create(
                email=form.get("email", ""),
                password=form.get("password", ""),
                workspace_name=form.get("workspace_name", ""),
                timezone_name=form.get("timezone", "UTC"),
                name=form.get("name", ""),
            )
        except people.PeopleError as error:
            context.update(errors=error.errors, form=form)
            return render(request, template, context, status=400)
        _start_session(request, user, workspace.pk)
        messages.success(request, f"Welcome! You own {workspace.name}. Connect a channel next.")
        return redirect("scheduler:dashboard")
    return render(request, template, context)


def setup(request: HttpRequest) -> HttpResponse:
    """First run: asks for the first owner while nobody has an account, then never again."""
    if not people.needs_setup():
        return redirect("login")
    return _account_form(request, "accounts/setup.html", people.set_up_first_owner)


def signup(request: HttpRequest) -> HttpResponse:
    """Public sign-up, only when HERALD_SIGNUP_OPEN is on."""
    if not settings.HERALD_SIGNUP_OPEN:
        raise Http404("Sign-up is closed here; ask an owner of a workspace to invite you.")
    return _account_form(request, "accounts/signup.html", people.create_account)


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the invitation email: join as a new or an existing user."""
    try:
        invitation = people.invitation_for(token)
    except people.PeopleError as error:
        return render(request, "accounts/invitation.html", {"problem": str(error)}, status=410)
    from .models import User

    existing = User.objects.filter(email__iexact=invitation.email).first()
    context: dict[str, Any] = {
        "invitation": invitation,
        "existing": existing,
        "timezones": TIMEZONES,
        "errors": {},
        "form": {"timezone": invitation.workspace.timezone},
    }
    if request.method != "POST":
        return render(request, "accounts/invitation.html", context)
    try:
        if existing is None:
            user = people.accept_as_new_user(
                invitation,
                name=request.POST.get("name", ""),
                password=request.POST.get("password", ""),
                timezone_name=request.POST.get("timezone", invitation.workspace.timezone),
            )
        elif request.user.is_authenticated:
            user = request.user  # type: ignore[assignment]
            people.accept(invitation, user)
        else:
            return redirect_to_login(request.get_full_path())
    except people.PeopleError as error:
        context.update(errors=error.errors, form=request.POST)
        return render(request, "accounts/invitation.html", context, status=400)
    _start_session(request, user, invitation.workspace_id)
    messages.success(request, f"You joined {invitation.workspace.name}.")
    return redirect("scheduler:dashboard")


# -- members ---------------------------------------------------------------------------------------------
def _members_context(membership: Membership) -> dict[str, Any]:
    workspace = membership.workspace
    members = list(
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )
    roles = [(value, label) for value, label in Role.choices if membership.can_grant(value)]
    _prepare_rows(membership, members, roles)
    return {
        "membership": membership,
        "members": members,
        "invitations": list(Invitation.objects.pending().filter(workspace=workspace)),
        "roles": roles,
        "all_roles": Role.choices,
        "errors": {},
        "form": {},
    }


def _prepare_rows(
    membership: Membership, members: list[Membership], roles: list[tuple[str, str]]
) -> None:
    """Give each member's row what it shows, worked out once here rather than per row in the
    template: whether it is the reader, whether the reader may change it, its role options and
    its forms' addresses."""
    # Every row's <select> offers the same roles: render the options once per selected role.
    options = {
        role: render_to_string("accounts/_role_options.html", {"roles": roles, "selected": role})
        for role in Role.values
    }
    owners = sum(1 for member in members if member.role == Role.OWNER)
    for member in members:
        is_you = member.pk == membership.pk
        member.__dict__["is_you"] = is_you
        # The last owner cannot leave (the workspace needs one): not offered, and why.
        member.__dict__["can_leave"] = member.role != Role.OWNER or owners > 1
        member.__dict__["can_change"] = not is_you and membership.can_change_member(member)
        member.__dict__["role_options"] = options[member.role]
        member.__dict__["role_url"] = reverse_pk("accounts:change_role", member.pk)
        member.__dict__["remove_url"] = reverse_pk("accounts:remove_member", member.pk)


@login_required
def members(request: HttpRequest) -> HttpResponse:
    """The workspace's members and pending invitations; owners and admins invite here."""
    membership = current_membership(request)
    context = _members_context(membership)
    if request.method == "POST":
        try:
            invitation = people.invite(
                membership,
                email=request.POST.get("email", ""),
                role=request.POST.get("role", Role.EDITOR),
            )
        except people.PeopleError as error:
            context.update(errors=error.errors, form=request.POST)
            return render(request, "accounts/members.html", context, status=400)
        messages.success(request, f"Invitation sent to {invitation.email}.")
        return redirect("accounts:members")
    return render(request, "accounts/members.html", context)


def _target(membership: Membership, pk: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "workspace"),
        workspace=membership.workspace,
        pk=pk,
    )


def _people_action(request: HttpRequest, action: Any, done: str) -> HttpResponse:
    try:
        action()
        messages.success(request, done)
    except people.PeopleError as error:
        messages.error(request, str(error))
    return redirect("accounts:members")


@require_POST
@login_required
def change_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = current_membership(request)
    target = _target(membership, pk)
    role = request.POST.get("role", "")
    label = dict(Role.choices).get(role, role)
    return _people_action(
        request,
        lambda: people.change_role(membership, target, role=role),
        f"{target.user.email} is now {label}.",
    )


@require_POST
@login_required
def remove_member(request: HttpRequest, pk: int) -> HttpResponse:
    membership = current_membership(request)
    target = _target(membership, pk)
    if target.pk == membership.pk:
        raise PermissionDenied("Use “Leave workspace” to remove yourself.")
    return _people_action(
        request,
        lambda: people.remove_member(membership, target),
        f"Removed {target.user.email}; their API tokens here stopped working.",
    )


@require_POST
@login_required
def leave(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    try:
        people.remove_member(membership, membership)
    except people.PeopleError as error:
        messages.error(request, str(error))
        return redirect("accounts:members")
    request.session.pop(SESSION_KEY, None)
    messages.success(request, f"You left {membership.workspace.name}.")
    if not Membership.objects.filter(user=membership.user).exists():
        return redirect("accounts:new_workspace")
    return redirect("scheduler:dashboard")


@require_POST
@login_required
def invitation_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    membership = current_membership(request)
    invitation = get_object_or_404(Invitation, workspace=membership.workspace, pk=pk)
    if action == "resend":
        return _people_action(
            request,
            lambda: people.resend(membership, invitation),
            f"Sent the invitation to {invitation.email} again.",
        )
    if action == "revoke":
        return _people_action(
            request,
            lambda: people.revoke(membership, invitation),
            f"Revoked the invitation for {invitation.email}; its link no longer works.",
        )
    raise Http404("No such action.")


# -- account and workspaces -------------------------------------------------------------------------------
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Name, time zone, default language and which notifications are emailed."""
    user = request.user
    context: dict[str, Any] = {
        "timezones": TIMEZONES,
        "kinds": NotificationKind.choices,
        "errors": {},
    }
    if request.method == "POST":
        try:
            people.update_account(
                user,  # type: ignore[arg-type]
                name=request.POST.get("name", ""),
                timezone_name=request.POST.get("timezone", "UTC"),
                language=request.POST.get("language", ""),
                email_notifications=request.POST.getlist("email_notifications"),
            )
        except people.PeopleError as error:
            context.update(errors=error.errors, form=request.POST)
            return render(request, "accounts/account.html", context, status=400)
        messages.success(request, "Saved your settings.")
        return redirect("accounts:account")
    return render(request, "accounts/account.html", context)


@login_required
def new_workspace(request: HttpRequest) -> HttpResponse:
    """Anyone logged in can start a workspace of their own (and becomes its owner)."""
    user_zone = getattr(request.user, "timezone", "UTC")
    context: dict[str, Any] = {
        "timezones": TIMEZONES,
        "errors": {},
        "form": {"timezone": user_zone},
    }
    if request.method == "POST":
        try:
            workspace = people.new_workspace(
                request.user,  # type: ignore[arg-type]
                name=request.POST.get("name", ""),
                timezone_name=request.POST.get("timezone", "UTC"),
            )
        except people.PeopleError as error:
            context.update(errors=error.errors, form=request.POST)
            return render(request, "accounts/new_workspace.html", context, status=400)
        request.session[SESSION_KEY] = workspace.pk
        messages.success(request, f"Created {workspace.name}; you are its owner.")
        return redirect("scheduler:dashboard")
    return render(request, "accounts/new_workspace.html", context)
