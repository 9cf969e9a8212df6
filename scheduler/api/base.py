"""What every API view shares: the membership, role checks, workspace-scoped lookups, and the
error responses each endpoint documents."""

from __future__ import annotations

from typing import Any

from django.db.models import Manager, Model, QuerySet
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request

from accounts.models import Membership

from ..activity import set_actor
from .authentication import TokenAuth
from .errors import STATUS_TEXT, ErrorSerializer, not_found, validation_error

PAGE_PARAMS = frozenset({"cursor", "limit"})


# No docstring: drf-spectacular would show it as every endpoint's description.
class WorkspaceView(GenericAPIView):  # acts in the workspace of the request's token
    # What `not_found` calls the objects of this view ("post", "channel", ...).
    noun = "object"
    # No OPTIONS metadata: the OpenAPI schema describes every endpoint (OPTIONS answers 405).
    metadata_class = None
    # Query parameters GET accepts; any other is refused, so a typo never filters silently.
    query_params: frozenset[str] = frozenset()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # The request's ActorMiddleware scope resets this when the request ends.
        set_actor(token_auth(request).membership.user)
        method = request.method or ""
        if not hasattr(self, method.lower()):
            # 405 before looking at the query: the method is what is wrong.
            raise exceptions.MethodNotAllowed(method)
        allowed = self.query_params if request.method == "GET" else frozenset()
        unknown = sorted(set(request.query_params) - allowed - {"format"})
        if unknown:
            raise validation_error(
                {name: ["Unknown query parameter; see /api/v1/docs/."] for name in unknown}
            )

    @property
    def membership(self) -> Membership:
        return token_auth(self.request).membership

    def require(self, allowed: bool, message: str) -> None:
        """Refuse with 403 `forbidden` when the member's role does not allow the action."""
        if not allowed:
            raise exceptions.PermissionDenied(message, code="forbidden")

    def lookup(self, queryset: QuerySet[Any] | Manager[Any], pk: int) -> Any:
        """The row with this id in the token's workspace; 404 for any other (never 403)."""
        row: Model | None = queryset.filter(workspace=self.membership.workspace, pk=pk).first()
        if row is None:
            raise not_found(self.noun)
        return row


def token_auth(request: Request) -> TokenAuth:
    """The token and membership of an authenticated API request."""
    auth = request.auth
    assert isinstance(auth, TokenAuth), "TokenScopePermission lets only token requests through"
    return auth


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error responses: the given statuses plus those every endpoint may answer."""
    # 400: an unknown query parameter; 413: any body over the size limit.
    every = {400, 401, 403, 405, 406, 413, 429}
    return {
        code: OpenApiResponse(ErrorSerializer, description=STATUS_TEXT[code])
        for code in sorted(every | set(statuses))
    }


@csrf_exempt
def unknown_path(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """JSON 404 for any path under /api/v1/ that is not an endpoint (or has a malformed id)."""
    body = {
        "error": {
            "code": "not_found",
            "message": "No such endpoint or object. See /api/v1/docs/ for the API.",
            "details": {},
        }
    }
    return JsonResponse(body, status=404)
