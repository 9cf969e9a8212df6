"""Connecting a Threads account: Meta OAuth with a state check, or an existing long-lived token."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from accounts.models import Membership

from ...web import channel_manager_view, connected, not_connected
from ..base import NetworkError
from .connect import authorize_url, connect_threads_code, connect_threads_token

OAUTH_SESSION_KEY = "threads_oauth_state"
TEMPLATE = "scheduler/connect_threads.html"
CONNECT_PAGE = "scheduler:connect_threads"


@channel_manager_view
def connect_threads(request: HttpRequest, membership: Membership) -> HttpResponse:
    context = {
        "membership": membership,
        "oauth_ready": bool(settings.THREADS_APP_ID and settings.THREADS_APP_SECRET),
    }
    if request.method != "POST":
        return render(request, TEMPLATE, context)
    token = request.POST.get("access_token", "").strip()
    try:
        if token:
            channel = connect_threads_token(membership.workspace, access_token=token)
            return connected(request, channel)
        state = secrets.token_urlsafe(24)
        target = authorize_url(state=state)
    except NetworkError as error:
        return render(request, TEMPLATE, {**context, "error": error.message}, status=400)
    request.session[OAUTH_SESSION_KEY] = state
    return redirect(target)


@channel_manager_view
def threads_callback(request: HttpRequest, membership: Membership) -> HttpResponse:
    expected = request.session.pop(OAUTH_SESSION_KEY, None)
    if not expected or not secrets.compare_digest(expected, request.GET.get("state", "")):
        return not_connected(
            request,
            "That Threads sign-in link expired or was not started here. Connect again.",
            retry=CONNECT_PAGE,
        )
    if "error" in request.GET or not request.GET.get("code"):
        reason = request.GET.get("error_description") or request.GET.get("error") or "no code"
        return not_connected(
            request,
            f"Threads did not authorize Herald: {reason}.",
            retry=CONNECT_PAGE,
        )
    try:
        channel = connect_threads_code(membership.workspace, code=request.GET["code"])
    except NetworkError as error:
        return not_connected(request, error.message, retry=CONNECT_PAGE)
    return connected(request, channel)


urlpatterns = [
    path("connect/", connect_threads, name="connect_threads"),
    path("callback/", threads_callback, name="threads_callback"),
]
