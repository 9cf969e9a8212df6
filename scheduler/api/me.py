"""API: the token's identity (`GET /me`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from . import serializers as s
from .base import WorkspaceView, errors, token_auth


class MeView(WorkspaceView):
    @extend_schema(
        summary="The token's user, workspace, role and scope",
        responses={200: s.MeSerializer, **errors()},
        tags=["me"],
    )
    def get(self, request: Request) -> Response:
        membership = self.membership
        token = token_auth(request).token
        return Response(
            s.MeSerializer(
                {
                    "user": membership.user,
                    "workspace": membership.workspace,
                    "role": membership.role,
                    "token": token,
                }
            ).data
        )
