from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        # Pillow refuses to decode past twice this (DecompressionBombError); uploads are refused
        # past it with a clear message (scheduler/media.py), so image work stays bounded.
        Image.MAX_IMAGE_PIXELS = settings.HERALD_MAX_IMAGE_PIXELS
        # Connects the receivers of scheduler.hooks in every process (web, worker, beat).
        from . import events, tasks  # noqa: F401
