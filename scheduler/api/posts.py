"""API views for posts and deliveries: thin over `scheduler.compose`."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Model, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import CANCEL_REFUSED, Membership, User, Workspace

from .. import approvals, compose, states
from ..models import (
    Activity,
    Channel,
    Delivery,
    Media,
    Post,
    PostStatus,
)
from . import serializers as s
from .base import PAGE_PARAMS, WorkspaceView, errors
from .errors import conflict, split_compose_errors, validation_error
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent

# `status` filter values: a post status, or a delivery outcome (posts with such a delivery).
DELIVERY_OUTCOMES = ["publishing", "published", "failed", "missed"]
STATUS_FILTERS = [*PostStatus.values, *DELIVERY_OUTCOMES]


class PostFilterSerializer(drf.Serializer):
    status = drf.ChoiceField(
        choices=STATUS_FILTERS,
        required=False,
        help_text="A post status, or a delivery outcome (posts with a delivery in that state)",
    )
    channel = drf.IntegerField(required=False, min_value=1, help_text="Posts to this channel")
    tag = drf.CharField(required=False, max_length=50)
    to = s.AwareDateTimeField(
        required=False, help_text="Posts with a delivery due before this time (ISO 8601)"
    )

    def to_internal_value(self, data: Any) -> Any:
        empty: dict[str, list[str]] = {
            str(name): ["Give a value, or leave the parameter out."]
            for name in self.fields
            if data.get(name) == ""
        }
        if empty:
            raise drf.ValidationError(empty)
        return super().to_internal_value(data)

    def get_fields(self) -> dict[str, drf.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as an attribute.
        fields["from"] = s.AwareDateTimeField(
            required=False, help_text="Posts with a delivery due at or after this time (ISO 8601)"
        )
        return fields


def post_queryset(workspace: Workspace) -> QuerySet[Post]:
    return (
        Post.objects.for_workspace(workspace)
        .select_related("author")
        .defer(*_all_but("author", User, "id", "email"))
        .prefetch_related(
            # A delivery shows its channel's network only: nothing else of the channel is read
            # (nor its credentials decrypted) for every row.
            Prefetch(
                "deliveries",
                Delivery.objects.select_related("channel")
                .defer(*_all_but("channel", Channel, "id", "network"))
                .order_by("pk"),
                to_attr="delivery_list",
            ),
            Prefetch(
                "activity",
                Activity.objects.filter(verb__in=approvals.DECISIONS)
                .select_related("actor")
                .order_by("created_at", "id"),
                to_attr="approval_history",
            ),
        )
    )


def _all_but(relation: str, model: type[Model], *kept: str) -> list[str]:
    """The `relation__field` names of every field of `model` but `kept`, to defer them."""
    return [f"{relation}__{f.name}" for f in model._meta.concrete_fields if f.name not in kept]


def _filtered(queryset: QuerySet[Post], filters: dict[str, Any]) -> QuerySet[Post]:
    if "status" in filters:
        value = filters["status"]
        if value in DELIVERY_OUTCOMES:
            queryset = queryset.filter(deliveries__status=value)
        else:
            queryset = queryset.filter(status=value)
    if "channel" in filters:
        queryset = queryset.filter(deliveries__channel_id=filters["channel"])
    if "from" in filters:
        queryset = queryset.filter(deliveries__due_at__gte=filters["from"])
    if "to" in filters:
        queryset = queryset.filter(deliveries__due_at__lt=filters["to"])
    if "tag" in filters:
        if connection.vendor == "postgresql":
            queryset = queryset.filter(tags__contains=[filters["tag"]])
        else:  # SQLite has no JSON containment; match the quoted tag in the stored list
            queryset = queryset.filter(tags__icontains=f'"{filters["tag"]}"')
    return queryset.distinct()


def part_inputs(
    workspace: Workspace, raw: list[dict[str, Any]], field: str
) -> list[compose.PartInput]:
    """Input parts with their media looked up in the workspace; 400 for an unknown media id."""
    wanted = {pk for part in raw for pk in part.get("media", [])}
    found = Media.objects.for_workspace(workspace).in_bulk(wanted)
    missing = sorted(wanted - set(found))
    if missing:
        raise validation_error(
            {
                field: [
                    f"No media with id {', '.join(map(str, missing))} in this workspace; "
                    "upload files with POST /media first."
                ]
            }
        )
    return [
        compose.PartInput(part.get("text", ""), [found[pk] for pk in part.get("media", [])])
        for part in raw
    ]


def content_inputs(
    workspace: Workspace, data: dict[str, Any]
) -> tuple[list[compose.PartInput] | None, dict[int, list[compose.PartInput] | None] | None]:
    """The parts and per-channel overrides a post body asks for (None where not given)."""
    parts: list[compose.PartInput] | None = None
    if "text" in data:
        parts = [compose.PartInput(data["text"])]
    elif "parts" in data:
        parts = part_inputs(workspace, data["parts"], "parts")
    overrides: dict[int, list[compose.PartInput] | None] | None = None
    if "overrides" in data:
        overrides = {
            int(key): part_inputs(workspace, value["parts"], "overrides") if value else None
            for key, value in data["overrides"].items()
        }
    return parts, overrides


class PostListView(WorkspaceView):
    query_params = PAGE_PARAMS | {"status", "channel", "tag", "from", "to"}

    @extend_schema(
        summary="List posts, newest first",
        parameters=[
            PostFilterSerializer,
            OpenApiParameter(
                "from",
                OpenApiTypes.DATETIME,
                description="Posts with a delivery due at or after this time (ISO 8601)",
            ),
        ],
        responses={200: s.PostSerializer(many=True), **errors(400)},
        tags=["posts"],
    )
    def get(self, request: Request) -> Response:
        filters = PostFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        posts = _filtered(post_queryset(self.membership.workspace), filters.validated_data)
        page = self.paginate_queryset(posts)
        return self.get_paginated_response(s.PostSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a post",
        description="Validation runs for every target network before anything is saved; "
        "problems are listed per field and per channel id. A contributor's post awaits approval.",
        request=s.PostCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.PostSerializer, **errors(400, 409, 415, 422)},
        tags=["posts"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        membership = self.membership
        self.require(membership.can_compose, "Viewers cannot write posts.")
        serializer = s.PostCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channels = self._channels(data["channels"])
        parts, overrides = content_inputs(membership.workspace, data)
        try:
            post = compose.create_post(
                membership,
                channels=channels,
                parts=parts or [],
                options=_options(data),
                tags=data.get("tags"),
                overrides={k: v for k, v in (overrides or {}).items() if v is not None},
                **{"at": None, **compose.timing(data["when"], data.get("scheduled_at"))},
            )
        except compose.ComposeError as error:
            raise split_compose_errors(error.errors) from error
        return Response(
            s.PostSerializer(post_queryset(membership.workspace).get(pk=post.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def _channels(self, ids: list[int]) -> list[Channel]:
        found = Channel.objects.for_workspace(self.membership.workspace).in_bulk(ids)
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise validation_error(
                {"channels": [f"No channel with id {', '.join(map(str, missing))} here."]}
            )
        return [found[pk] for pk in ids]


def _options(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in (data.get("options") or {}).items() if value != ""}


class PostDetailView(WorkspaceView):
    noun = "post"

    def _post(self, pk: int) -> Post:
        post: Post = self.lookup(post_queryset(self.membership.workspace), pk)
        return post

    def _require_author_or_editor(self, membership: Membership, post: Post) -> None:
        self.require(membership.can_compose, "Viewers cannot change posts.")
        self.require(
            membership.can_change_post(post), "Contributors can change only their own posts."
        )

    @extend_schema(
        summary="Get a post with its deliveries",
        responses={200: s.PostSerializer, **errors(404)},
        tags=["posts"],
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.PostSerializer(self._post(pk)).data)

    @extend_schema(
        summary="Change a post's text, parts, overrides, options, tags or time",
        description="Only deliveries not yet publishing change; `not_changed` lists the others "
        "and why. A contributor's change to an approved post sends it back for approval.",
        request=s.PostUpdateSerializer,
        responses={200: s.PostUpdateResultSerializer, **errors(400, 404, 409, 415)},
        tags=["posts"],
    )
    def patch(self, request: Request, pk: int) -> Response:
        membership = self.membership
        post = self._post(pk)
        self._require_author_or_editor(membership, post)
        serializer = s.PostUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        parts, overrides = content_inputs(membership.workspace, data)
        try:
            result = compose.update_post(
                membership,
                post,
                parts=parts,
                overrides=overrides,
                options=_options(data) if "options" in data else None,
                tags=data.get("tags"),
                **compose.timing(data.get("when"), data.get("scheduled_at")),
            )
        except compose.ComposeError as error:
            raise split_compose_errors(error.errors) from error
        except compose.PostNotEditable as error:
            raise conflict(str(error)) from error
        deliveries = {d.pk: d for d in post.delivery_list}
        not_changed = [
            {
                "delivery": pk,
                "channel": deliveries[pk].channel_id,
                "status": deliveries[pk].status,
                "reason": reason,
            }
            for pk, reason in result.unchanged.items()
        ]
        body = {"post": s.PostSerializer(self._post(pk)).data, "not_changed": not_changed}
        return Response(body)

    @extend_schema(
        summary="Cancel a post",
        description="Cancels every delivery not yet publishing; published ones stay, with their "
        "history. Answers the post as it is now.",
        responses={200: s.PostSerializer, **errors(404)},
        tags=["posts"],
    )
    def delete(self, request: Request, pk: int) -> Response:
        membership = self.membership
        post = self._post(pk)
        self.require(membership.can_cancel(post), CANCEL_REFUSED)
        compose.cancel_post(post)
        return Response(s.PostSerializer(self._post(pk)).data)


class ShareNowView(WorkspaceView):
    noun = "post"

    @extend_schema(
        summary="Publish a post's waiting deliveries now",
        description="Deliveries still scheduled (or a draft's) go out within a few seconds.",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.ShareNowResultSerializer, **errors(400, 404, 409, 415, 422)},
        tags=["posts"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        membership = self.membership
        self.require(membership.can_publish, "Only editors and above can publish.")
        post = self.lookup(Post.objects, pk)
        try:
            shared = compose.share_now(post)
        except compose.PostNotEditable as error:
            raise conflict(str(error)) from error
        fresh = post_queryset(membership.workspace).get(pk=pk)
        return Response({"shared": shared, "post": s.PostSerializer(fresh).data})


class DeliveryDetailView(WorkspaceView):
    noun = "delivery"

    @extend_schema(
        summary="Get one delivery (a post on one channel)",
        responses={200: s.DeliverySerializer, **errors(404)},
        tags=["posts"],
    )
    def get(self, request: Request, pk: int) -> Response:
        delivery = self.lookup(Delivery.objects.select_related("channel"), pk)
        return Response(s.DeliverySerializer(delivery).data)


class DeliveryRetryView(WorkspaceView):
    noun = "delivery"

    @extend_schema(
        summary="Retry a failed or missed delivery now",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.DeliverySerializer, **errors(400, 404, 409, 415, 422)},
        tags=["posts"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        self.require(self.membership.can_publish, "Only editors and above can publish.")
        delivery = self.lookup(Delivery.objects.select_related("channel"), pk)
        try:
            compose.retry_delivery(delivery)
        except states.IllegalTransition as error:
            raise conflict(
                f"Only failed or missed deliveries can be retried; this one is {delivery.status}."
            ) from error
        delivery.refresh_from_db()
        return Response(s.DeliverySerializer(delivery).data)
