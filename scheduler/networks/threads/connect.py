"""Connecting a Threads account and keeping its token alive.

OAuth: https://developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions;
long-lived tokens and their refresh: https://developers.facebook.com/docs/threads/get-started/long-lived-tokens.

- `authorize_url` and `connect_threads_code`: Meta OAuth (authorization code, then the 60-day
  long-lived token at once);
- `connect_threads_token`: an existing token, for the API;
- `refresh_due_tokens`: the beat job that refreshes tokens well before day 60.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace

from ...models import Channel, ChannelStatus
from ..base import ErrorCategory, NetworkError
from ..connect import save_channel
from .graph import (
    INVALID_PARAMETER_CODE,
    LONG_LIVED_LIFETIME,
    Graph,
    GraphError,
    exchange_for_long_lived,
    refresh_token,
)
from .network import REFRESH_MIN_AGE, ThreadsNetwork

logger = logging.getLogger(__name__)


def refresh_due_tokens(*, now: datetime | None = None) -> dict[str, int]:
    """Refresh every Threads token that is due. Returns counts by outcome.

    1. Channels that are not waiting for a reconnect, whose token is at least 24 hours old and
       expires within THREADS_REFRESH_MARGIN_DAYS (or whose age or expiry is unknown).
    2. Each channel is refreshed under its row lock (skipped if another run holds it), so
       overlapping runs refresh a token once; the new token is stored at once.
    3. Threads refusing the token (190, or an expired token) marks the channel needs_reconnect,
       which notifies the workspace; any other failure waits for the next run.
    """
    now = now or timezone.now()
    due = (
        Channel.objects.filter(network=ThreadsNetwork.key)
        .exclude(status=ChannelStatus.NEEDS_RECONNECT)
        .filter(
            Q(token_refreshed_at__isnull=True) | Q(token_refreshed_at__lte=now - REFRESH_MIN_AGE)
        )
        .filter(
            Q(token_expires_at__isnull=True)
            | Q(token_expires_at__lte=now + timedelta(days=settings.THREADS_REFRESH_MARGIN_DAYS))
        )
    )
    counts = {"refreshed": 0, "needs_reconnect": 0, "postponed": 0, "skipped": 0}
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            channel = Channel.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            outcome = refresh_channel_token(channel) if channel else "skipped"
        counts[outcome] += 1
    return counts


def refresh_channel_token(channel: Channel) -> str:
    """Refresh one channel's token if due: "refreshed", "needs_reconnect", "postponed" or "skipped"."""
    try:
        changed = ThreadsNetwork(channel).refresh_credentials()
    except NetworkError as error:
        if error.category != ErrorCategory.AUTH:
            logger.warning("channel %s: %s", channel.pk, error.message)
            return "postponed"
        channel.mark_needs_reconnect(error.message)
        return "needs_reconnect"
    return "refreshed" if changed else "skipped"


# -- connecting (Meta OAuth, or an existing long-lived token) ----------------------------------------------
def _require_app() -> None:
    if not (settings.THREADS_APP_ID and settings.THREADS_APP_SECRET):
        raise NetworkError(
            ErrorCategory.REJECTED,
            "threads_not_configured",
            "Signing in with Threads is not set up on this Herald: an administrator must set "
            "THREADS_APP_ID and THREADS_APP_SECRET. You can connect with an access token instead.",
        )


def authorize_url(*, state: str) -> str:
    """Where to send the user to approve Herald. Raises NetworkError if not configured."""
    _require_app()
    query = urlencode(
        {
            "client_id": settings.THREADS_APP_ID,
            "redirect_uri": settings.THREADS_REDIRECT_URI,
            "scope": ",".join(settings.THREADS_SCOPES),
            "response_type": "code",
            "state": state,
        }
    )
    return f"{settings.THREADS_AUTHORIZE_URL}?{query}"


def connect_threads_code(workspace: Workspace, *, code: str) -> Channel:
    """Finish the OAuth flow: code -> short-lived -> long-lived token, then save the channel.

    Returns the channel; raises NetworkError with a message for the user.
    """
    _require_app()
    graph = Graph(settings.THREADS_GRAPH_URL)
    try:
        short = graph.post(
            "oauth/access_token",
            versioned=False,
            client_id=settings.THREADS_APP_ID,
            client_secret=settings.THREADS_APP_SECRET,
            code=code.split("#", 1)[0],  # Meta appends "#_" to the redirect
            grant_type="authorization_code",
            redirect_uri=settings.THREADS_REDIRECT_URI,
        )
        token, expires_at = exchange_for_long_lived(
            settings.THREADS_GRAPH_URL, str(short["access_token"])
        )
    except NetworkError as error:
        raise _connect_error(error, "did not accept the sign-in") from error
    return _save_threads_channel(
        workspace, token, expires_at=expires_at, refreshed_at=timezone.now()
    )


def connect_threads_token(workspace: Workspace, *, access_token: str) -> Channel:
    """Connect with an existing long-lived token (the API's way). Returns the channel.

    The token is checked against /me, then refreshed if Threads allows it, which also tells
    its expiry; a token under 24 hours old cannot be refreshed and expires in about 60 days;
    a short-lived token is exchanged for a long-lived one when the app secret is configured.
    Raises NetworkError with a message for the user.
    """
    token = access_token.strip()
    if not token:
        raise NetworkError(ErrorCategory.REJECTED, "token_missing", "Paste a Threads access token.")
    probe = _probe(workspace, token)
    try:
        probe.verify_credentials()
    except NetworkError as error:
        raise _connect_error(error, "did not accept this access token") from error
    expires_at: datetime | None
    refreshed_at: datetime | None = timezone.now()
    try:
        token, expires_at = refresh_token(settings.THREADS_GRAPH_URL, token)
    except GraphError as error:
        if error.category == ErrorCategory.AUTH:
            raise _connect_error(error, "did not accept this access token") from error
        if error.graph_code != INVALID_PARAMETER_CODE:
            expires_at = refreshed_at = None  # unknown: the refresh job tries again
        else:
            token, expires_at = _young_or_short_lived(token)
    except NetworkError:
        expires_at = refreshed_at = None
    return _save_threads_channel(workspace, token, expires_at=expires_at, refreshed_at=refreshed_at)


def _young_or_short_lived(token: str) -> tuple[str, datetime]:
    """A token Threads will not refresh: short-lived (exchange it) or under 24 hours old."""
    if settings.THREADS_APP_SECRET:
        try:
            return exchange_for_long_lived(settings.THREADS_GRAPH_URL, token)
        except NetworkError:
            pass
    # Issued within the last day: it expires 59 to 60 days from now.
    return token, timezone.now() + LONG_LIVED_LIFETIME - REFRESH_MIN_AGE


def _probe(workspace: Workspace, token: str) -> ThreadsNetwork:
    channel = Channel(
        workspace=workspace, network=ThreadsNetwork.key, server_url=settings.THREADS_GRAPH_URL
    )
    channel.credentials = {"access_token": token}  # type: ignore[assignment]
    return ThreadsNetwork(channel)


def _save_threads_channel(
    workspace: Workspace,
    token: str,
    *,
    expires_at: datetime | None,
    refreshed_at: datetime | None,
) -> Channel:
    try:
        profile = _probe(workspace, token).verify_credentials()
    except NetworkError as error:
        raise _connect_error(error, "did not accept the new access token") from error
    return save_channel(
        workspace,
        network=ThreadsNetwork,
        server_url=settings.THREADS_GRAPH_URL,
        profile=profile,
        credentials={"access_token": token},
        token_expires_at=expires_at,
        token_refreshed_at=refreshed_at,
    )


def _connect_error(error: NetworkError, what: str) -> NetworkError:
    said = error.said if isinstance(error, GraphError) else error.message
    if error.category == ErrorCategory.TRANSIENT:
        message = f"Could not reach Threads to connect the account ({said}). Try again shortly."
    else:
        message = f"Threads {what} ({said}). Connect the account again."
    return NetworkError(
        error.category if error.category == ErrorCategory.TRANSIENT else ErrorCategory.AUTH,
        "connect_failed",
        message,
        http_status=error.http_status,
        excerpt=error.excerpt,
    )
