"""Celery tasks for accounts: a few lines each."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.dispatch import receiver

from . import notifications


@shared_task(ignore_result=True)
def send_notification_email(notification_id: int) -> None:
    notifications.send_email(notification_id)


@receiver(notifications.emails_due)
def _on_emails_due(sender: type[Any], *, ids: list[int], **kwargs: Any) -> None:
    for pk in ids:
        send_notification_email.delay(pk)
