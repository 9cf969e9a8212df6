"""Connecting a Bluesky account: a handle (or email) and an app password, optionally a PDS URL."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from accounts.models import Membership

from ...web import channel_manager_view, connected
from ..base import InvalidServerURL, NetworkError
from .connect import connect_bluesky

TEMPLATE = "scheduler/connect_bluesky.html"


@channel_manager_view
def connect_bluesky_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method != "POST":
        return render(request, TEMPLATE, {"membership": membership})
    form = request.POST
    try:
        channel = connect_bluesky(
            membership.workspace,
            identifier=form.get("identifier", ""),
            app_password=form.get("app_password", ""),
            server_url=form.get("server_url", "").strip() or None,
            remember_password=form.get("remember_password") == "on",
        )
    except (InvalidServerURL, NetworkError) as error:
        message = error.message if isinstance(error, NetworkError) else str(error)
        context = {"membership": membership, "error": message, "form": form}
        return render(request, TEMPLATE, context, status=400)
    return connected(request, channel)


urlpatterns = [path("connect/", connect_bluesky_view, name="connect_bluesky")]
