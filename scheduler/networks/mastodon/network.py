"""Mastodon (and every server speaking its API) through Mastodon.py 2.3.

The API: https://docs.joinmastodon.org/methods/statuses/ and /methods/media/; the library:
https://mastodonpy.readthedocs.io/.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from ... import outbound
from ..base import (
    ErrorCategory,
    Limits,
    Network,
    NetworkError,
    PartContext,
    Profile,
    PublishedPart,
    count_graphemes,
)

# The server remembers an Idempotency-Key for one hour
# (https://docs.joinmastodon.org/methods/statuses/#create); leave a margin.
IDEMPOTENCY_WINDOW = timedelta(minutes=55)
MEDIA_REUSE_WINDOW = timedelta(hours=12)
# Mastodon's own URL and mention patterns, simplified to what changes the count: a URL counts
# 23 characters, a remote mention its local part
# (https://github.com/mastodon/mastodon/blob/main/app/validators/status_length_validator.rb).
URL_RE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
REMOTE_MENTION_RE = re.compile(r"(@[\w.-]+)@[\w.-]+\.[a-z]{2,}", re.IGNORECASE)
TAG_RE = re.compile(r"<[^>]+>")
# Attaching media that is still processing gives this 422; it is worth retrying
# (https://docs.joinmastodon.org/methods/media/#v2).
PROCESSING_422 = "finished processing"
MASTODON_VERSION = "4.0.0"  # lowest version whose endpoints we use (v2 media, v2 instance)


class MastodonNetwork(Network):
    key = "mastodon"
    label = "Mastodon"

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self._api: Mastodon | None = None

    @property
    def api(self) -> Mastodon:
        if self._api is None:
            self._api = client(
                self.channel.server_url, self.channel.credentials.get("access_token")
            )
        return self._api

    # -- limits ----------------------------------------------------------------------------------
    def default_limits(self) -> Limits:
        return Limits(
            max_characters=500,
            max_media=4,
            characters_reserved_per_url=23,
            max_image_bytes=16 * 1024 * 1024,
            max_video_bytes=99 * 1024 * 1024,
            max_alt_text=1500,
            supports_content_warning=True,
        )

    def fetch_limits(self) -> Limits:
        try:
            config = self.api.instance_v2()["configuration"]
        except MastodonNotFoundError:  # servers older than 4.0 have no v2 instance
            config = self._v1_configuration()
        except MastodonError as exc:
            raise classify(exc, self.api) from exc
        statuses, media = config.get("statuses", {}), config.get("media_attachments", {})
        default = self.default_limits()
        return Limits(
            max_characters=statuses.get("max_characters") or default.max_characters,
            max_media=statuses.get("max_media_attachments") or default.max_media,
            characters_reserved_per_url=statuses.get("characters_reserved_per_url") or 23,
            max_image_bytes=media.get("image_size_limit") or default.max_image_bytes,
            max_video_bytes=media.get("video_size_limit") or default.max_video_bytes,
            max_alt_text=media.get("description_limit") or default.max_alt_text,
            supported_mime_types=tuple(media.get("supported_mime_types") or ()),
            supports_content_warning=True,
        )

    def _v1_configuration(self) -> dict[str, Any]:
        try:
            instance = self.api.instance_v1()
        except MastodonError as exc:
            raise classify(exc, self.api) from exc
        config = dict(instance.get("configuration") or {})
        if instance.get("max_toot_chars"):  # Pleroma / Akkoma
            config.setdefault("statuses", {})["max_characters"] = instance["max_toot_chars"]
        return config

    def count_characters(self, text: str) -> int:
        """Count as Mastodon does: every URL as the reserved length, remote mentions by local part."""
        reserved = self.limits().characters_reserved_per_url or 23
        text = URL_RE.sub("x" * reserved, text)
        text = REMOTE_MENTION_RE.sub(r"\1", text)
        return count_graphemes(text)

    def validate(self, parts: list[Any], options: dict[str, Any]) -> list[str]:
        errors = super().validate(parts, options)
        warning = options.get("content_warning") or ""
        if warning:
            # The content warning counts toward every status's limit
            # (https://github.com/mastodon/mastodon/blob/main/app/validators/status_length_validator.rb).
            limit = self.limits().max_characters
            for number, part in enumerate(parts, start=1):
                total = self.count_characters(part.text) + count_graphemes(warning)
                if total > limit >= self.count_characters(part.text):
                    errors.append(
                        f"Part {number} with its content warning is {total} characters; "
                        f"Mastodon allows {limit} here."
                    )
        if options.get("visibility") not in (None, "", "public", "unlisted", "private", "direct"):
            errors.append("Visibility must be public, unlisted, private or direct.")
        max_alt = self.limits().max_alt_text
        for part in parts:
            for media in part.media:
                if max_alt and len(media.alt_text) > max_alt:
                    errors.append(
                        f"Alt text is {len(media.alt_text)} characters; the limit is {max_alt}."
                    )
        return errors

    # -- publishing --------------------------------------------------------------------------------
    def new_handle(self, delivery_id: int, index: int) -> dict[str, Any]:
        # One key per part of one delivery, never one per attempt
        # (https://docs.joinmastodon.org/methods/statuses/#create).
        return {
            "idempotency_key": f"herald-{delivery_id}-{index}-{uuid.uuid4().hex}",
            "created_at": timezone.now().isoformat(),
        }

    def publish_part(self, context: PartContext) -> PublishedPart:
        handle, options = context.handle, context.options
        if context.part.media and not self._uploads_still_usable(handle):
            handle["media_ids"] = [self._upload(media) for media in context.part.media]
            handle["uploaded_at"] = timezone.now().isoformat()
            context.checkpoint()
        for media_id in handle.get("media_ids", []):
            self._wait_for_processing(media_id)
        try:
            status = self.api.status_post(
                context.part.text,
                # A self-thread replies by id; Mastodon.py's status_reply() would mention ourselves.
                in_reply_to_id=context.previous.remote_id if context.previous else None,
                media_ids=handle.get("media_ids") or None,
                sensitive=bool(options.get("sensitive")),
                visibility=options.get("visibility") or None,
                spoiler_text=options.get("content_warning") or None,
                language=options.get("language") or None,
                idempotency_key=handle["idempotency_key"],
            )
        except MastodonError as exc:
            raise classify(exc, self.api, write=True) from exc
        return PublishedPart(str(status["id"]), status.get("url") or status.get("uri") or "")

    def reconcile_part(self, context: PartContext) -> PublishedPart | None:
        created = datetime.fromisoformat(context.handle["created_at"])
        if timezone.now() - created < IDEMPOTENCY_WINDOW:
            # Re-sending with the same Idempotency-Key returns the original status if the first
            # request created one, and creates it once otherwise: that is the reconcile.
            return None
        return self._find_recent(context, since=created - timedelta(minutes=1))

    @staticmethod
    def _uploads_still_usable(handle: dict[str, Any]) -> bool:
        # Mastodon deletes media that no status uses after a day (MediaAttachmentsVacuum):
        # uploads from an attempt long ago are made again rather than attached.
        uploaded_at = handle.get("uploaded_at")
        if not handle.get("media_ids") or not uploaded_at:
            return False
        return timezone.now() - datetime.fromisoformat(uploaded_at) < MEDIA_REUSE_WINDOW

    def _find_recent(self, context: PartContext, *, since: datetime) -> PublishedPart | None:
        try:
            me = self.api.account_verify_credentials()
            recent = self.api.account_statuses(me["id"], limit=40)
        except MastodonError as exc:
            raise classify(exc, self.api) from exc
        wanted = _normalise(context.part.text)
        parent = context.previous.remote_id if context.previous else None
        for status in recent:
            created_at = status["created_at"]
            if created_at and created_at < since:
                continue
            same_parent = str(status.get("in_reply_to_id") or "") == str(parent or "")
            if same_parent and _normalise(_strip_html(status["content"])) == wanted:
                return PublishedPart(
                    str(status["id"]), status.get("url") or status.get("uri") or ""
                )
        return None

    def _upload(self, media: Any) -> str:
        try:
            with media.file.open("rb") as handle:
                uploaded = self.api.media_post(
                    handle.read(),
                    mime_type=media.mime_type,
                    description=media.alt_text or None,
                    file_name=media.file.name.rsplit("/", 1)[-1],
                )
        except MastodonError as exc:
            raise classify(exc, self.api) from exc
        return str(uploaded["id"])

    def _wait_for_processing(self, media_id: str) -> None:
        """Poll until the server has processed the media.

        Never Mastodon.py's synchronous=True: it polls with no timeout and hides a 429.
        """
        deadline = time.monotonic() + settings.HERALD_MEDIA_PROCESSING_TIMEOUT
        delay = 0.5
        while True:
            try:
                if self.api.media(media_id).get("url"):
                    return
            except MastodonError as exc:
                raise classify(exc, self.api) from exc
            if time.monotonic() + delay > deadline:
                raise NetworkError(
                    ErrorCategory.TRANSIENT,
                    "media_processing_timeout",
                    "Mastodon is still processing the attached media; Herald will try again later.",
                )
            time.sleep(delay)
            delay = min(delay * 2, 15)

    # -- credentials -------------------------------------------------------------------------------
    def verify_credentials(self) -> Profile:
        try:
            account = self.api.account_verify_credentials()
        except MastodonError as exc:
            raise classify(exc, self.api) from exc
        host = urlsplit(self.channel.server_url).netloc
        return Profile(
            remote_id=str(account["id"]),
            handle=f"@{account['acct']}@{host}"
            if "@" not in account["acct"]
            else f"@{account['acct']}",
            display_name=account.get("display_name") or account["username"],
            avatar_url=account.get("avatar") or "",
            profile_url=account.get("url") or "",
        )


def client(base_url: str, access_token: str | None = None, **kwargs: Any) -> Mastodon:
    """A Mastodon.py client that never blocks a worker.

    Rate limits raise instead of sleeping, requests time out, and the server version is given so
    the library does not probe for it (https://docs.joinmastodon.org/api/rate-limits/).
    """
    return Mastodon(
        access_token=access_token,
        api_base_url=base_url,
        ratelimit_method="throw",
        request_timeout=settings.HERALD_NETWORK_TIMEOUT,
        mastodon_version=MASTODON_VERSION,
        version_check_mode="created",
        user_agent=outbound.USER_AGENT,
        # Every connection to a checked address (SSRF guard), kept open for the thread's next call.
        session=outbound.thread_session(),
        **kwargs,
    )


def classify(exc: Exception, api: Mastodon | None = None, *, write: bool = False) -> NetworkError:
    """Map a Mastodon.py exception onto the engine's taxonomy
    (https://docs.joinmastodon.org/api/rate-limits/, https://docs.joinmastodon.org/entities/Error/).

    `write` marks a request that may have created something before failing (unknown outcome).
    """
    if isinstance(exc, MastodonRatelimitError):
        reset = getattr(api, "ratelimit_reset", None)
        wait = max(1.0, reset - time.time()) if reset else 60.0
        return NetworkError(
            ErrorCategory.RATE_LIMITED,
            "rate_limited",
            "Mastodon's rate limit for this account was reached.",
            retry_after=wait,
            http_status=429,
        )
    if isinstance(exc, MastodonUnauthorizedError):
        return NetworkError(
            ErrorCategory.AUTH,
            "auth_revoked",
            "Mastodon no longer accepts Herald's access token (it was revoked, or the app was removed).",
            http_status=401,
            excerpt=_message(exc),
        )
    if isinstance(exc, MastodonNetworkError) and isinstance(exc.__context__, outbound.UnsafeURL):
        # Refused before connecting (Mastodon.py wraps every error): nothing was sent.
        return NetworkError(ErrorCategory.REJECTED, "unsafe_server", str(exc.__context__))
    if isinstance(exc, MastodonNetworkError):
        return NetworkError(
            ErrorCategory.TRANSIENT,
            "network_error",
            "Could not reach the Mastodon server (timeout or connection error).",
            excerpt=str(exc),
            outcome_unknown=write,
        )
    if isinstance(exc, MastodonServerError):
        status = _status(exc)
        return NetworkError(
            ErrorCategory.TRANSIENT,
            f"server_error_{status}",
            f"The Mastodon server had an internal problem (HTTP {status}).",
            http_status=status,
            excerpt=_message(exc),
            outcome_unknown=write,
        )
    if isinstance(exc, MastodonNotFoundError):
        return NetworkError(
            ErrorCategory.REJECTED,
            "not_found",
            f"Mastodon says: {_message(exc) or 'not found'} (a status this replies to may be deleted).",
            http_status=404,
        )
    if isinstance(exc, MastodonAPIError):
        return _classify_api_error(exc)
    if isinstance(exc, MastodonIllegalArgumentError):
        return NetworkError(
            ErrorCategory.REJECTED, "invalid_request", f"Mastodon.py refused: {exc}"
        )
    return NetworkError(ErrorCategory.REJECTED, "mastodon_error", f"Mastodon error: {exc}")


def _classify_api_error(exc: MastodonAPIError) -> NetworkError:
    status, message = _status(exc), _message(exc)
    if status == 422 and PROCESSING_422 in message:
        return NetworkError(
            ErrorCategory.TRANSIENT,
            "media_processing",
            "Mastodon is still processing the media.",
            http_status=422,
            excerpt=message,
        )
    if status == 403:
        return NetworkError(
            ErrorCategory.AUTH,
            "forbidden",
            f"Mastodon refused the action: {message or 'forbidden'}.",
            http_status=403,
            excerpt=message,
        )
    if status in (408, 409):
        return NetworkError(
            ErrorCategory.TRANSIENT,
            f"http_{status}",
            f"Mastodon asked to retry ({message}).",
            http_status=status,
            excerpt=message,
        )
    return NetworkError(
        ErrorCategory.REJECTED,
        "rejected",
        f"Mastodon rejected the post: {message or f'HTTP {status}'}",
        http_status=status,
        excerpt=message,
    )


def _status(exc: MastodonError) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _message(exc: MastodonError) -> str:
    return str(exc.args[3]) if len(exc.args) > 3 and exc.args[3] else ""


def _strip_html(content: str) -> str:
    """The text of a status's HTML: links, hashtags and mentions are tags around their text."""
    for separator in ("<br>", "<br/>", "<br />", "</p><p>"):
        content = content.replace(separator, "\n")
    return html.unescape(TAG_RE.sub("", content))


def _normalise(text: str) -> str:
    # Mastodon rewrites whitespace and shows remote mentions by local part; compare the rest.
    return "".join(REMOTE_MENTION_RE.sub(r"\1", text).split())
