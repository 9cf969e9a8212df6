"""Settings pages: personal access tokens for the REST API; switching workspace."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import ApiToken, Membership, TokenScope
from .tokens import TokenError, create_token, revoke_token
from .workspaces import current_membership, switch_workspace


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List your tokens in this workspace; create one (shown once, on this page only)."""
    membership = current_membership(request)
    context = {"membership": membership, "scopes": TokenScope.choices, "new_token": None}
    status = 200
    if request.method == "POST":
        try:
            token, raw = create_token(
                membership,
                name=request.POST.get("name", ""),
                scope=request.POST.get("scope", TokenScope.READ),
            )
            context["new_token"] = raw
            context["created"] = token
        except TokenError as error:
            context["error"] = str(error)
            context["form"] = request.POST
            status = 400
    context["tokens"] = _tokens(membership)
    response = render(request, "accounts/api_tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a token shown once
    return response


def _tokens(membership: Membership) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=membership.user, workspace=membership.workspace))


@require_POST
@login_required
def revoke_api_token(request: HttpRequest, pk: int) -> HttpResponse:
    membership = current_membership(request)
    token = get_object_or_404(
        ApiToken.objects.filter(user=membership.user, workspace=membership.workspace), pk=pk
    )
    if revoke_token(token):
        messages.success(request, f"Revoked “{token.name}”. Requests with it now get 401.")
    return redirect("accounts:api_tokens")


@require_POST
@login_required
def switch_workspace_view(request: HttpRequest) -> HttpResponse:
    """Act in another of the user's workspaces, starting from its post list.

    Not back to the page the user was on: that page belongs to the workspace they left.
    """
    try:
        workspace_id = int(request.POST.get("workspace", ""))
    except ValueError:
        workspace_id = 0
    membership = switch_workspace(request, workspace_id)
    messages.success(request, f"You are now working in {membership.workspace.name}.")
    return redirect("scheduler:dashboard")


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """What django-axes answers once a login is locked (AXES_LOCKOUT_CALLABLE): HTTP 429."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "accounts/locked_out.html", context, status=429)
