"""What the API needs to connect a Threads account: the request body and the connect call."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Workspace

from ...api.fields import AccessTokenField
from ...models import Channel
from .connect import connect_threads_token


class ThreadsConnectSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=["threads"])
    access_token = AccessTokenField(help_text="A long-lived Threads token")


def connect(workspace: Workspace, data: dict[str, Any]) -> Channel:
    """Connect with the validated body of `POST /channels`."""
    return connect_threads_token(workspace, access_token=data["access_token"])
