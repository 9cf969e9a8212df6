"""Threads as a `Network`: validation, publishing through containers, reconciliation, tokens.

Publishing (https://developers.facebook.com/docs/threads/posts), one part:

1. Check the profile's rolling 24-hour publishing budget (250 posts per profile,
   https://developers.facebook.com/docs/threads/overview); when it is spent the delivery waits (rate_limited)
   until the oldest post in the window leaves it.
2. Create the container(s) now, close to publish time (unpublished containers expire after 24
   hours, https://developers.facebook.com/docs/threads/troubleshooting), and store their ids in the part's
   handle, checkpointed, before anything is published (Threads has no idempotency key; the
   stored container is how a retry knows).
3. Poll each container's status with a bounded wait.
4. Publish, retrying briefly on the 24/4279009 "media not found" answer right after FINISHED
   (https://developers.facebook.com/docs/threads/troubleshooting), then read the permalink back.

An unknown outcome is reconciled through the stored container's status: PUBLISHED is done (the
post is found in the profile's listings), FINISHED is published again, ERROR or EXPIRED gets a
new container.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

import regex
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ...models import Channel, Media
from ...public_media import public_base_url_problem, public_media_url
from ..base import (
    ErrorCategory,
    Limits,
    Network,
    NetworkError,
    PartContent,
    PartContext,
    Profile,
    PublishedPart,
    graphemes,
)
from .graph import MAX_LINKS, Graph, refresh_token

logger = logging.getLogger(__name__)

MAX_CHARACTERS = 500
MAX_CAROUSEL = 20
MAX_ALT_TEXT = 1000
MAX_ASPECT_RATIO = (
    10  # images at most 10:1 either way (https://developers.facebook.com/docs/threads/posts)
)
IMAGE_TYPES = ("image/jpeg", "image/png")
VIDEO_TYPES = ("video/mp4", "video/quicktime")
REPLY_CONTROLS = (
    "everyone",
    "accounts_you_follow",
    "mentioned_only",
    "parent_post_author_only",
    "followers_only",
)
# What listings call each container type once published.
READ_BACK_TYPES = {
    "TEXT": "TEXT_POST",
    "IMAGE": "IMAGE",
    "VIDEO": "VIDEO",
    "CAROUSEL": "CAROUSEL_ALBUM",
}
# Meta refuses to refresh younger tokens
# (https://developers.facebook.com/docs/threads/get-started/long-lived-tokens).
REFRESH_MIN_AGE = timedelta(hours=24)
PROFILE_URL = "https://www.threads.net/@{username}"
DOWNLOAD_FAILED_PREFIX = "FAILED_DOWNLOADING"

_URL_RE = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+")
_EMOJI_RE = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\uFE0F\u20E3]")


# -- counting as Threads counts --------------------------------------------------------------------
def threads_text_length(text: str) -> int:
    """Characters as Threads counts them: one per grapheme, an emoji as its UTF-8 bytes.

    The text limit is 500 characters, emoji counted by their UTF-8 bytes
    (https://developers.facebook.com/docs/threads/posts).
    """
    return sum(
        len(grapheme.encode()) if _EMOJI_RE.search(grapheme) else 1 for grapheme in graphemes(text)
    )


def _normalise_link(link: str) -> str:
    link = link.rstrip(".,;:!?)]}'\"").lower()
    link = re.sub(r"^(?:https?://)?(?:www\.)?", "", link)
    return link.rstrip("/")


def count_links(text: str, link_attachment: str | None = None) -> int:
    """Unique links in one post: URLs in the text plus the link attachment.

    (https://developers.facebook.com/docs/threads/posts.)
    """
    links = {_normalise_link(match.group(0)) for match in _URL_RE.finditer(text)}
    if link_attachment:
        links.add(_normalise_link(link_attachment))
    return len(links)


def _topic(value: Any) -> str:
    return str(value or "").strip().lstrip("#")


# -- the network ---------------------------------------------------------------------------------------
class ThreadsNetwork(Network):
    key = "threads"
    label = "Threads"

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._graph: Graph | None = None

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            self._graph = Graph(
                self.channel.server_url or settings.THREADS_GRAPH_URL,
                _credentials(self.channel).get("access_token"),
            )
        return self._graph

    @property
    def user(self) -> str:
        return self.channel.remote_id or "me"

    # -- limits and validation (no network call) ---------------------------------------------------
    def default_limits(self) -> Limits:
        return Limits(
            max_characters=MAX_CHARACTERS,
            max_media=MAX_CAROUSEL,
            max_image_bytes=8 * 1024 * 1024,
            max_video_bytes=1024 * 1024 * 1024,
            max_alt_text=MAX_ALT_TEXT,
            supported_mime_types=IMAGE_TYPES + VIDEO_TYPES,
            max_links=MAX_LINKS,
        )

    def count_characters(self, text: str) -> int:
        return threads_text_length(text)

    def validate(self, parts: list[PartContent], options: dict[str, Any]) -> list[str]:
        errors = super().validate(parts, options)
        errors.extend(_validate_options(options, parts))
        for number, part in enumerate(parts, start=1):
            where = f"Part {number}" if len(parts) > 1 else "The post"
            attachment = options.get("link_attachment") if number == 1 else None
            links = count_links(part.text, attachment)
            if links > MAX_LINKS:
                errors.append(
                    f"{where} has {links} links; Threads allows at most {MAX_LINKS} in a post. "
                    f"Remove {links - MAX_LINKS}."
                )
            errors.extend(_validate_threads_media(part, where))
        if any(part.media for part in parts):
            problem = public_base_url_problem()
            if problem:
                errors.append(
                    f"Threads downloads media from Herald's public address, but {problem} An "
                    "administrator must set PUBLIC_URL to Herald's public https address; until "
                    "then, post to Threads without media."
                )
        return errors

    # -- publishing --------------------------------------------------------------------------------
    def publish_part(self, context: PartContext) -> PublishedPart:
        handle = context.handle
        if handle.get("media_id") or handle.get("container_id"):
            found = self.reconcile_part(context)  # never publish a stored container twice
            if found is not None:
                return found
        self._check_budget(is_reply=context.previous is not None)
        deadline = time.monotonic() + settings.THREADS_CONTAINER_WAIT
        if not handle.get("container_id"):
            handle["container_id"] = self._create_container(context, deadline)
            handle["container_created_at"] = timezone.now().isoformat()
            context.checkpoint()  # stored before anything is published
        self._wait_until_finished(context, handle["container_id"], deadline)
        media_id = self._publish(context, handle["container_id"])
        handle["media_id"] = media_id
        context.checkpoint()
        return self._published(media_id)

    def reconcile_part(self, context: PartContext) -> PublishedPart | None:
        handle = context.handle
        if handle.get("media_id"):
            return self._published(handle["media_id"])
        container_id = handle.get("container_id")
        if not container_id:
            return None  # no container was stored, so nothing was published
        status, _ = self._container_status(container_id)
        if status == "PUBLISHED":
            return self._find_published(context)
        if status in ("ERROR", "EXPIRED"):
            self._drop_containers(context)
        return None  # FINISHED or IN_PROGRESS: publish_part publishes this same container

    def _check_budget(self, *, is_reply: bool) -> None:
        """Raise rate_limited when the profile's 24-hour publishing budget is spent.

        (https://developers.facebook.com/docs/threads/overview.)
        """
        data = self.graph.get(
            f"{self.user}/threads_publishing_limit",
            fields="quota_usage,config,reply_quota_usage,reply_config",
        )
        entry = (data.get("data") or [{}])[0]
        config = entry.get("config") or {}
        total = int(config.get("quota_total") or 250)
        duration = int(config.get("quota_duration") or 86400)
        if int(entry.get("quota_usage") or 0) >= total:
            raise self._budget_spent(total, duration, replies=False)
        reply_config = entry.get("reply_config") or {}
        reply_total = int(reply_config.get("quota_total") or 1000)
        if is_reply and int(entry.get("reply_quota_usage") or 0) >= reply_total:
            raise self._budget_spent(reply_total, duration, replies=True)

    def _budget_spent(self, total: int, duration: int, *, replies: bool) -> NetworkError:
        frees_at = self._budget_frees_at(total, duration, replies=replies)
        wait = max(60.0, (frees_at - timezone.now()).total_seconds())
        what = "replies" if replies else "posts"
        return NetworkError(
            ErrorCategory.RATE_LIMITED,
            "publishing_limit",
            f"This Threads profile has published the {total} {what} Threads allows in 24 hours; "
            "Herald waits for the oldest of them to leave the 24-hour window.",
            retry_after=wait,
        )

    def _budget_frees_at(self, total: int, duration: int, *, replies: bool) -> datetime:
        """When the budget frees: the oldest counted post leaves the rolling window."""
        now = timezone.now()
        since = now - timedelta(seconds=duration)
        edges = ("replies",) if replies else ("threads", "replies")
        stamps = sorted(
            _parse_time(item["timestamp"])
            for edge in edges
            for item in self._list_or_nothing(edge, fields="id,timestamp", since=since)
            if item.get("timestamp")
        )
        stamps = [stamp for stamp in stamps if stamp > since]
        if not stamps:  # posts Herald cannot see: look again later
            return now + timedelta(seconds=settings.THREADS_THROTTLE_RETRY)
        return stamps[max(0, len(stamps) - total)] + timedelta(seconds=duration)

    def _create_container(self, context: PartContext, deadline: float) -> str:
        """The container to publish for this part (after its carousel items, if any)."""
        fields = self._post_fields(context)
        media = context.part.media
        if not media:
            return self._create(media_type="TEXT", **fields)
        if len(media) == 1:
            return self._create(**_media_fields(media[0]), **fields)
        children = self._carousel_items(context, deadline)
        return self._create(media_type="CAROUSEL", children=",".join(children), **fields)

    def _carousel_items(self, context: PartContext, deadline: float) -> list[str]:
        handle = context.handle
        children = handle.get("children") or []
        usable = ("IN_PROGRESS", "FINISHED")
        if not children or any(self._container_status(c)[0] not in usable for c in children):
            children = [
                self._create(**_media_fields(item, carousel_item=True))
                for item in context.part.media
            ]
            handle["children"] = children
            context.checkpoint()
        # Every item must be FINISHED before the carousel
        # (https://developers.facebook.com/docs/threads/troubleshooting).
        for child in children:
            self._wait_until_finished(context, child, deadline)
        return list(children)

    def _post_fields(self, context: PartContext) -> dict[str, Any]:
        options = context.options
        fields: dict[str, Any] = {
            "text": context.part.text or None,
            "reply_to_id": context.previous.remote_id if context.previous else None,
            "reply_control": options.get("reply_control") or None,
        }
        if context.index == 0:  # one topic and one link preview per post: the first part's
            fields["topic_tag"] = _topic(options.get("topic_tag")) or None
            # link_attachment is for text posts only (https://developers.facebook.com/docs/threads/posts)
            if not context.part.media:
                fields["link_attachment"] = options.get("link_attachment") or None
        return fields

    def _create(self, **fields: Any) -> str:
        return str(self.graph.post(f"{self.user}/threads", **fields)["id"])

    def _container_status(self, container_id: str) -> tuple[str, str]:
        data = self.graph.get(container_id, fields="status,error_message")
        return str(data.get("status") or ""), str(data.get("error_message") or "")

    def _wait_until_finished(
        self, context: PartContext, container_id: str, deadline: float
    ) -> None:
        """Poll until the container is FINISHED; raises NetworkError on ERROR, EXPIRED or timeout."""
        while True:
            status, error_message = self._container_status(container_id)
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                raise self._container_failed(context, status, error_message)
            if time.monotonic() >= deadline:
                raise NetworkError(
                    ErrorCategory.TRANSIENT,
                    "container_processing_timeout",
                    f"Threads was still processing the media after "
                    f"{settings.THREADS_CONTAINER_WAIT:g} seconds; Herald keeps it and checks again.",
                )
            context.checkpoint()  # renews the lease while Threads works
            time.sleep(settings.THREADS_POLL_INTERVAL)

    def _container_failed(self, context: PartContext, status: str, reason: str) -> NetworkError:
        handle = context.handle
        self._drop_containers(context)
        if status == "EXPIRED":
            return NetworkError(
                ErrorCategory.TRANSIENT,
                "container_expired",
                "The prepared Threads post expired before it was published; Herald prepares it again.",
            )
        # A failed download can be our URL's fault (a restart, a slow disk): try once more
        # (https://developers.facebook.com/docs/threads/troubleshooting).
        if reason.startswith(DOWNLOAD_FAILED_PREFIX) and not handle.get("download_retried"):
            handle["download_retried"] = True
            context.checkpoint()
            return NetworkError(
                ErrorCategory.TRANSIENT,
                "media_download_failed",
                f"Threads could not download the media from Herald ({reason}); Herald tries again.",
            )
        return NetworkError(
            ErrorCategory.REJECTED,
            "media_rejected",
            f"Threads could not process the media ({reason or 'no reason given'}). "
            + (
                f"Check that {settings.PUBLIC_URL} is reachable from the internet."
                if reason.startswith(DOWNLOAD_FAILED_PREFIX)
                else "Check its format, size, length and aspect ratio against Threads' limits."
            ),
        )

    def _drop_containers(self, context: PartContext) -> None:
        for name in ("container_id", "container_created_at", "children"):
            context.handle.pop(name, None)
        context.checkpoint()

    def _publish(self, context: PartContext, container_id: str) -> str:
        """Publish the container; returns the post's media id."""
        for attempt in range(settings.THREADS_PUBLISH_RETRIES + 1):
            try:
                data = self.graph.post(
                    f"{self.user}/threads_publish", write=True, creation_id=container_id
                )
                return str(data["id"])
            except NetworkError as error:
                if error.code == "publishing_limit":
                    self._check_budget(is_reply=context.previous is not None)
                    raise
                if error.code != "media_not_found":
                    raise
                if attempt < settings.THREADS_PUBLISH_RETRIES:
                    time.sleep(settings.THREADS_PUBLISH_RETRY_DELAY)
                    continue
                # Still "not found": unless it was published after all, start afresh.
                if self._container_status(container_id)[0] == "PUBLISHED":
                    return self._find_published(context).remote_id
                self._drop_containers(context)
                raise
        raise AssertionError("unreachable")

    def _published(self, media_id: str) -> PublishedPart:
        """The published part with its permalink; the link is best effort, the id is what counts."""
        try:
            data = self.graph.get(media_id, fields="id,permalink")
        except NetworkError as error:
            logger.warning("threads media %s: no permalink: %s", media_id, error.message)
            return PublishedPart(media_id, "")
        return PublishedPart(media_id, str(data.get("permalink") or ""))

    def _find_published(self, context: PartContext) -> PublishedPart:
        """The post a PUBLISHED container became, found in the profile's listings."""
        handle = context.handle
        created = _parse_time(handle.get("container_created_at") or handle["created_at"])
        since = created - timedelta(minutes=5)
        parent = context.previous.remote_id if context.previous else None
        wanted_type = READ_BACK_TYPES[_media_type(context.part)]
        wanted_text = " ".join(context.part.text.split())
        for edge in ("replies", "threads") if parent else ("threads", "replies"):
            fields = "id,permalink,text,timestamp,media_type,replied_to"
            matches = [
                item
                for item in self._list_or_nothing(edge, fields=fields, since=since)
                if " ".join((item.get("text") or "").split()) == wanted_text
                and item.get("media_type", wanted_type) == wanted_type
                and (item.get("replied_to") or {}).get("id") == parent
            ]
            if matches:  # listings are newest first: the earliest after the container is ours
                item = matches[-1]
                handle["media_id"] = str(item["id"])
                context.checkpoint()
                return PublishedPart(str(item["id"]), str(item.get("permalink") or ""))
        # A wait, not a failure: the post is live, and counting this against the attempt budget
        # would end in "failed" for a published post and strand the rest of the thread.
        raise NetworkError(
            ErrorCategory.RATE_LIMITED,
            "published_not_listed",
            "Threads says this post was published, but it is not in the profile's posts yet; "
            "Herald looks again shortly.",
            retry_after=60,
            outcome_unknown=True,
        )

    def _list_or_nothing(
        self, edge: str, *, fields: str, since: datetime
    ) -> Iterator[dict[str, Any]]:
        """Like `_list`, but a listing Threads refuses (a missing read scope on an older
        connection) reads as empty: reading is a best effort, never a reason to disconnect."""
        try:
            yield from self._list(edge, fields=fields, since=since)
        except NetworkError as error:
            if error.category in (ErrorCategory.RATE_LIMITED, ErrorCategory.TRANSIENT):
                raise
            logger.warning("threads %s listing unavailable: %s", edge, error.message)

    def _list(self, edge: str, *, fields: str, since: datetime) -> Iterator[dict[str, Any]]:
        """Items of /{user}/{edge} published since `since`, newest first (a few pages at most)."""
        path = f"{self.user}/{edge}"
        params: dict[str, Any] = {"fields": fields, "since": int(since.timestamp()), "limit": 100}
        for _ in range(5):
            data = self.graph.get(path, **params)
            yield from data.get("data") or []
            next_page = (data.get("paging") or {}).get("next")
            if not next_page:
                return
            path, params = str(next_page), {}

    # -- credentials ---------------------------------------------------------------------------------
    def verify_credentials(self) -> Profile:
        data = self.graph.get("me", fields="id,username,name,threads_profile_picture_url")
        username = str(data.get("username") or data["id"])
        return Profile(
            remote_id=str(data["id"]),
            handle=f"@{username}",
            display_name=str(data.get("name") or username),
            avatar_url=str(data.get("threads_profile_picture_url") or ""),
            profile_url=PROFILE_URL.format(username=username),
        )

    def refresh_credentials(self) -> bool:
        """Refresh the long-lived token when it is due (≥ 24 h old, expiring within the margin).

        Returns True if a new token was stored. Raises NetworkError: auth when Threads refuses
        the token (190: expired or revoked); any other failure is transient and never auth.
        """
        channel = self.channel
        if not refresh_due(channel, timezone.now()):
            return False
        version = channel.credentials_version
        try:
            token, expires_at = refresh_token(self.graph.base_url, self.graph.access_token or "")
        except NetworkError as error:
            if error.category == ErrorCategory.AUTH:
                raise
            raise NetworkError(
                ErrorCategory.TRANSIENT,
                "refresh_postponed",
                f"Could not refresh the Threads token yet ({error.message}); Herald tries again.",
                excerpt=error.excerpt,
            ) from error
        _store_token(channel, token, expires_at, expected_version=version)
        self._graph = None
        return True


def _media_type(part: PartContent) -> str:
    if not part.media:
        return "TEXT"
    if len(part.media) > 1:
        return "CAROUSEL"
    return "VIDEO" if part.media[0].kind == "video" else "IMAGE"


def _media_fields(media: Media, *, carousel_item: bool = False) -> dict[str, Any]:
    is_video = media.kind == "video"
    return {
        "media_type": "VIDEO" if is_video else "IMAGE",
        ("video_url" if is_video else "image_url"): public_media_url(media),
        "alt_text": media.alt_text[:MAX_ALT_TEXT] or None,
        "is_carousel_item": "true" if carousel_item else None,
    }


def _validate_options(options: dict[str, Any], parts: list[PartContent]) -> list[str]:
    errors = []
    reply_control = options.get("reply_control")
    if reply_control and reply_control not in REPLY_CONTROLS:
        errors.append(f"Who can reply must be one of: {', '.join(REPLY_CONTROLS)}.")
    topic = _topic(options.get("topic_tag"))
    if options.get("topic_tag") and not (
        1 <= len(topic) <= 50 and "." not in topic and "&" not in topic
    ):
        errors.append("The Threads topic must be 1 to 50 characters, without “.” or “&”.")
    link = str(options.get("link_attachment") or "")
    if link:
        if not re.match(r"(?i)^https?://\S+$", link):
            errors.append("The link attachment must be a web address starting with https://.")
        if parts and parts[0].media:
            errors.append("Threads shows a link attachment only on a post without media.")
    return errors


def _validate_threads_media(part: PartContent, where: str) -> list[str]:
    errors = []
    for media in part.media:
        name = (media.file.name or "").rsplit("/", 1)[-1]
        if len(media.alt_text) > MAX_ALT_TEXT:
            errors.append(
                f"{where}: the alt text of {name} is {len(media.alt_text)} characters; "
                f"Threads allows {MAX_ALT_TEXT}."
            )
        if media.width and media.height:
            ratio = max(media.width, media.height) / min(media.width, media.height)
            if ratio > MAX_ASPECT_RATIO:
                errors.append(
                    f"{where}: {name} is {media.width}x{media.height}; Threads accepts images "
                    f"up to {MAX_ASPECT_RATIO}:1. Crop it."
                )
    return errors


def _credentials(channel: Channel) -> dict[str, Any]:
    # An EncryptedJSONField holds a dict; the stubs see the TextField it extends.
    return cast("dict[str, Any]", channel.credentials)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- tokens ---------------------------------------------------------------------------------------------
def refresh_due(channel: Channel, now: datetime) -> bool:
    """Is the channel's token old enough to refresh (24 hours) and close enough to expiry?

    (https://developers.facebook.com/docs/threads/get-started/long-lived-tokens.)
    """
    refreshed = channel.token_refreshed_at
    if refreshed and now - refreshed < REFRESH_MIN_AGE:
        return False
    expires = channel.token_expires_at
    margin = timedelta(days=settings.THREADS_REFRESH_MARGIN_DAYS)
    return expires is None or expires - now <= margin


def _store_token(
    channel: Channel, token: str, expires_at: datetime, *, expected_version: int
) -> None:
    """Persist a refreshed token at once, unless the channel was reconnected meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        row = Channel.objects.select_for_update().get(pk=channel.pk)
        if row.credentials_version != expected_version:
            logger.info("channel %s: reconnected during refresh; keeping the new token", row.pk)
            return
        row.credentials = {**_credentials(row), "access_token": token}  # type: ignore[assignment]
        row.token_expires_at, row.token_refreshed_at = expires_at, now
        row.credentials_version += 1
        row.save(
            update_fields=[
                "credentials",
                "token_expires_at",
                "token_refreshed_at",
                "credentials_version",
            ]
        )
    channel.credentials, channel.credentials_version = row.credentials, row.credentials_version
    channel.token_expires_at, channel.token_refreshed_at = expires_at, now
