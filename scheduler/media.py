"""Accepting uploaded media: type and size checked, dimensions read with Pillow."""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from accounts.models import Membership

from .models import Delivery, Media, MediaKind

IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}


class MediaError(ValueError):
    """The upload is not something Herald can publish; the message says why and what to do."""


def save_upload(membership: Membership, upload: UploadedFile, *, alt_text: str = "") -> Media:
    """Validate and store an upload for the membership's workspace. Raises MediaError."""
    if upload.size is None or upload.size == 0:
        raise MediaError("The file is empty.")
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise MediaError(
            f"The file is {upload.size // (1024 * 1024)} MB; the most Herald accepts is "
            f"{settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        )
    kind, mime_type, width, height = _inspect(upload)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return Media.objects.create(
        workspace=membership.workspace,
        uploaded_by=membership.user,
        file=upload,
        kind=kind,
        mime_type=mime_type,
        size=upload.size,
        width=width,
        height=height,
        alt_text=alt_text,
        checksum=digest.hexdigest(),
    )


def _inspect(upload: UploadedFile) -> tuple[str, str, int | None, int | None]:
    guessed = upload.content_type or mimetypes.guess_type(upload.name or "")[0] or ""
    if guessed in VIDEO_TYPES:
        return MediaKind.VIDEO, guessed, None, None
    try:
        with Image.open(upload) as image:  # reads the header only: no pixels decoded yet
            fmt, (width, height) = image.format or "", image.size
            _check_pixels(width, height)
            image.verify()
            frames = getattr(image, "n_frames", 1)
    except Image.DecompressionBombError as exc:  # Pillow's own limit, e.g. inside an animation
        raise MediaError(_too_many_pixels(None, None)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError(
            "This file is not an image or video Herald can publish. Use JPEG, PNG, WebP, GIF or MP4."
        ) from exc
    finally:
        upload.seek(0)
    if fmt not in IMAGE_TYPES:
        raise MediaError(f"{fmt or 'This'} images are not supported; use JPEG, PNG, WebP or GIF.")
    kind = MediaKind.GIF if fmt == "GIF" and frames > 1 else MediaKind.IMAGE
    return kind, IMAGE_TYPES[fmt], width, height


def _check_pixels(width: int, height: int) -> None:
    if width * height > settings.HERALD_MAX_IMAGE_PIXELS:
        raise MediaError(_too_many_pixels(width, height))


def _too_many_pixels(width: int | None, height: int | None) -> str:
    limit = settings.HERALD_MAX_IMAGE_PIXELS / 1_000_000
    size = (
        f"{width} x {height} pixels ({width * height / 1_000_000:.0f} megapixels)"
        if width and height
        else "too large"
    )
    return (
        f"This image is {size}; Herald accepts up to {limit:g} megapixels. "
        "Resize it (no network shows more than about 4096 pixels a side) and upload it again."
    )


def delete_unused_uploads(*, older_than: timedelta) -> int:
    """Delete uploads no post or per-channel version uses, older than `older_than`. Returns how many.

    The composer stores files as soon as they are chosen, so a post that was never saved (an
    error, a closed tab) leaves them behind; they stay usable for a day in case the writer comes
    back, then go.
    """
    cutoff = timezone.now() - older_than
    in_overrides = {
        pk
        for parts in Delivery.objects.exclude(override_parts=None).values_list(
            "override_parts", flat=True
        )
        for part in parts or []
        for pk in part.get("media", [])
    }
    unused = (
        Media.objects.filter(created_at__lt=cutoff, partmedia__isnull=True)
        .exclude(pk__in=in_overrides)
        .order_by("pk")
    )
    deleted = 0
    for item in unused:
        item.file.delete(save=False)
        item.delete()
        deleted += 1
    return deleted
