"""Threads through Meta's Threads Graph API, with plain `requests`.

The API: https://developers.facebook.com/docs/threads/overview.


- `graph`: the HTTP session and the mapping of Graph errors onto the engine's taxonomy;
- `network`: `ThreadsNetwork` (validation, containers, publishing, reconciliation, refresh);
- `connect`: OAuth, connecting with an existing token, and the token refresh job;
- `views`: the connect page and the OAuth callback; `api`: connecting through the API.
"""

from .. import NetworkEntry
from . import api, views
from .connect import (
    authorize_url,
    connect_threads_code,
    connect_threads_token,
    refresh_due_tokens,
)
from .graph import Graph, GraphError, classify
from .network import ThreadsNetwork, count_links, threads_text_length

ENTRY = NetworkEntry(
    network=ThreadsNetwork,
    urlpatterns=views.urlpatterns,
    connect_serializer=api.ThreadsConnectSerializer,
    connect=api.connect,
    refresh_due_credentials=refresh_due_tokens,
)

__all__ = [
    "ENTRY",
    "Graph",
    "GraphError",
    "ThreadsNetwork",
    "authorize_url",
    "classify",
    "connect_threads_code",
    "connect_threads_token",
    "count_links",
    "refresh_due_tokens",
    "threads_text_length",
]
