"""Mastodon (and every server speaking its API) through Mastodon.py 2.3.

- `network`: validation and publishing, with the server's Idempotency-Key;
- `connect`: the app registration, OAuth and connecting with an existing token;
- `views`: the connect pages; `api`: connecting through the API.
"""

from mastodon import Mastodon

from .. import NetworkEntry
from . import api, views
from .network import MastodonNetwork, classify, client

ENTRY = NetworkEntry(
    network=MastodonNetwork,
    urlpatterns=views.urlpatterns,
    connect_serializer=api.MastodonConnectSerializer,
    connect=api.connect,
)

__all__ = ["ENTRY", "Mastodon", "MastodonNetwork", "classify", "client"]
