"""Connecting a Mastodon account: a server URL, then OAuth or an existing access token."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from accounts.models import Membership

from ...models import MastodonApp
from ...web import channel_manager_view, connected, not_connected
from ..base import InvalidServerURL, NetworkError, check_server_url
from .connect import authorize_url, connect_mastodon_token, exchange_code, register_app

OAUTH_SESSION_KEY = "mastodon_oauth"
TEMPLATE = "scheduler/connect_mastodon.html"
CONNECT_PAGE = "scheduler:connect_mastodon"


@channel_manager_view
def connect_mastodon(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method != "POST":
        return render(request, TEMPLATE, {"membership": membership})
    try:
        base_url = check_server_url(request.POST.get("server_url", ""))
        token = request.POST.get("access_token", "").strip()
        if token:
            channel = connect_mastodon_token(
                membership.workspace, server_url=base_url, access_token=token
            )
            return connected(request, channel)
        app = register_app(
            base_url, request.build_absolute_uri(reverse("scheduler:mastodon_callback"))
        )
        state = secrets.token_urlsafe(24)
        request.session[OAUTH_SESSION_KEY] = {"state": state, "base_url": base_url}
        return redirect(authorize_url(app, state=state))
    except (InvalidServerURL, NetworkError) as error:
        message = error.message if isinstance(error, NetworkError) else str(error)
        context = {"membership": membership, "error": message, "form": request.POST}
        return render(request, TEMPLATE, context, status=400)


@channel_manager_view
def mastodon_callback(request: HttpRequest, membership: Membership) -> HttpResponse:
    pending = request.session.pop(OAUTH_SESSION_KEY, None)
    if not pending or not secrets.compare_digest(pending["state"], request.GET.get("state", "")):
        return not_connected(
            request,
            "That Mastodon sign-in link expired or was not started here. Connect again.",
            retry=CONNECT_PAGE,
        )
    if "error" in request.GET:
        reason = request.GET.get("error_description") or request.GET["error"]
        return not_connected(
            request,
            f"Mastodon did not authorize Herald: {reason}.",
            retry=CONNECT_PAGE,
        )
    app = get_object_or_404(MastodonApp, base_url=pending["base_url"])
    try:
        token = exchange_code(app, request.GET.get("code", ""))
        channel = connect_mastodon_token(
            membership.workspace, server_url=app.base_url, access_token=token
        )
    except NetworkError as error:
        return not_connected(request, error.message, retry=CONNECT_PAGE)
    return connected(request, channel)


urlpatterns = [
    path("connect/", connect_mastodon, name="connect_mastodon"),
    path("callback/", mastodon_callback, name="mastodon_callback"),
]
