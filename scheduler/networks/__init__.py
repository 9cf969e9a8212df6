"""The registry of networks Herald publishes to: one entry per network.

Every network is a package `scheduler/networks/<key>/` with the same modules:

- `network.py`: the `base.Network` subclass (limits, validation, publishing part by part,
  reconciliation, refreshing and verifying credentials);
- `connect.py`: connecting an account (and the network's credential job, if it has one);
- `views.py`: its connect pages (`urlpatterns`, mounted under /channels/<key>/);
- `api.py`: what the API needs to connect it (a `<Label>ConnectSerializer` and `connect`);
- `__init__.py`: `ENTRY`, the `NetworkEntry` that carries all of the above.

The web URLs, the navigation, the API and the beat jobs reach a network only through
`entries()` / `entry(key)`, never by name. Adding a network = its package, its fake server in
`tests/fakes/`, its tests and a line in `NETWORKS` (README: "Adding a network").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.urls import URLPattern
    from rest_framework.serializers import Serializer

    from accounts.models import Workspace

    from ..models import Channel
    from .base import Network

# key -> label, in menu order. The Channel.network choices derive from this table (the models
# load before the packages, so it names them rather than importing them).
NETWORKS: dict[str, str] = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "threads": "Threads",
}


@dataclass(frozen=True)
class NetworkEntry:
    """Everything the rest of Herald uses of one network."""

    network: type[Network]
    # The connect pages; the first one is where "Connect <label>" and "Reconnect" link.
    urlpatterns: list[URLPattern]
    # The API: validates `POST /channels` for this network, then connects with the valid data.
    connect_serializer: type[Serializer[Any]]
    connect: Callable[[Workspace, dict[str, Any]], Channel]
    # Beat job keeping credentials alive ahead of expiry (None: the network's never expire).
    refresh_due_credentials: Callable[[], object] | None = None

    @property
    def key(self) -> str:
        return self.network.key

    @property
    def label(self) -> str:
        return self.network.label

    @property
    def connect_url_name(self) -> str:
        """The URL name of the page that connects (or reconnects) an account."""
        return f"scheduler:{self.urlpatterns[0].name}"


def network_choices() -> list[tuple[str, str]]:
    return list(NETWORKS.items())


@cache
def entry(key: str) -> NetworkEntry:
    """The registry entry of network `key`; raises KeyError for an unknown network."""
    if key not in NETWORKS:
        raise KeyError(key)
    found: NetworkEntry = import_module(f"{__name__}.{key}").ENTRY
    return found


def entries() -> list[NetworkEntry]:
    """Every network's entry, in menu order."""
    return [entry(key) for key in NETWORKS]


def network_class(key: str) -> type[Network]:
    """The class implementing network `key`; raises KeyError for an unknown network."""
    return entry(key).network


def network_for(channel: Channel) -> Network:
    """A network client bound to one channel (cheap: clients connect lazily)."""
    return network_class(channel.network)(channel)
