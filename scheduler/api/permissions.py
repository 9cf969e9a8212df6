"""Token scope: read tokens may only read. Role rules are checked by each view."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from .authentication import TokenAuth


class TokenScopePermission(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, TokenAuth):
            raise exceptions.NotAuthenticated(
                "Authenticate with a personal access token: `Authorization: Bearer <token>`."
            )
        if request.method in permissions.SAFE_METHODS or request.auth.token.can_write:
            return True
        raise exceptions.PermissionDenied(
            "This token is read-only. Create a token with the write scope to change anything.",
            code="insufficient_scope",
        )
