"""Connecting a Bluesky account: app-password sign-in at the account's PDS.

The PDS is the `#atproto_pds` service of the account's DID document
(https://atproto.com/specs/did, https://atproto.com/specs/handle#handle-resolution).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from atproto import Client, models
from atproto_client.client.session import Session
from atproto_core.did_doc import DidDocument
from atproto_identity.resolver import IdResolver
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from accounts.models import Workspace

from ... import outbound
from ...models import Channel
from ..base import ErrorCategory, NetworkError, Profile, check_server_url
from ..connect import save_channel
from .errors import LIBRARY_ERRORS, classify
from .network import BlueskyNetwork
from .session import make_client, token_expiry

logger = logging.getLogger(__name__)


def connect_bluesky(
    workspace: Workspace,
    *,
    identifier: str,
    app_password: str,
    server_url: str | None = None,
    remember_password: bool = False,
) -> Channel:
    """Sign in with a handle (or email, or DID) and an app password; save the channel.

    Without `server_url` the account's PDS comes from its DID document.
    The session is created once here and reused by every publish. `remember_password` keeps the
    app password (encrypted) so Herald can sign in again if the session is ever lost.
    Returns the Channel; raises InvalidServerURL or NetworkError with a message for the user.
    """
    identifier = identifier.strip().removeprefix("@")
    app_password = app_password.strip()
    if not identifier or not app_password:
        raise NetworkError(
            ErrorCategory.REJECTED,
            "missing_credentials",
            "Enter your handle (or email) and an app password.",
        )
    if server_url and server_url.strip():
        pds = check_server_url(server_url)  # the user's PDS: signed in there directly
    else:
        pds = resolve_pds(identifier)
    client, session, session_pds = _sign_in(pds, identifier, app_password)
    credentials: dict[str, Any] = {"session": session.export()}
    if remember_password:
        credentials["app_password"] = app_password
    channel = save_channel(
        workspace,
        network=BlueskyNetwork,
        server_url=session_pds,
        profile=_profile(client, session),
        credentials=credentials,
        token_refreshed_at=timezone.now(),
        token_expires_at=token_expiry(session.refresh_jwt),
    )
    if not remember_password and channel.credentials.get("app_password"):
        _forget_app_password(channel)  # a reconnect keeps old credentials unless told not to
    return channel


def _sign_in(pds: str, identifier: str, app_password: str) -> tuple[Client, Session, str]:
    """createSession at `pds`. Returns the client, its session and the PDS the session is on."""
    client = make_client(pds)
    try:
        client.login(identifier, app_password, fetch_bsky_profile=False)
    except LIBRARY_ERRORS as exc:
        raise _sign_in_error(exc, pds) from exc
    session = Session.decode(client.export_session_string())
    session_pds = pds_base_url(session.pds_endpoint or pds)
    if session_pds != pds:  # the account's DID document sent the client elsewhere
        session_pds = check_server_url(session_pds)
    return client, session, session_pds


def _profile(client: Client, session: Session) -> Profile:
    profile = Profile(
        remote_id=session.did,
        handle=session.handle,
        display_name=session.handle,
        profile_url=f"{settings.BLUESKY_WEB_URL}/profile/{session.handle}",
    )
    try:
        details = client.app.bsky.actor.get_profile(
            models.AppBskyActorGetProfile.Params(actor=session.did)
        )
    except LIBRARY_ERRORS as exc:  # the profile is decoration; the session is what matters
        logger.info("bluesky profile of %s not fetched: %s", session.did, exc)
        return profile
    profile.display_name = details.display_name or session.handle
    profile.avatar_url = details.avatar or ""
    return profile


def _forget_app_password(channel: Channel) -> None:
    credentials = {k: v for k, v in channel.credentials.items() if k != "app_password"}
    type(channel).objects.filter(pk=channel.pk).update(
        credentials=credentials, credentials_version=F("credentials_version") + 1
    )
    channel.credentials = credentials
    channel.credentials_version += 1


def _sign_in_error(exc: BaseException, pds: str) -> NetworkError:
    error = classify(exc)
    host = urlsplit(pds).netloc or pds
    message = error.message
    if error.category == ErrorCategory.AUTH and error.code == "auth_revoked":
        message = (
            f"{host} did not accept that handle and app password. Check both, or create a new "
            "app password in Bluesky under Settings → Privacy and security → App passwords."
        )
    elif error.category == ErrorCategory.RATE_LIMITED:
        minutes = max(1, round((error.retry_after or 300) / 60))
        message = (
            "Too many sign-in attempts for this account (Bluesky allows 30 every 5 minutes). "
            f"Try again in {minutes} minute(s)."
        )
    elif error.category == ErrorCategory.TRANSIENT:
        message = f"Could not reach {host} to sign in. Check the address, or try again soon."
    elif error.code == "not_found":
        message = f"{host} does not look like a Bluesky server (PDS). Check the address."
    return NetworkError(
        error.category,
        error.code,
        message,
        retry_after=error.retry_after,
        http_status=error.http_status,
        excerpt=error.excerpt,
    )


def pds_base_url(endpoint: str) -> str:
    """A PDS URL without the SDK's /xrpc suffix or a trailing slash."""
    return endpoint.rstrip("/").removesuffix("/xrpc").rstrip("/")


def resolve_pds(identifier: str) -> str:
    """The PDS hosting `identifier` (handle, DID or email), as the SDK resolves it.

    handle -> DID (com.atproto.identity.resolveHandle at the default PDS, else DNS TXT
    `_atproto.<handle>`, else https://<handle>/.well-known/atproto-did), DID -> DID document
    (the PLC directory, or did:web) -> its #atproto_pds service. Emails, and accounts that do not
    resolve, sign in at BLUESKY_DEFAULT_PDS (bsky.social's entryway serves its own accounts).
    Raises InvalidServerURL if the document points at a private address.
    """
    default = settings.BLUESKY_DEFAULT_PDS
    if "@" in identifier:
        return default
    did = identifier if identifier.startswith("did:") else _resolve_handle(identifier.lower())
    endpoint = _pds_of_did(did) if did else None
    return check_server_url(pds_base_url(endpoint)) if endpoint else default


def _resolve_handle(handle: str) -> str | None:
    params = models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
    try:
        return str(
            make_client(settings.BLUESKY_DEFAULT_PDS)
            .com.atproto.identity.resolve_handle(params)
            .did
        )
    except LIBRARY_ERRORS as exc:
        logger.info("resolveHandle %s at the default PDS failed: %s", handle, exc)
    resolver = IdResolver(plc_url=settings.BLUESKY_PLC_URL, timeout=settings.HERALD_NETWORK_TIMEOUT)
    did = resolver.handle.resolve_dns(handle)
    if did:
        return did
    try:  # the handle's own web server: user-chosen, so through the SSRF guard
        fetched = outbound.fetch(
            "GET",
            f"https://{handle}/.well-known/atproto-did",
            max_bytes=2048,
            timeout=settings.HERALD_NETWORK_TIMEOUT,
        )
    except outbound.OutboundError:
        return None
    text = fetched.content.decode("utf-8", "replace").strip()
    return text if fetched.status == 200 and text.startswith("did:") else None


def _pds_of_did(did: str) -> str | None:
    try:
        if did.startswith("did:web:"):
            host = did.removeprefix("did:web:").replace("%3A", ":")
            fetched = outbound.fetch(
                "GET",
                f"https://{host}/.well-known/did.json",
                max_bytes=100_000,
                timeout=settings.HERALD_NETWORK_TIMEOUT,
            )
            if fetched.status != 200:
                return None
            return DidDocument.from_dict(json.loads(fetched.content)).get_pds_endpoint()
        resolver = IdResolver(
            plc_url=settings.BLUESKY_PLC_URL, timeout=settings.HERALD_NETWORK_TIMEOUT
        )
        return str(resolver.did.resolve_atproto_data(did).pds) or None
    except Exception as exc:  # unresolvable identities fall back to the default PDS
        logger.info("DID %s did not resolve to a PDS: %s", did, exc)
        return None
