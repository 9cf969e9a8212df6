"""What every API view shares: the membership, role checks, workspace-scoped lookups, and the
error responses each endpoint documents."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.generics import GenericAPIView

from accounts.models import Membership

from .authentication import TokenAuth
from .errors import STATUS_TEXT, ErrorSerializer, not_found


# No docstring: drf-spectacular would show it as every endpoint's description.
class WorkspaceView(GenericAPIView):  # acts in the workspace of the request's token
    # What `not_found` calls the objects of this view ("post", "channel", ...).
    noun = "object"

    @property
    def membership(self) -> Membership:
        auth = self.request.auth
        assert isinstance(auth, TokenAuth)
        return auth.membership

    def require(self, allowed: bool, message: str) -> None:
        """Refuse with 403 `forbidden` when the member's role does not allow the action."""
        if not allowed:
            raise exceptions.PermissionDenied(message, code="forbidden")

    def lookup(self, queryset: QuerySet[Any], pk: int) -> Any:
        """The row with this id in the token's workspace; 404 for any other (never 403)."""
        row: Model | None = queryset.filter(workspace=self.membership.workspace, pk=pk).first()
        if row is None:
            raise not_found(self.noun)
        return row


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error responses: the given statuses plus those every endpoint may answer."""
    every = {401, 403, 405, 406, 429}
    return {
        code: OpenApiResponse(ErrorSerializer, description=STATUS_TEXT[code])
        for code in sorted(every | set(statuses))
    }
