"""API views for the token's identity, channels, posting schedules, queues, media and webhooks.

Thin: validate input with a serializer, check the role, call a workflow function, serialise.
Posts and deliveries are in `posts.py`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from .. import channels as channel_flows
from .. import media as media_flows
from .. import queue as queue_flows
from .. import webhooks as webhook_flows
from ..models import Channel, Media, PostPart, Webhook, WebhookDelivery
from ..networks import NETWORKS, entries, entry
from ..networks.base import ErrorCategory, InvalidServerURL, NetworkError
from ..web import require_channel_manager
from . import serializers as s
from .base import PAGE_PARAMS, WorkspaceView, errors, token_auth
from .errors import ApiError, conflict, validation_error
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import ResponseWithSecrets, idempotent


class MeView(WorkspaceView):
    @extend_schema(
        summary="The token's user, workspace, role and scope",
        responses={200: s.MeSerializer, **errors()},
        tags=["me"],
    )
    def get(self, request: Request) -> Response:
        membership = self.membership
        token = token_auth(request).token
        return Response(
            s.MeSerializer(
                {
                    "user": membership.user,
                    "workspace": membership.workspace,
                    "role": membership.role,
                    "token": token,
                }
            ).data
        )


# -- channels -------------------------------------------------------------------------------------------
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
            serializers=[entry.connect_serializer for entry in entries()],
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


# -- schedule and queue ------------------------------------------------------------------------------------
class ScheduleView(WorkspaceView):
    noun = "channel"

    @extend_schema(
        summary="Get a channel's posting schedule",
        responses={200: s.ScheduleSerializer, **errors(404)},
        tags=["queue"],
    )
    def get(self, request: Request, pk: int) -> Response:
        channel = self.lookup(Channel.objects, pk)
        return Response(_schedule(channel))

    @extend_schema(
        summary="Replace a channel's posting schedule",
        description="Queued posts re-flow onto the new slots; posts with a time of their own "
        "stay where they are.",
        request=s.ScheduleSerializer,
        responses={200: s.ScheduleSerializer, **errors(400, 404, 409, 415)},
        tags=["queue"],
    )
    def put(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_manage_channels, "Only owners and admins set schedules.")
        channel = self.lookup(Channel.objects, pk)
        serializer = s.ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            queue_flows.normalise_schedule(data["slots"])
        except queue_flows.QueueError as error:
            raise validation_error({"slots": [str(error)]}) from error
        try:
            queue_flows.set_schedule(channel, timezone_name=data["timezone"], slots=data["slots"])
        except queue_flows.QueueError as error:
            if "time zone" in str(error):
                raise validation_error({"timezone": [str(error)]}) from error
            raise conflict(str(error)) from error
        return Response(_schedule(channel))


def _schedule(channel: Channel) -> dict[str, Any]:
    return {
        "timezone": channel.timezone,
        "slots": queue_flows.normalise_schedule(channel.schedule or {}),
    }


class QueueView(WorkspaceView):
    noun = "channel"

    @extend_schema(
        summary="A channel's queue, in publishing order",
        responses={200: s.QueueSerializer, **errors(404)},
        tags=["queue"],
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_queue(self.lookup(Channel.objects, pk)))


def _queue(channel: Channel, items: list[Any] | None = None) -> dict[str, Any]:
    items = queue_flows.queued(channel) if items is None else items
    first_parts = PostPart.objects.filter(post__in=[d.post_id for d in items], position=0)
    texts = {part.post_id: part.text for part in first_parts}
    rows = [
        {
            "position": position,
            "delivery": delivery.pk,
            "post": delivery.post_id,
            "status": delivery.status,
            "due_at": delivery.due_at,
            "text": (texts.get(delivery.post_id) or "")[:140],
        }
        for position, delivery in enumerate(items, start=1)
    ]
    return s.QueueSerializer(
        {
            "channel": channel.pk,
            "timezone": channel.timezone,
            "items": rows,
            "next_free_slots": queue_flows.next_slots(channel),
        }
    ).data


class QueueReorderView(WorkspaceView):
    noun = "channel"

    @extend_schema(
        summary="Reorder a channel's queue",
        description="The listed deliveries go first, in that order, onto the channel's next "
        "slots; the other queued deliveries follow in their old order.",
        request=s.ReorderSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.QueueSerializer, **errors(400, 404, 409, 415, 422)},
        tags=["queue"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_publish, "Only editors and above reorder the queue.")
        channel = self.lookup(Channel.objects, pk)
        serializer = s.ReorderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            items = queue_flows.reorder(channel, serializer.validated_data["delivery_ids"])
        except queue_flows.QueueError as error:
            raise validation_error({"delivery_ids": [str(error)]}) from error
        return Response(_queue(channel, items))


class QueueShuffleView(WorkspaceView):
    noun = "channel"

    @extend_schema(
        summary="Shuffle a channel's queue",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.QueueSerializer, **errors(400, 404, 409, 415, 422)},
        tags=["queue"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_publish, "Only editors and above shuffle the queue.")
        channel = self.lookup(Channel.objects, pk)
        try:
            items = queue_flows.shuffle(channel)
        except queue_flows.QueueError as error:
            raise conflict(str(error)) from error
        return Response(_queue(channel, items))


# -- media ---------------------------------------------------------------------------------------------
class MediaListView(WorkspaceView):
    query_params = PAGE_PARAMS
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="List uploaded media",
        responses={200: s.MediaSerializer(many=True), **errors(400)},
        tags=["media"],
    )
    def get(self, request: Request) -> Response:
        media = Media.objects.for_workspace(self.membership.workspace)
        page = self.paginate_queryset(media)
        return self.get_paginated_response(s.MediaSerializer(page, many=True).data)

    @extend_schema(
        summary="Upload an image or video",
        description="The type and size are checked (images are opened with Pillow). Attach "
        "the returned id to posts.",
        request={"multipart/form-data": s.MediaUploadSerializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.MediaSerializer, **errors(400, 409, 413, 415, 422)},
        tags=["media"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        membership = self.membership
        self.require(membership.can_compose, "Viewers cannot upload media.")
        serializer = s.MediaUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            media = media_flows.save_upload(
                membership,
                serializer.validated_data["file"],
                alt_text=serializer.validated_data.get("alt_text", ""),
            )
        except media_flows.MediaError as error:
            raise validation_error({"file": [str(error)]}) from error
        return Response(s.MediaSerializer(media).data, status=status.HTTP_201_CREATED)


class MediaDetailView(WorkspaceView):
    noun = "media"

    @extend_schema(
        summary="Get a media item",
        responses={200: s.MediaSerializer, **errors(404)},
        tags=["media"],
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.MediaSerializer(self.lookup(Media.objects, pk)).data)

    @extend_schema(
        summary="Change a media item's alt text",
        request=s.MediaUpdateSerializer,
        responses={200: s.MediaSerializer, **errors(400, 404, 415)},
        tags=["media"],
    )
    def patch(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_compose, "Viewers cannot change media.")
        media = self.lookup(Media.objects, pk)
        self.require(
            self.membership.can_change_media(media),
            "Contributors can describe only their own uploads, and not once a post using them "
            "awaits approval or was approved; ask an editor.",
        )
        serializer = s.MediaUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        media.alt_text = serializer.validated_data["alt_text"]
        media.save(update_fields=["alt_text"])
        return Response(s.MediaSerializer(media).data)


# -- webhooks ------------------------------------------------------------------------------------------
class WebhookListView(WorkspaceView):
    query_params = PAGE_PARAMS

    @extend_schema(
        summary="List webhooks",
        responses={200: s.WebhookSerializer(many=True), **errors(400)},
        tags=["webhooks"],
    )
    def get(self, request: Request) -> Response:
        webhooks = Webhook.objects.for_workspace(self.membership.workspace)
        page = self.paginate_queryset(webhooks)
        return self.get_paginated_response(s.WebhookSerializer(page, many=True).data)

    @extend_schema(
        summary="Subscribe a URL to events",
        description="Each event is POSTed as JSON and signed: `Herald-Signature: v1=<hex>` is "
        "the HMAC-SHA256 of `<Herald-Timestamp>.<raw body>` with the secret returned here "
        "(only here). `Herald-Event-Id` stays the same on retries.",
        request=s.WebhookCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.WebhookCreatedSerializer, **errors(400, 409, 415, 422)},
        tags=["webhooks"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        membership = self.membership
        self.require(membership.can_manage_channels, "Only owners and admins manage webhooks.")
        serializer = s.WebhookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            webhook, secret = webhook_flows.create_webhook(
                membership,
                url=serializer.validated_data["url"],
                events=serializer.validated_data["events"],
            )
        except webhook_flows.WebhookError as error:
            raise validation_error(error.errors) from error
        body = s.WebhookCreatedSerializer(webhook).data
        body["secret"] = secret
        return ResponseWithSecrets(body, secret_fields=("secret",), status=status.HTTP_201_CREATED)


class WebhookDetailView(WorkspaceView):
    noun = "webhook"

    @extend_schema(
        summary="Get a webhook",
        responses={200: s.WebhookSerializer, **errors(404)},
        tags=["webhooks"],
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.WebhookSerializer(self.lookup(Webhook.objects, pk)).data)

    @extend_schema(
        summary="Delete a webhook",
        responses={204: None, **errors(404)},
        tags=["webhooks"],
    )
    def delete(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_manage_channels, "Only owners and admins manage webhooks.")
        self.lookup(Webhook.objects, pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListView(WorkspaceView):
    query_params = PAGE_PARAMS
    noun = "webhook"

    @extend_schema(
        summary="A webhook's delivery log, newest first",
        responses={200: s.WebhookDeliverySerializer(many=True), **errors(400, 404)},
        tags=["webhooks"],
    )
    def get(self, request: Request, pk: int) -> Response:
        webhook = self.lookup(Webhook.objects, pk)
        page = self.paginate_queryset(WebhookDelivery.objects.filter(webhook=webhook))
        return self.get_paginated_response(s.WebhookDeliverySerializer(page, many=True).data)
