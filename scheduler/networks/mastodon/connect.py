"""Connecting a Mastodon account: OAuth (authorization code) or an existing access token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from mastodon import Mastodon, MastodonError

from accounts.models import Workspace

from ... import outbound
from ...models import Channel, MastodonApp
from ..base import ErrorCategory, NetworkError, check_server_url
from ..connect import save_channel
from .network import MastodonNetwork, classify, client


def connect_mastodon_token(workspace: Workspace, *, server_url: str, access_token: str) -> Channel:
    """Connect (or reconnect) the Mastodon account behind an access token. Returns the channel.

    The server URL is checked (no private addresses unless allowed) and the token verified
    against the server before anything is saved. Raises InvalidServerURL or NetworkError.
    """
    base_url = check_server_url(server_url)
    probe = Channel(workspace=workspace, network=MastodonNetwork.key, server_url=base_url)
    probe.credentials = {"access_token": access_token}
    profile = MastodonNetwork(probe).verify_credentials()
    return save_channel(
        workspace,
        network=MastodonNetwork,
        server_url=base_url,
        profile=profile,
        credentials={"access_token": access_token},
    )


def register_app(base_url: str, redirect_uri: str) -> Any:
    """Herald's app on this instance, registered once and cached
    (https://docs.joinmastodon.org/methods/apps/#create). Raises NetworkError."""
    scopes = " ".join(settings.MASTODON_SCOPES)
    app = MastodonApp.objects.filter(base_url=base_url).first()
    if app and app.redirect_uri == redirect_uri and app.scopes == scopes:
        return app
    try:
        client_id, client_secret = Mastodon.create_app(
            settings.MASTODON_CLIENT_NAME,
            scopes=settings.MASTODON_SCOPES,
            redirect_uris=redirect_uri,
            website=settings.PUBLIC_URL,
            api_base_url=base_url,
            request_timeout=settings.HERALD_NETWORK_TIMEOUT,
            session=outbound.session(),
            user_agent=outbound.USER_AGENT,
        )
    except KeyError as exc:  # Mastodon.py's create_app does not check the HTTP status
        raise NetworkError(
            ErrorCategory.REJECTED,
            "app_registration_failed",
            f"{base_url} refused to register Herald as an app. Is it a Mastodon server?",
        ) from exc
    except MastodonError as exc:
        raise classify(exc) from exc
    except Exception as exc:  # requests errors, non-JSON answers
        raise NetworkError(
            ErrorCategory.TRANSIENT, "unreachable", f"Could not reach {base_url}: {exc}"
        ) from exc
    app, _ = MastodonApp.objects.update_or_create(
        base_url=base_url,
        defaults={
            "client_id": client_id,
            "secrets": {"client_secret": client_secret},
            "redirect_uri": redirect_uri,
            "scopes": scopes,
        },
    )
    return app


def authorize_url(app: Any, *, state: str) -> str:
    api = client(app.base_url, client_id=app.client_id, client_secret=app.secrets["client_secret"])
    return str(
        api.auth_request_url(
            redirect_uris=app.redirect_uri,
            scopes=settings.MASTODON_SCOPES,
            state=state,
            force_login=True,
            allow_http=app.base_url.startswith("http://"),
        )
    )


def exchange_code(app: Any, code: str) -> str:
    """Trade the authorization code for an access token. Raises NetworkError."""
    api = client(app.base_url, client_id=app.client_id, client_secret=app.secrets["client_secret"])
    try:
        return str(
            api.log_in(
                code=code,
                redirect_uri=app.redirect_uri,
                scopes=settings.MASTODON_SCOPES,
                allow_http=app.base_url.startswith("http://"),
            )
        )
    except (MastodonError, LookupError, TypeError, ValueError) as exc:
        # Mastodon.py turns every log_in failure into an IllegalArgumentError, bad code and server down alike;
        # a malformed OAuth metadata document fails inside the library with plain errors.
        raise NetworkError(
            ErrorCategory.AUTH,
            "oauth_failed",
            f"{urlsplit(app.base_url).netloc} did not accept the authorization ({exc}). Try connecting again.",
        ) from exc
