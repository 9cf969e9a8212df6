"""Threads through Meta's Threads Graph API, with plain `requests` (PLATFORMS.md section 3).

- `graph`: the HTTP session and the mapping of Graph errors onto the engine's taxonomy;
- `network`: `ThreadsNetwork` (validation, containers, publishing, reconciliation, refresh);
- `connect`: OAuth, connecting with an existing token, and the token refresh job.
"""

from .connect import (
    authorize_url,
    connect_threads_code,
    connect_threads_token,
    refresh_due_tokens,
)
from .graph import Graph, GraphError, classify
from .network import ThreadsNetwork, count_links, threads_text_length

__all__ = [
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
