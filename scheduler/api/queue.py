"""API: a channel's posting schedule and its queue (reorder, shuffle)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from .. import queue as queue_flows
from ..models import Channel, PostPart
from . import serializers as s
from .base import WorkspaceView, errors
from .errors import conflict, validation_error
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent


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
