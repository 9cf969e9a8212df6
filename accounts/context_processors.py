from typing import Any

from django.http import HttpRequest

from .models import Membership


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The user's workspaces for the header; the current one is resolved by the views."""
    if not request.user.is_authenticated:
        return {}
    return {"memberships": Membership.objects.for_user(request.user)}  # type: ignore[arg-type]
