"""Connecting a Bluesky account: a handle (or email) and an app password, optionally a PDS URL."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import Membership

from .networks.base import InvalidServerURL, NetworkError
from .networks.bluesky import connect_bluesky
from .views import _require, member_view

TEMPLATE = "scheduler/connect_bluesky.html"


@member_view
def connect_bluesky_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    _require(membership.can_manage_channels, "Only owners and admins connect channels.")
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
    messages.success(request, f"Connected {channel.handle} on Bluesky.")
    return redirect("scheduler:dashboard")
