"""The interface every network implements, and the one error type they all raise.

A network module maps its client library's exceptions onto `NetworkError` with a category the
engine understands:

- transient: retry with exponential backoff (server errors, timeouts). When the request may have
  reached the network (`outcome_unknown`), the retry reconciles through the idempotency handle;
- rate_limited: retry at `retry_after` seconds from now;
- auth: the channel needs reconnecting; the post is kept and the user is told;
- rejected: permanent; the network's own message is shown to the user.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import regex
from django.conf import settings
from django.utils import timezone

from ..outbound import OutboundError, UnsafeURL, check_url, is_allowed_private_host, parse_url

if TYPE_CHECKING:
    from ..models import Channel, Media


class ErrorCategory(enum.StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    REJECTED = "rejected"


class NetworkError(Exception):
    """A failed network call, classified. `message` is written for the user."""

    def __init__(
        self,
        category: ErrorCategory,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        excerpt: str = "",
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.http_status = http_status
        self.excerpt = excerpt[:2000]
        self.outcome_unknown = outcome_unknown

    def __repr__(self) -> str:
        return f"NetworkError({self.category}, {self.code!r}, {self.message!r})"


LIMITS_RETRY_SECONDS = 300  # after a failed limits fetch, the fallback is used this long


# A user-supplied server URL Herald refuses to contact (also raised while connecting).
InvalidServerURL = UnsafeURL


@dataclass(frozen=True)
class Limits:
    """What a channel accepts; cached on the channel and shown in the composer and the API."""

    max_characters: int
    max_media: int
    characters_reserved_per_url: int | None = None
    max_image_bytes: int | None = None
    max_video_bytes: int | None = None
    max_alt_text: int | None = None
    supported_mime_types: tuple[str, ...] = ()
    supports_video: bool = True
    supports_threads: bool = True
    supports_content_warning: bool = False
    max_links: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["supported_mime_types"] = list(self.supported_mime_types)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["supported_mime_types"] = tuple(known.get("supported_mime_types", ()))
        return cls(**known)


@dataclass
class PartContent:
    """What one part of a post says on one channel."""

    text: str
    media: list[Media] = field(default_factory=list)


@dataclass
class PublishedPart:
    remote_id: str
    url: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PublishedPart:
        return cls(state["remote_id"], state.get("url", ""), state.get("extra", {}))


@dataclass
class PartContext:
    """Everything a network needs to publish one part.

    `handle` is the part's idempotency handle, persisted before the first network call; a network
    that learns more on the way (a container id, a built record) writes it into `handle` and calls
    `checkpoint()` so it survives a crash.
    """

    index: int
    part: PartContent
    handle: dict[str, Any]
    options: dict[str, Any]
    previous: PublishedPart | None
    root: PublishedPart | None
    checkpoint: Callable[[], None]


@dataclass
class Profile:
    remote_id: str
    handle: str
    display_name: str = ""
    avatar_url: str = ""
    profile_url: str = ""


class Network(ABC):
    """One network, bound to one channel. Subclasses are registered in `networks.NETWORKS`."""

    key: ClassVar[str]
    label: ClassVar[str]

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._limits: Limits | None = None

    # -- limits and validation (validation never calls the network) ---------------------------
    def limits(self, *, refresh: bool = False) -> Limits:
        """The channel's limits, from the cache on the row unless stale or `refresh`.

        A server that is down does not block composing: the last known limits (or the
        network's defaults) are used, and the fetch is not tried again for a few minutes.
        """
        if self._limits is not None and not refresh:
            return self._limits
        channel, now = self.channel, timezone.now()
        max_age = timedelta(seconds=settings.HERALD_LIMITS_CACHE_SECONDS)
        fresh = channel.limits_fetched_at and now - channel.limits_fetched_at < max_age
        if channel.limits and fresh and not refresh:
            self._limits = Limits.from_dict(channel.limits)
            return self._limits
        try:
            self._limits = self.fetch_limits()
            fetched_at = now
        except NetworkError:
            known = Limits.from_dict(channel.limits) if channel.limits else None
            self._limits = known or self.default_limits()
            fetched_at = now - max_age + timedelta(seconds=LIMITS_RETRY_SECONDS)
        channel.limits, channel.limits_fetched_at = self._limits.as_dict(), fetched_at
        if channel.pk:
            type(channel).objects.filter(pk=channel.pk).update(
                limits=channel.limits, limits_fetched_at=fetched_at
            )
        return self._limits

    def fetch_limits(self) -> Limits:
        return self.default_limits()

    @abstractmethod
    def default_limits(self) -> Limits: ...

    def count_characters(self, text: str) -> int:
        return count_graphemes(text)

    def validate(self, parts: list[PartContent], options: dict[str, Any]) -> list[str]:
        """Messages saying what in `parts` this channel will not accept; empty when fine."""
        limits = self.limits()
        errors: list[str] = []
        if len(parts) > 1 and not limits.supports_threads:
            errors.append(f"{self.label} does not support threads here; use a single part.")
        for number, part in enumerate(parts, start=1):
            where = f"Part {number}" if len(parts) > 1 else "The post"
            length = self.count_characters(part.text)
            if length > limits.max_characters:
                errors.append(
                    f"{where} is {length} characters; {self.label} allows "
                    f"{limits.max_characters} here. Shorten it by {length - limits.max_characters}."
                )
            if not part.text.strip() and not part.media:
                errors.append(f"{where} is empty: write some text or attach media.")
            errors.extend(self.validate_media(part, limits, where))
        return errors

    def validate_media(self, part: PartContent, limits: Limits, where: str) -> list[str]:
        errors: list[str] = []
        if len(part.media) > limits.max_media:
            errors.append(
                f"{where} has {len(part.media)} attachments; {self.label} allows {limits.max_media}."
            )
        for media in part.media:
            cap = limits.max_video_bytes if media.kind == "video" else limits.max_image_bytes
            if cap and media.size > cap:
                errors.append(
                    f"{where}: {(media.file.name or '').rsplit('/', 1)[-1]} is {media.size // 1024} KB; "
                    f"{self.label} accepts at most {cap // 1024} KB for this kind of file."
                )
            if limits.supported_mime_types and media.mime_type not in limits.supported_mime_types:
                errors.append(f"{where}: {self.label} does not accept {media.mime_type} files.")
            if media.kind == "video" and not limits.supports_video:
                errors.append(f"{where}: {self.label} does not accept video here.")
        return errors

    # -- publishing ----------------------------------------------------------------------------
    def new_handle(self, delivery_id: int, index: int) -> dict[str, Any]:
        """The idempotency handle for one part, stored before the first network call."""
        return {"created_at": timezone.now().isoformat()}

    @abstractmethod
    def publish_part(self, context: PartContext) -> PublishedPart:
        """Publish one part; raises NetworkError. Replies to `context.previous` if set."""

    @abstractmethod
    def reconcile_part(self, context: PartContext) -> PublishedPart | None:
        """After an unknown outcome: the part if it exists on the network, else None."""

    # -- credentials ---------------------------------------------------------------------------
    @abstractmethod
    def verify_credentials(self) -> Profile:
        """The account behind the stored credentials; raises NetworkError (auth if revoked)."""

    def refresh_credentials(self) -> bool:
        """Refresh tokens that expire. Returns True if credentials changed. Default: nothing to do."""
        return False


# -- shared helpers ---------------------------------------------------------------------------------
_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """The user-perceived characters of `text` (Unicode extended grapheme clusters)."""
    return list(_GRAPHEME.findall(text))


def count_graphemes(text: str) -> int:
    return len(graphemes(text))


def check_server_url(url: str) -> str:
    """Normalise a user-supplied server URL and refuse private, loopback or link-local targets.

    Hosts listed in HERALD_ALLOWED_PRIVATE_HOSTS (host or host:port) are let through. Returns the
    URL without a trailing slash; raises InvalidServerURL with a message for the user. This is
    feedback at input time; scheduler/outbound.py checks again on every connection.
    """
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    target = parse_url(url)
    parts = urlsplit(url)
    normalised = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    if is_allowed_private_host(target.host, parts.port):
        return normalised
    if parts.scheme != "https":
        raise InvalidServerURL("Use an https:// address for the server.")
    try:
        check_url(normalised)  # resolves the host and checks every address it has
    except OutboundError as exc:
        raise InvalidServerURL(str(exc)) from exc
    return normalised
