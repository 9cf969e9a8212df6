"""What the API needs to connect a Mastodon account: the request body and the connect call."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Workspace

from ...api.fields import AccessTokenField, StrictCharField
from ...models import Channel
from .connect import connect_mastodon_token


class MastodonConnectSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=["mastodon"])
    server_url = StrictCharField(max_length=500, help_text="e.g. https://mastodon.social")
    access_token = AccessTokenField(help_text="A token from the server's Preferences → Development")


def connect(workspace: Workspace, data: dict[str, Any]) -> Channel:
    """Connect with the validated body of `POST /channels`."""
    return connect_mastodon_token(
        workspace, server_url=data["server_url"], access_token=data["access_token"]
    )
