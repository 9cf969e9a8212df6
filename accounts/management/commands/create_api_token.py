"""Create a personal access token for the REST API and print it (it is shown only once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Membership, TokenScope
from accounts.tokens import TokenError, create_token


class Command(BaseCommand):
    help = "Create an API token for a user in one of their workspaces and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="The user the token acts as")
        parser.add_argument("--workspace", required=True, help="Slug of the user's workspace")
        parser.add_argument("--scope", choices=TokenScope.values, default=TokenScope.READ)
        parser.add_argument("--name", default="Command line", help="To tell tokens apart later")

    def handle(self, *args: Any, **options: Any) -> None:
        membership = (
            Membership.objects.select_related("user", "workspace")
            .filter(
                user__email__iexact=options["email"].strip(),
                workspace__slug=options["workspace"].strip(),
            )
            .first()
        )
        if membership is None:
            raise CommandError(
                f"{options['email']} is not a member of a workspace with slug "
                f"{options['workspace']!r}. Check both, or add the user with create_user --role."
            )
        try:
            token, raw = create_token(membership, name=options["name"], scope=options["scope"])
        except TokenError as error:
            raise CommandError(str(error)) from error
        self.stderr.write(
            f"Created {token.scope} token “{token.name}” for {membership.user.email} in "
            f"“{membership.workspace.name}”. It is shown once; store it now:"
        )
        self.stdout.write(raw)
