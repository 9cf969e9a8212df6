"""Celery tasks for accounts: a few lines each."""

from __future__ import annotations

from celery import shared_task

from . import notifications


@shared_task(ignore_result=True)
def send_notification_email(notification_id: int) -> None:
    notifications.send_email(notification_id)
