"""The Bluesky session of one channel: loaded from the database, refreshed, persisted at once.

Load the latest stored session at the start of each task, register `on_session_change`
(https://atproto.blue/en/latest/atproto_client/auth.html), persist every created or refreshed
session straight away, and on ExpiredToken / InvalidToken (HTTP 400:
https://atproto.com/specs/xrpc) look for a session another worker stored before giving up.
Access tokens live about two hours, refresh tokens 90 days; each refresh rotates the refresh token and the old one dies two hours later, so a stale session must never overwrite a
newer one in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from atproto import Client
from atproto_client.client.session import Session, SessionEvent
from atproto_client.request import Request
from atproto_server.auth.jwt import get_jwt_payload
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ... import outbound
from ..base import ErrorCategory, NetworkError
from .errors import LIBRARY_ERRORS, TOKEN_ERRORS, classify, error_name

if TYPE_CHECKING:
    from ...models import Channel

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Refresh proactively when the access token has less than this left (the SDK uses 15 minutes).
REFRESH_MARGIN_SECONDS = 15 * 60


def make_client(base_url: str | None) -> Client:
    """An SDK client with Herald's timeouts (the SDK's 5 s default is too short for media).

    Its connections go through scheduler/outbound.py: every request, redirects included, reaches
    only a checked address, since the SDK moves to whatever PDS a session's DID document names,
    which is not the URL a user typed.
    """
    request = Request(**outbound.client_options())
    request.add_additional_header("User-Agent", outbound.USER_AGENT)  # over the SDK's own
    return Client(base_url=base_url or settings.BLUESKY_DEFAULT_PDS, request=request)


class BlueskySession:
    """An SDK client bound to one channel's stored session, created on first use."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._client: Client | None = None
        self._refresh_jwt: str | None = None  # the refresh token the client holds right now

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._connect()
        return self._client

    @property
    def did(self) -> str:
        session = self.client._session
        return session.did if session else self.channel.remote_id

    def call(self, action: Callable[[Client], T], *, write: bool = False) -> T:
        """Run one SDK call; recover an expired session once; raise what fails as NetworkError.

        `write` marks a call that may create the post (its failures can be unknown outcomes).
        """
        try:
            return action(self.client)
        except LIBRARY_ERRORS as exc:
            if error_name(exc) not in TOKEN_ERRORS:
                raise classify(exc, write=write) from exc
            logger.info("channel %s: %s; recovering the session", self.channel.pk, exc)
        # A 400 token error means the request was refused, so repeating it is safe.
        self._recover()
        try:
            return action(self.client)
        except LIBRARY_ERRORS as exc:
            raise classify(exc, write=write) from exc

    def refresh_if_due(self) -> bool:
        """Refresh when the access token is about to expire; True if it did."""
        if seconds_left(self.client.export_session_string()) > REFRESH_MARGIN_SECONDS:
            return False
        # The SDK has no public refresh call; this is the one its auto-refresh uses.
        self.call(lambda c: c._refresh_and_set_session())
        return True

    def _connect(self) -> Client:
        """A client on the latest stored session, persisting every change at once."""
        self._load_credentials()
        client = make_client(self.channel.server_url)
        client.on_session_change(self._on_session_change)
        stored = self.channel.credentials.get("session")
        if stored:
            self._import(client, stored)
        elif self.channel.credentials.get("app_password"):
            self._log_in(client)
        else:
            raise NetworkError(
                ErrorCategory.AUTH,
                "not_connected",
                "Herald holds no Bluesky session for this channel.",
            )
        return client

    def _load_credentials(self) -> None:
        if self.channel.pk:
            row = (
                type(self.channel)
                .objects.filter(pk=self.channel.pk)
                .values_list("credentials", "credentials_version")
                .first()
            )
            if row:
                self.channel.credentials, self.channel.credentials_version = row

    def _import(self, client: Client, session_string: str) -> None:
        client.login(session_string=session_string, fetch_bsky_profile=False)
        self._refresh_jwt = Session.decode(session_string).refresh_jwt

    def _log_in(self, client: Client) -> None:
        """createSession with the remembered app password (rate limited: 30 / 5 min,
        https://docs.bsky.app/docs/advanced-guides/rate-limits)."""
        identifier = self.channel.remote_id or self.channel.handle
        try:
            client.login(
                identifier, self.channel.credentials["app_password"], fetch_bsky_profile=False
            )
        except LIBRARY_ERRORS as exc:
            raise classify(exc) from exc

    def _on_session_change(self, event: SessionEvent, session: Session) -> None:
        # Called inside the SDK's refresh lock: persist and return, no SDK calls here.
        if event == SessionEvent.IMPORT:
            return
        previous, self._refresh_jwt = self._refresh_jwt, session.refresh_jwt
        store_session(
            self.channel, session, replaces=previous if event == SessionEvent.REFRESH else None
        )

    def _recover(self) -> None:
        """After ExpiredToken / InvalidToken.

        1. Adopt a session another worker stored since we loaded ours.
        2. Else refresh ours.
        3. If the refresh token is refused, look at the stored session once more (a concurrent
           refresh may have rotated it), then sign in with the remembered app password if any.
        Raises NetworkError (auth) when nothing works; a transient failure stays transient.
        """
        client = self.client
        if self._adopt_stored_session(client):
            return
        try:
            client._refresh_and_set_session()
            return
        except LIBRARY_ERRORS as exc:
            if error_name(exc) not in TOKEN_ERRORS:
                raise classify(exc) from exc
        if self._adopt_stored_session(client):
            return
        if self.channel.credentials.get("app_password"):
            self._log_in(client)
            return
        raise NetworkError(
            ErrorCategory.AUTH,
            "session_expired",
            "Bluesky no longer accepts Herald's session for this account (the app password was "
            "revoked, or the session expired).",
        )

    def _adopt_stored_session(self, client: Client) -> bool:
        self._load_credentials()
        stored = self.channel.credentials.get("session")
        if not stored or stored == client.export_session_string():
            return False
        self._import(client, stored)
        return True


def store_session(channel: Channel, session: Session, *, replaces: str | None) -> bool:
    """Persist a created or refreshed session unless a newer one is stored. Returns True if saved.

    `replaces` is the refresh token this session was refreshed from (None for a new sign-in,
    which always wins). A refresh only replaces the stored session it descends from: if the
    stored refresh token is another one, a concurrent worker already stored a session at least
    as new, and overwriting it with ours could put back a token the PDS has rotated away (it
    stops working two hours later:
    https://github.com/bluesky-social/atproto/blob/main/packages/pds/src/account-manager/helpers/auth.ts). The write is a compare-and-set on credentials_version.
    """
    if not channel.pk:
        channel.credentials = {**channel.credentials, "session": session.export()}
        return True
    manager = type(channel).objects
    for _ in range(5):
        row = manager.filter(pk=channel.pk).values_list("credentials", "credentials_version")
        current = row.first()
        if current is None:
            return False
        credentials, version = current
        stored = credentials.get("session")
        descends = not stored or same_grant(Session.decode(stored).refresh_jwt, replaces or "")
        if replaces is not None and not descends:
            return False
        credentials = {**credentials, "session": session.export()}
        moved = manager.filter(pk=channel.pk, credentials_version=version).update(
            credentials=credentials,
            credentials_version=F("credentials_version") + 1,
            token_refreshed_at=timezone.now(),
            token_expires_at=token_expiry(session.refresh_jwt),
        )
        if moved:
            channel.credentials, channel.credentials_version = credentials, version + 1
            return True
    return False


def same_grant(first: str, second: str) -> bool:
    """Whether two refresh JWTs are the same grant: the same `jti` (re-use inside the grace
    window returns a new token string with the same id:
    https://github.com/bluesky-social/atproto/blob/main/packages/pds/src/account-manager/helpers/auth.ts)."""
    try:
        first_id, second_id = get_jwt_payload(first).jti, get_jwt_payload(second).jti
    except Exception:
        return first == second
    return first_id == second_id if first_id and second_id else first == second


def token_expiry(jwt: str) -> datetime | None:
    try:
        exp = get_jwt_payload(jwt).exp
    except Exception:
        return None
    return datetime.fromtimestamp(exp, tz=UTC) if exp else None


def seconds_left(session_string: str) -> float:
    """Seconds until the session's access token expires (negative when expired)."""
    expiry = token_expiry(Session.decode(session_string).access_jwt)
    return (expiry - timezone.now()).total_seconds() if expiry else 0.0
