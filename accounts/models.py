"""Users, workspaces (teams) and memberships with roles."""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models

if TYPE_CHECKING:
    from scheduler.models import Media, Post


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not an IANA time zone (for example Europe/Berlin).")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class NotificationKind(models.TextChoices):
    DELIVERY_FAILED = "delivery_failed", "A delivery failed or was missed"
    CHANNEL_NEEDS_RECONNECT = "channel_needs_reconnect", "A channel needs reconnecting"
    APPROVAL_REQUESTED = "approval_requested", "A post awaits my approval"
    POST_REVIEWED = "post_reviewed", "My post was approved or rejected"
    MENTIONED = "mentioned", "I was mentioned in a comment"


def all_notification_kinds() -> list[str]:
    return list(NotificationKind.values)


class User(AbstractUser):
    """A person. Logs in with an email address; sees times in their own time zone."""

    username = None  # type: ignore[assignment,misc]
    email = models.EmailField("email address", unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    name = models.CharField(max_length=150, blank=True)
    language = models.CharField(
        max_length=35, blank=True, help_text="Default language of new posts (BCP 47, e.g. en)"
    )
    # Notification kinds this user also wants by email (in the app they always appear).
    email_notifications = models.JSONField(default=all_notification_kinds, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[misc,assignment]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def wants_email(self, kind: str) -> bool:
        return kind in (self.email_notifications or [])


class Workspace(models.Model):
    """A team. Every scheduler row belongs to exactly one workspace."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    CONTRIBUTOR = "contributor", "Contributor (needs approval)"
    VIEWER = "viewer", "Viewer (read-only)"


class MembershipQuerySet(models.QuerySet["Membership"]):
    def for_user(self, user: User) -> MembershipQuerySet:
        return self.filter(user=user).select_related("workspace")


CANCEL_REFUSED = (
    "Contributors can cancel only their own posts, and only before any part is published; "
    "viewers cannot cancel posts."
)


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace"], name="one_membership_per_workspace"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def can_publish(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN, Role.EDITOR)

    @property
    def can_compose(self) -> bool:
        return self.role != Role.VIEWER

    @property
    def can_manage_channels(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def can_approve(self) -> bool:
        """Approves or rejects posts awaiting approval; sees the review queue."""
        return self.can_publish

    @property
    def can_comment(self) -> bool:
        return self.can_compose

    @property
    def can_manage_members(self) -> bool:
        """Invites people, changes roles, removes members."""
        return self.role in (Role.OWNER, Role.ADMIN)

    def can_grant(self, role: str) -> bool:
        """Whether this member may give `role` to someone (only owners make owners)."""
        return self.can_manage_members and (role != Role.OWNER or self.role == Role.OWNER)

    def can_change_member(self, other: Membership) -> bool:
        """Whether this member may change or remove `other` (only owners touch owners)."""
        return self.can_manage_members and (other.role != Role.OWNER or self.role == Role.OWNER)

    def can_change_post(self, post: Post) -> bool:
        """Editors and above change any post of the workspace; contributors only their own."""
        return self.can_publish or (self.can_compose and post.author_id == self.user_id)

    def can_change_media(self, media: Media) -> bool:
        """Editors and above describe any media; contributors only their own uploads, and only
        while no post using them awaits approval or was approved (an approved post must
        publish what was approved)."""
        from scheduler.models import PostStatus

        if self.can_publish:
            return True
        if not self.can_compose or media.uploaded_by_id != self.user_id:
            return False
        locked = (PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED)
        posts = {part.post for part in media.postpart_set.select_related("post")}
        return all(self.can_change_post(post) and post.status not in locked for post in posts)

    def can_cancel(self, post: Post) -> bool:
        """Editors and above cancel any post; contributors only their own, and only while
        nothing of it has been published (what is out stays out either way)."""
        if self.can_publish:
            return True
        return self.can_change_post(post) and not any(
            delivery.has_sent_anything() for delivery in post.deliveries.all()
        )


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A personal access token for the REST API: one user acting in one workspace.

    Only a SHA-256 hash of the token is stored; the token itself is shown once at creation.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="Shown to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def can_write(self) -> bool:
        return self.scope == TokenScope.WRITE

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(models.Model):
    """An email address invited into a workspace with a role.

    The emailed link carries `key` signed with a timestamp (accounts.people); it stops working
    when it expires, when the invitation is accepted, or when it is revoked.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.workspace} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class NotificationQuerySet(models.QuerySet["Notification"]):
    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """Something one person should know, shown under the bell and, if they chose, emailed."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    text = models.TextField()
    link = models.CharField(max_length=500, blank=True, help_text="Path of the post or channel")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "workspace", "read_at"], name="notification_unread_idx")
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user}: {self.text[:40]}"
