from typing import Any

from django.http import HttpRequest

from .models import Membership
from .workspaces import SESSION_KEY


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The user's workspaces and the one they act in, for the app shell (nav, switcher).

    Views that resolve the membership themselves pass `membership`, which wins over this one.
    """
    if not request.user.is_authenticated:
        return {}
    memberships = list(Membership.objects.for_user(request.user))  # type: ignore[arg-type]
    chosen = request.session.get(SESSION_KEY)
    current = next((m for m in memberships if m.workspace_id == chosen), None)
    return {"memberships": memberships, "membership": current or next(iter(memberships), None)}
