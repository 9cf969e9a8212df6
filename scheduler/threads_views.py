"""Connecting a Threads account: Meta OAuth with a state check, or an existing long-lived token."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import Membership

from .networks import threads
from .networks.base import NetworkError
from .views import _require, member_view

OAUTH_SESSION_KEY = "threads_oauth_state"
TEMPLATE = "scheduler/connect_threads.html"


@member_view
def connect_threads(request: HttpRequest, membership: Membership) -> HttpResponse:
    _require(membership.can_manage_channels, "Only owners and admins connect channels.")
    context = {
        "membership": membership,
        "oauth_ready": bool(settings.THREADS_APP_ID and settings.THREADS_APP_SECRET),
    }
    if request.method != "POST":
        return render(request, TEMPLATE, context)
    token = request.POST.get("access_token", "").strip()
    try:
        if token:
            channel = threads.connect_threads_token(membership.workspace, access_token=token)
            messages.success(request, f"Connected {channel.handle} on Threads.")
            return redirect("scheduler:dashboard")
        state = secrets.token_urlsafe(24)
        target = threads.authorize_url(state=state)
    except NetworkError as error:
        return render(request, TEMPLATE, {**context, "error": error.message}, status=400)
    request.session[OAUTH_SESSION_KEY] = state
    return redirect(target)


@member_view
def threads_callback(request: HttpRequest, membership: Membership) -> HttpResponse:
    _require(membership.can_manage_channels, "Only owners and admins connect channels.")
    expected = request.session.pop(OAUTH_SESSION_KEY, None)
    if not expected or not secrets.compare_digest(expected, request.GET.get("state", "")):
        messages.error(
            request, "That Threads sign-in link expired or was not started here. Connect again."
        )
        return redirect("scheduler:connect_threads")
    if "error" in request.GET or not request.GET.get("code"):
        reason = request.GET.get("error_description") or request.GET.get("error") or "no code"
        messages.error(request, f"Threads did not authorize Herald: {reason}.")
        return redirect("scheduler:connect_threads")
    try:
        channel = threads.connect_threads_code(membership.workspace, code=request.GET["code"])
    except NetworkError as error:
        messages.error(request, error.message)
        return redirect("scheduler:connect_threads")
    messages.success(request, f"Connected {channel.handle} on Threads.")
    return redirect("scheduler:dashboard")
