"""Bearer-token authentication with personal access tokens (accounts.tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import tokens
from accounts.models import ApiToken, Membership


@dataclass(frozen=True)
class TokenAuth:
    """`request.auth` for API requests: the token and the membership it acts through."""

    token: ApiToken
    membership: Membership


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; a missing header leaves the request anonymous (401)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, TokenAuth] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Send the token as `Authorization: Bearer <token>`.", code="invalid_token"
            )
        found = tokens.authenticate(raw.strip())
        if found is None:
            raise exceptions.AuthenticationFailed(
                "This token is unknown or revoked, or its user left the workspace. Create a new "
                "token in Settings → API tokens.",
                code="invalid_token",
            )
        token, membership = found
        return membership.user, TokenAuth(token, membership)

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "scheduler.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token (hrld_…) from Settings → API tokens or "
            "`manage.py create_api_token`.",
        }
