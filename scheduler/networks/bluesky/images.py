"""Images as a PDS accepts them: within its size limit, with the width and height to send as
`aspectRatio`, without which a client letterboxes the image
(https://docs.bsky.app/docs/advanced-guides/posts#images-embeds)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

# Older PDSes refuse images over 1,000,000 bytes (the limit of app.bsky.embed.images:
# https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/embed/images.json).
IMAGE_MAX_BYTES = 1_000_000
THUMB_MAX_BYTES = 1_000_000  # app.bsky.embed.external thumb maxSize
IMAGE_MAX_SIDE = 2000  # the Bluesky app's own resize target


@dataclass
class PreparedImage:
    data: bytes
    mime_type: str
    width: int
    height: int


_PIL_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
_QUALITIES = (90, 80, 70, 60)


def fit_image(data: bytes, *, max_bytes: int, max_side: int = IMAGE_MAX_SIDE) -> PreparedImage:
    """The image as it should be uploaded, with its width and height for `aspectRatio`.

    An image the PDS accepts as it is goes unchanged. A bigger one is re-encoded as JPEG, first
    at lower qualities, then downscaled step by step (keeping the aspect ratio) until it fits.
    The result depends only on the input, so re-uploading gives the same blob (and CID).
    Raises UnidentifiedImageError / OSError for data Pillow cannot read, and
    Image.DecompressionBombError past twice Image.MAX_IMAGE_PIXELS (uploads stop at once that).
    """
    with Image.open(io.BytesIO(data)) as image:
        width, height = _displayed_size(image)
        if len(data) <= max_bytes and image.format in _PIL_MIME:
            return PreparedImage(data, _PIL_MIME[image.format], width, height)
        # Memory: a JPEG is decoded at a reduced scale already (draft), and the image shrinks
        # in place before any copy is made (transpose, flatten), so one full decode at most.
        image.draft("RGB", (max_side, max_side))
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        flat = _flatten(ImageOps.exif_transpose(image))
    scale = 1.0
    while True:
        size = (max(1, round(flat.width * scale)), max(1, round(flat.height * scale)))
        resized = flat.resize(size, Image.Resampling.LANCZOS) if size != flat.size else flat
        for quality in _QUALITIES:
            out = io.BytesIO()
            resized.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return PreparedImage(out.getvalue(), "image/jpeg", *size)
        scale *= 0.75


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    # EXIF orientations 5-8 rotate by 90°: the picture shows with width and height swapped.
    orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparency becomes white."""
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
