from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self) -> None:
        # Connects the receivers of scheduler.hooks in every process (web, worker, beat).
        from . import events, tasks  # noqa: F401
