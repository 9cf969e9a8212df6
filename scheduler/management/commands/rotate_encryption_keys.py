"""Re-encrypt every stored credential with the first key of HERALD_ENCRYPTION_KEYS."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from scheduler.models import Channel, MastodonApp, Webhook


class Command(BaseCommand):
    help = "Re-encrypt stored credentials with the newest key, so older keys can be removed."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for channel in Channel.objects.select_for_update():
                channel.save(update_fields=["credentials"])
                count += 1
            for app in MastodonApp.objects.select_for_update():
                app.save(update_fields=["secrets"])
                count += 1
            for webhook in Webhook.objects.select_for_update():
                webhook.save(update_fields=["secrets"])
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} rows with the first key."))
