"""What the API needs to connect a Bluesky account: the request body and the connect call."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Workspace

from ...api.fields import StrictCharField
from ...models import Channel
from .connect import connect_bluesky


class BlueskyConnectSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=["bluesky"])
    handle = StrictCharField(max_length=253, help_text="e.g. alice.bsky.social or a DID")
    app_password = StrictCharField(
        max_length=100, help_text="An app password (Settings → Privacy and security)"
    )
    server_url = StrictCharField(
        max_length=500, required=False, allow_blank=True, help_text="Your PDS; default bsky.social"
    )


def connect(workspace: Workspace, data: dict[str, Any]) -> Channel:
    """Connect with the validated body of `POST /channels`."""
    return connect_bluesky(
        workspace,
        identifier=data["handle"],
        app_password=data["app_password"],
        server_url=data.get("server_url") or None,
    )
