"""Personal access tokens for the REST API: created, looked up by hash, revoked.

A token is `hrld_` followed by 43 url-safe random characters (256 bits). Only its SHA-256 is
stored: the token is high-entropy, so a fast hash is enough and lookups stay a single index hit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken, Membership, TokenScope

TOKEN_PREFIX = "hrld_"
# Recording every request's time would write on every API call; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenError(ValueError):
    """The token cannot be created as asked; the message says why."""


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    membership: Membership, *, name: str, scope: str = TokenScope.READ
) -> tuple[ApiToken, str]:
    """Create a token for the membership's user in its workspace. Returns (row, raw token).

    The raw token is not stored anywhere: show it once. Raises TokenError for a bad name or scope.
    """
    name = name.strip()
    if not name:
        raise TokenError("Give the token a name, so you can tell it apart later.")
    if len(name) > 100:
        raise TokenError("Keep the token name under 100 characters.")
    if scope not in TokenScope.values:
        raise TokenError(f"The scope must be one of: {', '.join(TokenScope.values)}.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=membership.user,
        workspace=membership.workspace,
        name=name,
        scope=scope,
        token_hash=hash_token(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
    )
    return token, raw


def authenticate(raw: str) -> tuple[ApiToken, Membership] | None:
    """The active token and the membership it acts through, or None.

    None when the token is unknown, revoked, or its user is inactive or no longer a member of the
    token's workspace (removing someone from a team ends their tokens there too).
    """
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user", "workspace")
        .filter(token_hash=hash_token(raw))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    membership = (
        Membership.objects.select_related("user", "workspace")
        .filter(user=token.user, workspace=token.workspace)
        .first()
    )
    if membership is None:
        return None
    _touch(token)
    return token, membership


def _touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def revoke_token(token: ApiToken) -> bool:
    """Revoke the token at once. Returns False if it was already revoked."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    return bool(revoked)
