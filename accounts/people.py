"""People in workspaces: the first owner, invitations, roles, leaving, account settings.

Role rules come from `Membership` (can_manage_members, can_grant, can_change_member); these
functions add the rules about the workspace as a whole: it always keeps at least one owner.
Invitation links carry the invitation's random key, signed with a timestamp
(django.core.signing), so they expire after HERALD_INVITATION_DAYS and stop working once the
invitation is accepted or revoked.
"""

from __future__ import annotations

import secrets
import smtplib
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from scheduler import activity
from scheduler.models import ActivityVerb

from .models import (
    ApiToken,
    Invitation,
    Membership,
    NotificationKind,
    Role,
    User,
    Workspace,
    validate_timezone,
)
from .workspaces import create_user_with_workspace, create_workspace

INVITATION_SALT = "herald.invitation"
FIRST_RUN_LOCK = 0x6865726C  # any constant: one first-run at a time


class PeopleError(ValueError):
    """What was asked cannot be done; `errors` maps a form field to messages."""

    def __init__(self, errors: dict[str, list[str]] | str) -> None:
        self.errors = errors if isinstance(errors, dict) else {"general": [errors]}
        super().__init__(" ".join(m for msgs in self.errors.values() for m in msgs))


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


# -- first run and sign-up ----------------------------------------------------------------------------
def needs_setup() -> bool:
    """True while nobody has an account: the web app then asks for the first owner."""
    return not User.objects.exists()


def _new_account_errors(
    email: str, password: str, workspace_name: str | None, tz: str
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter an email address like you@example.com."]
    if User.objects.filter(email__iexact=email).exists():
        errors["email"] = ["There is already an account with this address; log in instead."]
    try:
        validate_password(password, User(email=email))
    except ValidationError as error:
        errors["password"] = list(error.messages)
    if workspace_name is not None and not workspace_name.strip():
        errors["workspace_name"] = ["Name your workspace (your team or company)."]
    try:
        validate_timezone(tz)
    except ValidationError as error:
        errors["timezone"] = list(error.messages)
    return errors


def create_account(
    *, email: str, password: str, workspace_name: str, timezone_name: str, name: str = ""
) -> tuple[User, Workspace]:
    """A new user owning a new workspace. Raises PeopleError with per-field messages."""
    email = email.strip().lower()
    errors = _new_account_errors(email, password, workspace_name, timezone_name)
    if errors:
        raise PeopleError(errors)
    try:
        user, workspace = create_user_with_workspace(
            email,
            password=password,
            workspace_name=workspace_name.strip(),
            timezone=timezone_name,
        )
    except IntegrityError as error:
        raise PeopleError({"email": ["There is already an account with this address."]}) from error
    if name.strip():
        User.objects.filter(pk=user.pk).update(name=name.strip())
        user.name = name.strip()
    activity.record(
        ActivityVerb.JOINED,
        workspace_id=workspace.pk,
        actor=user,
        member=user,
        changes={"role": Role.OWNER},
    )
    return user, workspace


def set_up_first_owner(**fields: Any) -> tuple[User, Workspace]:
    """The first run: create the first owner and workspace, only while nobody has an account.

    Raises PeopleError when someone already did (refresh and log in instead).
    """
    with transaction.atomic():
        # Serialise concurrent first runs: the second waits, then finds the first owner. (SQLite
        # serialises writing transactions by itself.)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FIRST_RUN_LOCK])
        if not needs_setup():
            raise PeopleError("Herald is already set up. Log in, or ask an owner to invite you.")
        return create_account(**fields)


def new_workspace(user: User, *, name: str, timezone_name: str) -> Workspace:
    """A workspace the user creates and owns."""
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["Name the workspace."]
    try:
        validate_timezone(timezone_name)
    except ValidationError as error:
        errors["timezone"] = list(error.messages)
    if errors:
        raise PeopleError(errors)
    with transaction.atomic():
        workspace = create_workspace(name.strip(), owner=user, timezone=timezone_name)
        activity.record(
            ActivityVerb.JOINED,
            workspace_id=workspace.pk,
            actor=user,
            member=user,
            changes={"role": Role.OWNER},
        )
    return workspace


# -- invitations -----------------------------------------------------------------------------------------
def invitation_url(invitation: Invitation) -> str:
    token = signing.TimestampSigner(salt=INVITATION_SALT).sign(invitation.key)
    return settings.PUBLIC_URL + reverse("accept_invitation", args=[token])


def invite(membership: Membership, *, email: str, role: str) -> Invitation:
    """Invite `email` into the membership's workspace with `role` and email the link.

    Inviting an address with a pending invitation updates its role and sends it again.
    Raises PermissionDenied, or PeopleError for a bad address, a role this member cannot give,
    or someone who is already a member.
    """
    _require(membership.can_manage_members, "Only owners and admins invite people.")
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as error:
        raise PeopleError({"email": ["Enter an email address like you@example.com."]}) from error
    if role not in Role.values:
        raise PeopleError({"role": [f"Choose one of: {', '.join(Role.values)}."]})
    if not membership.can_grant(role):
        raise PeopleError({"role": ["Only owners can make someone an owner."]})
    workspace = membership.workspace
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise PeopleError({"email": [f"{email} is already a member of {workspace.name}."]})
    invitation = Invitation.objects.pending().filter(workspace=workspace, email=email).first()
    if invitation is None:
        invitation = Invitation(workspace=workspace, email=email, key=secrets.token_urlsafe(32))
    invitation.role, invitation.invited_by = role, membership.user
    invitation.save()
    activity.record(
        ActivityVerb.INVITED,
        workspace_id=workspace.pk,
        actor=membership.user,
        changes={"member": email, "role": role},
    )
    send_invitation(invitation)
    return invitation


def send_invitation(invitation: Invitation) -> None:
    """Email the invitation link (valid HERALD_INVITATION_DAYS from now) and note when."""
    inviter = invitation.invited_by
    who = inviter.display_name if inviter else "Someone"
    role = Role(invitation.role).label
    try:
        send_mail(
            f"[Herald] {who} invites you to {invitation.workspace.name}",
            f"{who} invites you to join the workspace “{invitation.workspace.name}” on Herald "
            f"as {role}.\n\nAccept the invitation: {invitation_url(invitation)}\n\n"
            f"The link works for {settings.HERALD_INVITATION_DAYS} days. If you did not expect "
            "it, ignore this email.\n",
            None,
            [invitation.email],
        )
    except (OSError, smtplib.SMTPException) as error:
        raise PeopleError(
            f"The invitation for {invitation.email} is saved, but the email could not be sent "
            f"({error}). Check EMAIL_URL, then use Resend below."
        ) from error
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())


def resend(membership: Membership, invitation: Invitation) -> None:
    _require(membership.can_manage_members, "Only owners and admins invite people.")
    if not invitation.is_pending:
        raise PeopleError("This invitation was already accepted or revoked.")
    send_invitation(invitation)


def revoke(membership: Membership, invitation: Invitation) -> None:
    """Revoke a pending invitation: its link stops working at once."""
    _require(membership.can_manage_members, "Only owners and admins revoke invitations.")
    Invitation.objects.pending().filter(pk=invitation.pk).update(revoked_at=timezone.now())


def invitation_for(token: str) -> Invitation:
    """The pending invitation a link points to. Raises PeopleError saying why it cannot be used."""
    max_age = settings.HERALD_INVITATION_DAYS * 24 * 3600
    try:
        key = signing.TimestampSigner(salt=INVITATION_SALT).unsign(token, max_age=max_age)
    except signing.SignatureExpired as error:
        raise PeopleError(
            "This invitation link has expired. Ask the person who invited you to send it again."
        ) from error
    except signing.BadSignature as error:
        raise PeopleError("This invitation link is not valid; copy the whole link.") from error
    invitation = Invitation.objects.select_related("workspace").filter(key=key).first()
    if invitation is None or invitation.revoked_at:
        raise PeopleError("This invitation was revoked. Ask an owner or admin of the workspace.")
    if invitation.accepted_at:
        raise PeopleError("This invitation was already accepted. Log in to use the workspace.")
    return invitation


@transaction.atomic
def accept(invitation: Invitation, user: User) -> Membership:
    """Add `user` (who must own the invited address) to the workspace with the invited role."""
    if user.email.lower() != invitation.email.lower():
        raise PeopleError(
            f"This invitation is for {invitation.email}; you are logged in as {user.email}. "
            "Log out, then open the link again."
        )
    claimed = (
        Invitation.objects.pending().filter(pk=invitation.pk).update(accepted_at=timezone.now())
    )
    if not claimed:
        raise PeopleError("This invitation was already accepted or revoked.")
    membership, _ = Membership.objects.get_or_create(
        user=user, workspace=invitation.workspace, defaults={"role": invitation.role}
    )
    activity.record(
        ActivityVerb.JOINED,
        workspace_id=invitation.workspace_id,
        actor=user,
        member=user,
        changes={"role": membership.role},
    )
    return membership


def accept_as_new_user(
    invitation: Invitation, *, name: str, password: str, timezone_name: str
) -> User:
    """Create the invited person's account and accept. Raises PeopleError per field."""
    errors = _new_account_errors(invitation.email, password, None, timezone_name)
    if errors:
        raise PeopleError(errors)
    with transaction.atomic():
        user = User.objects.create_user(
            invitation.email, password, name=name.strip(), timezone=timezone_name
        )
        accept(invitation, user)
    return user


# -- members ---------------------------------------------------------------------------------------------
def _owners_left(workspace: Workspace, without: Membership) -> int:
    return (
        Membership.objects.select_for_update()
        .filter(workspace=workspace, role=Role.OWNER)
        .exclude(pk=without.pk)
        .count()
    )


@transaction.atomic
def change_role(membership: Membership, target: Membership, *, role: str) -> Membership:
    """Give `target` a new role. Raises PermissionDenied or PeopleError (last owner, bad role)."""
    _require(membership.can_change_member(target), "Only owners change an owner's role.")
    if role not in Role.values:
        raise PeopleError({"role": [f"Choose one of: {', '.join(Role.values)}."]})
    _require(membership.can_grant(role), "Only owners can make someone an owner.")
    if (
        target.role == Role.OWNER
        and role != Role.OWNER
        and not _owners_left(target.workspace, target)
    ):
        raise PeopleError("A workspace needs an owner: make someone else owner first.")
    before = target.role
    Membership.objects.filter(pk=target.pk).update(role=role)
    target.role = role
    if before != role:
        activity.record(
            ActivityVerb.ROLE_CHANGED,
            workspace_id=target.workspace_id,
            actor=membership.user,
            member=target.user,
            changes={"role": role, "from": before},
        )
    return target


@transaction.atomic
def remove_member(membership: Membership, target: Membership) -> None:
    """Remove `target` from the workspace (or leave, when it is the member's own membership).

    Their API tokens for the workspace are revoked at once. Raises PermissionDenied, or
    PeopleError when it would leave the workspace without an owner.
    """
    leaving = target.pk == membership.pk
    if not leaving:
        _require(membership.can_change_member(target), "Only owners remove an owner.")
    if target.role == Role.OWNER and not _owners_left(target.workspace, target):
        raise PeopleError(
            "A workspace needs an owner: make someone else owner before "
            + ("leaving." if leaving else "removing this one.")
        )
    ApiToken.objects.active().filter(user=target.user, workspace=target.workspace).update(
        revoked_at=timezone.now()
    )
    target.delete()
    activity.record(
        ActivityVerb.LEFT if leaving else ActivityVerb.REMOVED,
        workspace_id=target.workspace_id,
        actor=membership.user,
        member=target.user,
    )


def over_reset_limit(*, email: str, client: str) -> bool:
    """Count a password reset request; True once the address or client passed the hourly limit."""
    over = False
    for key in (f"herald:pwreset:email:{email}", f"herald:pwreset:ip:{client}"):
        cache.add(key, 0, timeout=3600)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=3600)
            count = 1
        over = over or count > settings.PASSWORD_RESET_LIMIT
    return over


# -- account ---------------------------------------------------------------------------------------------
def update_account(
    user: User, *, name: str, timezone_name: str, language: str, email_notifications: list[str]
) -> User:
    """Save the user's own settings. Raises PeopleError per field."""
    errors: dict[str, list[str]] = {}
    try:
        validate_timezone(timezone_name)
    except ValidationError as error:
        errors["timezone"] = list(error.messages)
    language = language.strip()
    if language and not _looks_like_language_tag(language):
        errors["language"] = ["Give a language tag like en, de or pt-BR, or leave it empty."]
    unknown = set(email_notifications) - set(NotificationKind.values)
    if unknown:
        errors["email_notifications"] = ["Unknown notification kind."]
    if errors:
        raise PeopleError(errors)
    user.name, user.timezone, user.language = name.strip()[:150], timezone_name, language
    user.email_notifications = [k for k in NotificationKind.values if k in email_notifications]
    user.save(update_fields=["name", "timezone", "language", "email_notifications"])
    return user


def _looks_like_language_tag(tag: str) -> bool:
    parts = tag.split("-")
    return 2 <= len(parts[0]) <= 3 and all(p.isalnum() and 1 <= len(p) <= 8 for p in parts)
