"""In-app notifications, and the email each person chose to receive for them.

A notification is created in the app for every recipient; its email (if the recipient wants
that kind by email) is sent by a Celery task after the surrounding transaction commits, so a
slow or broken mail server never delays or breaks what caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .models import Membership, Notification, NotificationKind, User, Workspace

logger = logging.getLogger(__name__)

# Notifications to email were saved (sent after their commit): `ids`. accounts.tasks sends them,
# so this workflow module never imports the tasks.
emails_due = Signal()


def notify(
    users: Iterable[User | None],
    *,
    workspace: Workspace | int,
    kind: NotificationKind | str,
    text: str,
    link: str = "",
    skip: User | None = None,
) -> list[Notification]:
    """Notify each distinct user (but not `skip`, who caused it). Returns the notifications."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    recipients = {u.pk: u for u in users if u is not None and u.is_active}
    if skip is not None:
        recipients.pop(skip.pk, None)
    created = Notification.objects.bulk_create(
        Notification(user=user, workspace_id=workspace_id, kind=kind, text=text, link=link)
        for user in recipients.values()
    )
    emailed = [n.pk for n in created if recipients[n.user_id].wants_email(kind)]
    if emailed:
        transaction.on_commit(lambda: emails_due.send(sender=Notification, ids=emailed))
    return created


def members_who(workspace: Workspace | int, rule: str) -> list[User]:
    """Members of the workspace for whom the Membership property `rule` is true."""
    memberships = Membership.objects.filter(workspace=workspace).select_related("user")
    return [m.user for m in memberships if getattr(m, rule)]


def send_email(notification_id: int) -> bool:
    """Email one notification, once. Returns True if it was sent now."""
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return False
    notification = Notification.objects.select_related("user", "workspace").get(pk=notification_id)
    link = f"{settings.PUBLIC_URL}{notification.link}" if notification.link else settings.PUBLIC_URL
    body = (
        f"{notification.text}\n\n"
        f"Open it: {link}\n\n"
        f"-- \nHerald, workspace {notification.workspace.name}. Choose which emails you get at "
        f"{settings.PUBLIC_URL}/settings/account/\n"
    )
    try:
        send_mail(
            f"[Herald] {notification.text[:120]}",
            body,
            None,
            [notification.user.email],
        )
    except Exception:
        # The in-app notification stays; the mail server's problem is logged for the operator.
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        logger.exception("could not email notification %s", notification_id)
        return False
    return True


def unread_count(user: User, workspace: Workspace | int) -> int:
    return Notification.objects.filter(user=user, workspace=workspace).unread().count()


def mark_read(user: User, workspace: Workspace | int, ids: list[int] | None = None) -> int:
    """Mark the given notifications (or all) of the user in the workspace read. Returns how many."""
    rows = Notification.objects.filter(user=user, workspace=workspace).unread()
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(read_at=timezone.now())
