"""API: channels (listing, connecting through the network registry, editing, removing)."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from .. import channels as channel_flows
from .. import queue as queue_flows
from ..models import Channel
from ..networks import NETWORKS, entries, entry
from ..networks.base import ErrorCategory, InvalidServerURL, NetworkError
from ..web import require_channel_manager
from . import serializers as s
from .base import PAGE_PARAMS, WorkspaceView, errors
from .errors import ApiError, conflict, validation_error
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent


def network_error(error: NetworkError) -> ApiError:
    """A network's refusal or unavailability while connecting, as an API error."""
    if error.category == ErrorCategory.AUTH:
        return ApiError(400, "invalid_credentials", error.message, details={"code": error.code})
    if error.category == ErrorCategory.REJECTED:
        return ApiError(400, "network_rejected", error.message, details={"code": error.code})
    headers = {"Retry-After": str(int(error.retry_after))} if error.retry_after else {}
    return ApiError(
        502, "network_unavailable", error.message, details={"code": error.code}, headers=headers
    )


class ChannelListView(WorkspaceView):
    query_params = PAGE_PARAMS

    @extend_schema(
        summary="List channels",
        responses={200: s.ChannelSerializer(many=True), **errors(400)},
        tags=["channels"],
    )
    def get(self, request: Request) -> Response:
        channels = Channel.objects.for_workspace(self.membership.workspace)
        page = self.paginate_queryset(channels)
        return self.get_paginated_response(s.ChannelSerializer(page, many=True).data)

    @extend_schema(
        summary="Connect a channel with credentials",
        description="The credentials are verified with the network before anything is saved. "
        "Connecting an account that is already a channel reconnects it.",
        request=PolymorphicProxySerializer(
            component_name="ChannelConnect",
            serializers={entry.key: entry.connect_serializer for entry in entries()},
            resource_type_field_name="network",
        ),
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.ChannelSerializer, **errors(400, 409, 415, 422, 502)},
        tags=["channels"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        membership = self.membership
        require_channel_manager(membership)
        network = request.data.get("network") if isinstance(request.data, dict) else None
        if not isinstance(network, str) or network not in NETWORKS:
            raise validation_error({"network": [f"Choose one of: {', '.join(NETWORKS)}."]})
        connecting = entry(network)
        serializer = connecting.connect_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            channel = connecting.connect(membership.workspace, serializer.validated_data)
        except InvalidServerURL as error:
            raise validation_error({"server_url": [str(error)]}) from error
        except NetworkError as error:
            raise network_error(error) from error
        return Response(s.ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailView(WorkspaceView):
    noun = "channel"

    @extend_schema(
        summary="Get a channel",
        responses={200: s.ChannelSerializer, **errors(404)},
        tags=["channels"],
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ChannelSerializer(self.lookup(Channel.objects, pk)).data)

    @extend_schema(
        summary="Rename a channel, change its time zone, pause or resume it",
        request=s.ChannelUpdateSerializer,
        responses={200: s.ChannelSerializer, **errors(400, 404, 409, 415)},
        tags=["channels"],
    )
    def patch(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_manage_channels, "Only owners and admins edit channels.")
        channel = self.lookup(Channel.objects, pk)
        serializer = s.ChannelUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "paused" in data:
            if channel.status == "needs_reconnect" and data["paused"] != (
                channel.status == "paused"
            ):
                raise conflict(
                    "This channel needs reconnecting before it can be paused or resumed."
                )
            channel_flows.set_paused(channel, data["paused"])
        if "timezone" in data and data["timezone"] != channel.timezone:
            try:
                queue_flows.set_schedule(
                    channel, timezone_name=data["timezone"], slots=channel.schedule
                )
            except queue_flows.QueueError as error:
                raise conflict(str(error)) from error
        if "name" in data:
            Channel.objects.filter(pk=channel.pk).update(name=data["name"].strip())
        channel.refresh_from_db()
        return Response(s.ChannelSerializer(channel).data)

    @extend_schema(
        summary="Disconnect and delete a channel",
        description="Removes the channel with its deliveries (their history included). Refused "
        "while one of its deliveries is being published.",
        responses={204: None, **errors(404, 409)},
        tags=["channels"],
    )
    def delete(self, request: Request, pk: int) -> Response:
        require_channel_manager(self.membership)
        channel = self.lookup(Channel.objects, pk)
        try:
            channel_flows.remove_channel(channel)
        except channel_flows.ChannelBusy as error:
            raise conflict(str(error)) from error
        return Response(status=status.HTTP_204_NO_CONTENT)
