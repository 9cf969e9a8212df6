"""Bluesky (and any atproto PDS) through the atproto SDK 0.0.73 (https://atproto.blue/).

- `network`: validation and publishing, part by part, exactly once;
- `session`: the channel's session, reused, refreshed and persisted (never a sign-in per post);
- `errors`: SDK exceptions mapped onto the engine's taxonomy;
- `images`: images recompressed to what a PDS accepts, with their aspect ratio;
- `connect`: app-password sign-in at the account's PDS, resolved from its DID document;
- `views`: the connect page; `api`: connecting through the API;
- `tid`: the record keys Herald mints; `linkcard`: the Open Graph card of a link.
"""

from .. import NetworkEntry
from . import api, views
from .connect import connect_bluesky, resolve_pds
from .errors import classify
from .network import BlueskyNetwork
from .session import BlueskySession, store_session

ENTRY = NetworkEntry(
    network=BlueskyNetwork,
    urlpatterns=views.urlpatterns,
    connect_serializer=api.BlueskyConnectSerializer,
    connect=api.connect,
)

__all__ = [
    "ENTRY",
    "BlueskyNetwork",
    "BlueskySession",
    "classify",
    "connect_bluesky",
    "resolve_pds",
    "store_session",
]
