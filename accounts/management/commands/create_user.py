"""Create a user with their own workspace (or add them to an existing one)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from accounts.models import Membership, Role, User, Workspace
from accounts.workspaces import create_user_with_workspace


class Command(BaseCommand):
    help = "Create a user who owns a new workspace, or join an existing workspace with --role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", help="Prompted for when omitted")
        parser.add_argument(
            "--workspace",
            required=True,
            help="Name of a new workspace, or slug of an existing one with --role",
        )
        parser.add_argument(
            "--role", choices=Role.values, help="Join the existing workspace with this role"
        )
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--superuser", action="store_true", help="Also give access to /admin/")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or getpass.getpass("Password: ")
        try:
            if options["role"]:
                workspace = Workspace.objects.filter(slug=options["workspace"]).first()
                if workspace is None:
                    raise CommandError(f"No workspace with slug {options['workspace']!r}.")
                user = User.objects.create_user(
                    options["email"], password, timezone=options["timezone"]
                )
                Membership.objects.create(user=user, workspace=workspace, role=options["role"])
            else:
                user, workspace = create_user_with_workspace(
                    options["email"],
                    password=password,
                    workspace_name=options["workspace"],
                    timezone=options["timezone"],
                )
        except IntegrityError as exc:
            raise CommandError(f"A user with email {options['email']} already exists.") from exc
        if options["superuser"]:
            User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {user.email} in workspace “{workspace.name}” ({workspace.slug}). Log in at /login/."
            )
        )
