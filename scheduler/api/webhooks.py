"""API: webhooks and their delivery log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from .. import webhooks as webhook_flows
from ..models import Webhook, WebhookDelivery
from . import serializers as s
from .base import PAGE_PARAMS, WorkspaceView, errors
from .errors import validation_error
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import ResponseWithSecrets, idempotent


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
