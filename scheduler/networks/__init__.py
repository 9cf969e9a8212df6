"""The table of networks Herald publishes to.

Adding a network = one module implementing `base.Network`, one entry here, one fake server in
`tests/fakes/`, one test module, one connect view (README: "Adding a network").
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import Channel
    from .base import Network

# key -> (label, class path). The Channel.network choices derive from this table.
NETWORKS: dict[str, tuple[str, str]] = {
    "mastodon": ("Mastodon", "scheduler.networks.mastodon.MastodonNetwork"),
    "bluesky": ("Bluesky", "scheduler.networks.bluesky.BlueskyNetwork"),
    "threads": ("Threads", "scheduler.networks.threads.ThreadsNetwork"),
}


def network_choices() -> list[tuple[str, str]]:
    return [(key, label) for key, (label, _) in NETWORKS.items()]


@cache
def network_class(key: str) -> type[Network]:
    """The class implementing network `key`; raises KeyError for an unknown network."""
    module_path, _, class_name = NETWORKS[key][1].rpartition(".")
    return getattr(import_module(module_path), class_name)  # type: ignore[no-any-return]


def network_for(channel: Channel) -> Network:
    """A network client bound to one channel (cheap: clients connect lazily)."""
    return network_class(channel.network)(channel)
