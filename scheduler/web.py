"""What every HTML view shares: the request's membership and the role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Membership
from accounts.workspaces import current_membership

from .models import Channel

CHANNEL_MANAGERS_ONLY = "Only owners and admins connect, reconnect and remove channels."


def member_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Log-in required; passes the request's Membership as the second argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, current_membership(request), *args, **kwargs)

    return wrapper


def require(allowed: bool, message: str) -> None:
    """Refuse with 403 (PermissionDenied, shown to the user) unless `allowed`."""
    if not allowed:
        raise PermissionDenied(message)


def require_channel_manager(membership: Membership) -> None:
    """Refuse (PermissionDenied) unless the member may connect, reconnect or remove channels.

    The one check behind every network's connect and callback pages and the API's channel
    endpoints (an API view turns PermissionDenied into 403 `forbidden`).
    """
    require(membership.can_manage_channels, CHANNEL_MANAGERS_ONLY)


def channel_manager_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`member_view` for a page only channel managers may open (connect pages, callbacks)."""

    @wraps(view)
    def checked(
        request: HttpRequest, membership: Membership, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        require_channel_manager(membership)
        return view(request, membership, *args, **kwargs)

    return member_view(checked)


def connected(request: HttpRequest, channel: Channel) -> HttpResponse:
    """After connecting: back to the dashboard, saying which account on which network."""
    messages.success(request, f"Connected {channel.handle} on {channel.get_network_display()}.")
    return redirect("scheduler:dashboard")


def not_connected(request: HttpRequest, message: str, *, retry: str) -> HttpResponse:
    """An OAuth callback that failed: the reason shown on the connect page `retry` (a URL name)."""
    messages.error(request, message)
    return redirect(retry)
