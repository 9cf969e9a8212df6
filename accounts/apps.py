from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and workspaces"

    def ready(self) -> None:
        # Connects the receiver that emails notifications, in every process (web and worker).
        from . import tasks  # noqa: F401
