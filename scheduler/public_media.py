"""Public, signed, expiring URLs for media files, for networks that fetch media themselves.

Threads does not take uploads: Meta downloads each image or video from a URL it is given, at a
moment Herald does not control, so the file must be on a public server
(https://developers.facebook.com/docs/threads/posts). Each URL carries a token signed with
SECRET_KEY (django.core.signing, own salt) naming one Media row; it cannot be guessed or altered,
it stops working after HERALD_PUBLIC_MEDIA_MAX_AGE seconds, and it is served without login.
"""

from __future__ import annotations

import ipaddress
import posixpath
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.http import require_safe

from .models import Media

SALT = "herald.public-media"
# Host names that never resolve to the public internet (RFC 6761, RFC 6762, RFC 8375).
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".test")


def public_media_url(media: Media) -> str:
    """An absolute URL under PUBLIC_URL that serves `media` to anyone holding it, for a while."""
    token = signing.dumps({"media": media.pk, "sha": media.checksum[:16]}, salt=SALT)
    name = posixpath.basename(media.file.name or "") or f"media-{media.pk}"
    path = reverse("scheduler:public_media", kwargs={"token": token, "filename": name})
    return settings.PUBLIC_URL + path


def public_base_url_problem() -> str | None:
    """Why networks on the internet cannot fetch from PUBLIC_URL, or None if they can.

    Decided from the address alone (no network call): a loopback, private or single-label host
    is unreachable from outside unless listed in HERALD_ALLOWED_PRIVATE_HOSTS.
    """
    url = settings.PUBLIC_URL
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return "PUBLIC_URL is not set to Herald's public web address."
    netloc = f"{host}:{parts.port}" if parts.port else host
    allowed = settings.HERALD_ALLOWED_PRIVATE_HOSTS
    if host in allowed or netloc in allowed:
        return None
    try:
        public = ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        public = "." in host and host != "localhost" and not host.endswith(LOCAL_SUFFIXES)
    if not public:
        return f"PUBLIC_URL ({url}) is not an address reachable from the internet."
    return None


@require_safe
def serve_public_media(request: HttpRequest, token: str, filename: str) -> HttpResponseBase:
    """Serve the file named by a valid token: 403 once it expired, 404 if it is not genuine."""
    try:
        claim = signing.loads(token, salt=SALT, max_age=settings.HERALD_PUBLIC_MEDIA_MAX_AGE)
    except signing.SignatureExpired:
        return HttpResponseForbidden("This media link has expired.", content_type="text/plain")
    except signing.BadSignature as exc:
        raise Http404("No such media.") from exc
    media = Media.objects.filter(pk=claim.get("media")).first()
    if media is None or media.checksum[:16] != claim.get("sha"):
        raise Http404("No such media.")
    try:
        handle = media.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("No such media.") from exc
    response = FileResponse(handle, content_type=media.mime_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    response["X-Content-Type-Options"] = "nosniff"
    return response
