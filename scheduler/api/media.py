"""API: uploaded media (upload, list, alt text)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from .. import media as media_flows
from ..models import Media
from . import serializers as s
from .base import PAGE_PARAMS, WorkspaceView, errors
from .errors import validation_error
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent


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
        if "alt_text" in serializer.validated_data:
            media.alt_text = serializer.validated_data["alt_text"]
            media.save(update_fields=["alt_text"])
        return Response(s.MediaSerializer(media).data)
