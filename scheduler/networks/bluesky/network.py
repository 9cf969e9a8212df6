"""Publishing to Bluesky: validation, the record of each part, and writing it exactly once.

Posts: https://docs.bsky.app/docs/advanced-guides/posts.

Each part's record is built once (a TID rkey
and `createdAt` chosen before any network call, uploaded blobs, facets, reply refs, one embed)
and stored in the delivery before it is written with `createRecord(rkey=...)`. An unknown
outcome, or the generic 500 a PDS gives for an rkey that already exists, is settled with
`getRecord` on that rkey, so a post is never created twice
(record keys: https://atproto.com/specs/record-key).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
from atproto import Client, models
from atproto_client.models.utils import get_model_as_dict
from atproto_client.utils import facet_detection
from django.conf import settings
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from ..base import (
    ErrorCategory,
    Limits,
    Network,
    NetworkError,
    PartContent,
    PartContext,
    Profile,
    PublishedPart,
    count_graphemes,
)
from . import linkcard, tid
from .errors import classify
from .images import IMAGE_MAX_BYTES, THUMB_MAX_BYTES, fit_image
from .session import BlueskySession

if TYPE_CHECKING:
    from ...models import Channel, Media

logger = logging.getLogger(__name__)
T = TypeVar("T")

POST_COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = 300  # app.bsky.feed.post text maxGraphemes, enforced by the server
# (https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json)
MAX_TEXT_BYTES = 3000  # lexicon maxLength, in UTF-8 bytes
MAX_IMAGES = 4
MAX_LANGS = 3
MAX_ALT_TEXT = 2000  # what the Bluesky app allows
VIDEO_MAX_BYTES = 100_000_000  # app.bsky.embed.video, as most PDSes still enforce it
SUPPORTED_MIME_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


class BlueskyNetwork(Network):
    key = "bluesky"
    label = "Bluesky"

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.session = BlueskySession(channel)
        self._handles: dict[str, str | None] = {}  # mention handle -> DID, per publish

    @property
    def client(self) -> Client:
        return self.session.client

    @property
    def did(self) -> str:
        return self.session.did

    def _call(self, action: Callable[[Client], T], *, write: bool = False) -> T:
        return self.session.call(action, write=write)

    # -- limits and validation -----------------------------------------------------------------
    def default_limits(self) -> Limits:
        return Limits(
            max_characters=MAX_GRAPHEMES,
            max_media=MAX_IMAGES,
            # No byte cap for images: Herald recompresses them to what the PDS accepts.
            max_video_bytes=VIDEO_MAX_BYTES,
            max_alt_text=MAX_ALT_TEXT,
            supported_mime_types=SUPPORTED_MIME_TYPES,
            supports_video=True,
            supports_threads=True,
            supports_content_warning=False,  # only self-labels, no free-text warning
        )

    def validate(self, parts: list[PartContent], options: dict[str, Any]) -> list[str]:
        errors = super().validate(parts, options)
        for number, part in enumerate(parts, start=1):
            where = f"Part {number}" if len(parts) > 1 else "The post"
            size = len(part.text.encode("utf-8"))
            if size > MAX_TEXT_BYTES:
                errors.append(
                    f"{where} is {size} bytes long; Bluesky allows {MAX_TEXT_BYTES} bytes "
                    "(accented letters and emoji count as several). Shorten it."
                )
            videos = [media for media in part.media if media.kind == "video"]
            if videos and len(part.media) > 1:
                errors.append(
                    f"{where}: Bluesky takes up to {MAX_IMAGES} images or one video, not both."
                )
            for media in part.media:
                if count_graphemes(media.alt_text) > MAX_ALT_TEXT:
                    errors.append(
                        f"{where}: an alt text is {count_graphemes(media.alt_text)} characters; "
                        f"Bluesky allows {MAX_ALT_TEXT}."
                    )
        errors.extend(language_errors(options))
        return errors

    # -- publishing ------------------------------------------------------------------------------
    def new_handle(self, delivery_id: int, index: int) -> dict[str, Any]:
        # The rkey and createdAt are chosen once, before any network call (the reconcile looks there).
        return {"rkey": tid.next_tid(), "created_at": atproto_datetime(timezone.now())}

    def publish_part(self, context: PartContext) -> PublishedPart:
        handle = context.handle
        if "record" not in handle:
            handle["record"] = self._build_record(context)
            context.checkpoint()  # stored before the write: a retry re-sends exactly this
        return self._create(context)

    def reconcile_part(self, context: PartContext) -> PublishedPart | None:
        if "record" not in context.handle:
            return None  # the run died before building the record: nothing was written
        return self._find(context)

    def _create(self, context: PartContext, *, retried_blobs: bool = False) -> PublishedPart:
        handle, did = context.handle, self.did
        data = models.ComAtprotoRepoCreateRecord.Data(
            repo=did, collection=POST_COLLECTION, rkey=handle["rkey"], record=handle["record"]
        )
        try:
            created = self._call(lambda c: c.com.atproto.repo.create_record(data), write=True)
        except NetworkError as error:
            if error.code == "blob_not_found" and not retried_blobs:
                # The PDS dropped a blob nobody referenced in time (https://atproto.com/specs/blob);
                # upload it again. The record was refused, so it may change: only its embed is
                # rebuilt.
                embed = self._embed_dict(context)
                handle["record"].pop("embed", None)
                if embed:
                    handle["record"]["embed"] = embed
                context.checkpoint()
                return self._create(context, retried_blobs=True)
            if error.http_status == 500:
                # A PDS answers 500 for an rkey that already exists; look before retrying.
                found = self._find(context)
                if found is not None:
                    return found
            raise
        return self._published(did, handle["rkey"], created.cid)

    def _find(self, context: PartContext) -> PublishedPart | None:
        """The part's record if it is on the PDS at its rkey; None if not."""
        handle, did = context.handle, self.did
        params = models.ComAtprotoRepoGetRecord.Params(
            repo=did, collection=POST_COLLECTION, rkey=handle["rkey"]
        )
        try:
            found = self._call(lambda c: c.com.atproto.repo.get_record(params))
        except NetworkError as error:
            if error.code in ("record_not_found", "not_found"):
                return None
            raise
        value = get_model_as_dict(found.value)
        record = handle["record"]
        if value.get("createdAt") == record["createdAt"] and value.get("text") == record["text"]:
            return self._published(did, handle["rkey"], found.cid or "")
        # Another record holds this rkey (a TID collision): ours was never written; move on.
        logger.warning("bluesky rkey %s of %s is taken; choosing another", handle["rkey"], did)
        handle["rkey"] = tid.next_tid()
        context.checkpoint()
        return None

    def _published(self, did: str, rkey: str, cid: str) -> PublishedPart:
        return PublishedPart(
            remote_id=f"at://{did}/{POST_COLLECTION}/{rkey}",
            url=f"{settings.BLUESKY_WEB_URL}/profile/{did}/post/{rkey}",
            extra={"cid": cid, "rkey": rkey},
        )

    # -- building the record -----------------------------------------------------------------------
    def _build_record(self, context: PartContext) -> dict[str, Any]:
        text = context.part.text
        try:
            record = models.AppBskyFeedPost.Record(
                text=text,
                created_at=context.handle["created_at"],
                langs=post_languages(context.options) or None,  # the SDK would say ['en']
                facets=self._facets(text) or None,
                reply=self._reply_ref(context),
            )
        except pydantic.ValidationError as exc:
            raise classify(exc) from exc
        data = get_model_as_dict(record)
        embed = self._embed_dict(context)
        if embed:
            data["embed"] = embed
        return data

    def _facets(self, text: str) -> list[models.AppBskyRichtextFacet.Main]:
        """Links, tags and resolvable mentions, at UTF-8 byte offsets, never overlapping
        (https://docs.bsky.app/docs/advanced-guides/post-richtext)."""
        facets = facet_detection.detect_facets(text)
        for mention in facet_detection.detect_mentions(text):
            did = self._resolve_mention(mention.handle)
            if did:  # an unknown handle stays plain text
                facets.append(
                    models.AppBskyRichtextFacet.Main(
                        features=[models.AppBskyRichtextFacet.Mention(did=did)],
                        index=models.AppBskyRichtextFacet.ByteSlice(
                            byte_start=mention.byte_start, byte_end=mention.byte_end
                        ),
                    )
                )
        kept: list[models.AppBskyRichtextFacet.Main] = []
        for facet in sorted(facets, key=lambda f: f.index.byte_start):
            if not kept or facet.index.byte_start >= kept[-1].index.byte_end:
                kept.append(facet)
        return kept

    def _resolve_mention(self, handle: str) -> str | None:
        handle = handle.lower()
        if handle not in self._handles:
            params = models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
            try:
                self._handles[handle] = self._call(
                    lambda c: c.com.atproto.identity.resolve_handle(params)
                ).did
            except NetworkError as error:
                if error.category != ErrorCategory.REJECTED:
                    raise  # a server hiccup: retry later rather than lose the mention
                self._handles[handle] = None
        return self._handles[handle]

    def _reply_ref(self, context: PartContext) -> models.AppBskyFeedPost.ReplyRef | None:
        if context.previous is None:
            return None
        parent = self._strong_ref(context.previous)
        root = self._strong_ref(context.root) if context.root else parent
        return models.AppBskyFeedPost.ReplyRef(root=root, parent=parent)

    def _strong_ref(self, part: PublishedPart) -> models.ComAtprotoRepoStrongRef.Main:
        cid = part.extra.get("cid")
        if not cid:  # a part stored without its cid: ask the PDS
            repo, collection, rkey = part.remote_id.removeprefix("at://").split("/")
            params = models.ComAtprotoRepoGetRecord.Params(
                repo=repo, collection=collection, rkey=rkey
            )
            cid = self._call(lambda c: c.com.atproto.repo.get_record(params)).cid
        return models.ComAtprotoRepoStrongRef.Main(uri=part.remote_id, cid=cid)

    def _embed_dict(self, context: PartContext) -> dict[str, Any] | None:
        """Images, a video, or a link card (one embed per post), uploading what it needs."""
        media = context.part.media
        embed: Any = None
        if any(item.kind == "video" for item in media):
            embed = self._video_embed(next(item for item in media if item.kind == "video"))
        elif media:
            embed = models.AppBskyEmbedImages.Main(images=[self._image(item) for item in media])
        else:
            link = first_link(context.part.text)
            embed = self._link_card(link) if link else None
        return get_model_as_dict(embed) if embed is not None else None

    def _image(self, media: Media) -> models.AppBskyEmbedImages.Image:
        with media.file.open("rb") as handle:
            data = handle.read()
        try:
            prepared = fit_image(data, max_bytes=IMAGE_MAX_BYTES)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise NetworkError(
                ErrorCategory.REJECTED,
                "image_unreadable",
                f"{(media.file.name or 'An image').rsplit('/', 1)[-1]} cannot be read as an "
                "image; attach it again.",
            ) from exc
        return models.AppBskyEmbedImages.Image(
            alt=media.alt_text or "",
            image=self._upload(prepared.data, prepared.mime_type),
            aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(
                width=prepared.width, height=prepared.height
            ),
        )

    def _video_embed(self, media: Media) -> models.AppBskyEmbedVideo.Main:
        with media.file.open("rb") as handle:
            data = handle.read()
        ratio = None
        if media.width and media.height:
            ratio = models.AppBskyEmbedDefs.AspectRatio(width=media.width, height=media.height)
        return models.AppBskyEmbedVideo.Main(
            video=self._upload(data, media.mime_type),
            alt=media.alt_text or None,
            aspect_ratio=ratio,
        )

    def _link_card(self, url: str) -> models.AppBskyEmbedExternal.Main | None:
        """The client builds the card; a page that cannot be fetched gives no card.

        (https://docs.bsky.app/docs/advanced-guides/posts#website-card-embeds.)
        """
        card = linkcard.fetch_link_card(url)
        if card is None:
            return None
        thumb = None
        image = linkcard.fetch_image(card.image_url) if card.image_url else None
        if image:
            try:
                prepared = fit_image(image, max_bytes=THUMB_MAX_BYTES)
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
                prepared = None
            if prepared:
                thumb = self._upload(prepared.data, prepared.mime_type)
        return models.AppBskyEmbedExternal.Main(
            external=models.AppBskyEmbedExternal.External(
                uri=url, title=card.title, description=card.description, thumb=thumb
            )
        )

    def _upload(self, data: bytes, mime_type: str) -> models.BlobRef:
        # The SDK's upload_blob declares */*, and its 5 s default timeout is too short for media.
        return self._call(
            lambda c: c.com.atproto.repo.upload_blob(
                data,
                headers={"Content-Type": mime_type},
                timeout=settings.HERALD_UPLOAD_TIMEOUT,
            )
        ).blob

    # -- credentials -----------------------------------------------------------------------------
    def verify_credentials(self) -> Profile:
        session = self._call(lambda c: c.com.atproto.server.get_session())
        if session.active is False:
            raise NetworkError(
                ErrorCategory.AUTH,
                f"account_{session.status or 'inactive'}",
                f"The Bluesky account {session.handle} is {session.status or 'not active'}.",
            )
        profile = Profile(
            remote_id=session.did,
            handle=session.handle,
            display_name=self.channel.display_name,
            avatar_url=self.channel.avatar_url,
            profile_url=f"{settings.BLUESKY_WEB_URL}/profile/{session.handle}",
        )
        params = models.AppBskyActorGetProfile.Params(actor=session.did)
        try:
            details = self._call(lambda c: c.app.bsky.actor.get_profile(params))
        except NetworkError as error:
            if error.category == ErrorCategory.AUTH:
                raise
            return profile  # a PDS without app.bsky: the session itself is fine
        profile.display_name = details.display_name or session.handle
        profile.avatar_url = details.avatar or ""
        return profile

    def refresh_credentials(self) -> bool:
        """Refresh the session when its access token is about to expire; True if it did."""
        return self.session.refresh_if_due()


def atproto_datetime(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix, as the docs prefer
    (https://docs.bsky.app/docs/advanced-guides/timestamps)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def post_languages(options: dict[str, Any]) -> list[str]:
    """The post's language tags (`options["language"]`: one tag, or several separated by commas)."""
    raw = options.get("language") or ""
    values = raw if isinstance(raw, list) else re.split(r"[,\s]+", str(raw))
    return [value.strip() for value in values if value and value.strip()]


def language_errors(options: dict[str, Any]) -> list[str]:
    languages = post_languages(options)
    errors = [
        f"“{tag}” is not a language tag; use a code like en, pt-BR or ja."
        for tag in languages
        if not LANGUAGE_TAG.match(tag)
    ]
    if len(languages) > MAX_LANGS:
        errors.append(f"Bluesky accepts at most {MAX_LANGS} languages per post.")
    return errors


def first_link(text: str) -> str | None:
    for facet in facet_detection.detect_facets(text):
        for feature in facet.features:
            if isinstance(feature, models.AppBskyRichtextFacet.Link):
                return str(feature.uri)
    return None
