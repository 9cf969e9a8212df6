"""The Open Graph card of a link, for Bluesky's external embeds.

Bluesky does not build link cards server-side: the client fetches the page, reads og:title /
og:description / og:image and uploads the image as the thumb
(https://docs.bsky.app/docs/advanced-guides/posts#website-card-embeds). Every fetch goes through
the address guard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

from django.conf import settings

from ...outbound import Fetched, OutboundError, fetch

logger = logging.getLogger(__name__)

MAX_TITLE = 300
MAX_DESCRIPTION = 1000


@dataclass
class LinkCard:
    url: str
    title: str
    description: str
    image_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class _MetaParser(HTMLParser):
    """Collects <meta property/name=... content=...>, the <title> and <meta charset>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values:
                self.meta.setdefault(key, values["content"].strip())
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse_open_graph(html: str, base_url: str) -> LinkCard | None:
    """The card described by a page's Open Graph (or Twitter, or plain HTML) tags; None if untitled."""
    parser = _MetaParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # malformed markup: keep what was parsed
        logger.debug("link card: could not parse all of %s", base_url, exc_info=True)
    meta = parser.meta
    title = meta.get("og:title") or meta.get("twitter:title") or " ".join(parser.title.split())
    if not title:
        return None
    description = (
        meta.get("og:description")
        or meta.get("twitter:description")
        or meta.get("description")
        or ""
    )
    image = (
        meta.get("og:image:secure_url")
        or meta.get("og:image")
        or meta.get("og:image:url")
        or meta.get("twitter:image")
        or meta.get("twitter:image:src")
        or ""
    )
    return LinkCard(
        url=base_url,
        title=title[:MAX_TITLE],
        description=description[:MAX_DESCRIPTION],
        image_url=urljoin(base_url, image) if image else "",
    )


def fetch_link_card(url: str) -> LinkCard | None:
    """The Open Graph card of the page at `url`, or None when it cannot be had (never raises).

    The card keeps the URL as written in the post (not where redirects ended).
    """
    try:
        fetched = fetch(
            "GET",
            url,
            max_bytes=settings.HERALD_LINK_CARD_MAX_BYTES,
            timeout=settings.HERALD_LINK_CARD_TIMEOUT,
            headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"},
            truncate=True,
        )
    except OutboundError as error:
        logger.info("link card for %s skipped: %s", url, error)
        return None
    if fetched.status != 200 or fetched.content_type not in ("text/html", "application/xhtml+xml"):
        logger.info(
            "link card for %s skipped: HTTP %s %s", url, fetched.status, fetched.content_type
        )
        return None
    card = parse_open_graph(_decode_html(fetched), fetched.url)
    if card is not None:
        card.url = url
    return card


def fetch_image(url: str) -> bytes | None:
    """The bytes of the image at `url` through the guard, or None (never raises)."""
    try:
        fetched = fetch(
            "GET",
            url,
            max_bytes=settings.HERALD_LINK_CARD_IMAGE_MAX_BYTES,
            timeout=settings.HERALD_LINK_CARD_TIMEOUT,
            headers={"Accept": "image/*"},
        )
    except OutboundError as error:
        logger.info("link card image %s skipped: %s", url, error)
        return None
    if fetched.status != 200 or not fetched.content_type.startswith("image/"):
        return None
    return fetched.content


def _decode_html(fetched: Fetched) -> str:
    charset = ""
    for part in fetched.headers.get("content-type", "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    if not charset:
        head = fetched.content[:2048].decode("ascii", "replace").lower()
        marker = head.find("charset=")
        if marker >= 0:
            charset = head[marker + 8 :].lstrip("\"'").split('"')[0].split("'")[0].split(";")[0]
            charset = charset.split()[0].rstrip("/>") if charset.split() else ""
    try:
        return fetched.content.decode(charset or "utf-8", "replace")
    except LookupError:
        return fetched.content.decode("utf-8", "replace")
