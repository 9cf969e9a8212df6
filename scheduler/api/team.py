"""API views for teamwork: approving and rejecting posts, comments, the activity log and
notifications. Thin over `scheduler.approvals`, `scheduler.comments` and
`accounts.notifications`; role rules come from `Membership`."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import notifications
from accounts.models import Notification, NotificationKind

from .. import approvals, compose
from .. import comments as comment_flows
from ..models import Activity, ActivityVerb, Comment, Post
from . import serializers as s
from .base import PAGE_PARAMS, WorkspaceView, errors
from .errors import conflict, split_compose_errors, validation_error
from .fields import ModelSerializer
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent
from .posts import post_queryset


class PersonSerializer(drf.Serializer):
    id = drf.IntegerField()
    email = drf.EmailField()
    name = drf.CharField(allow_blank=True)


# -- approvals ---------------------------------------------------------------------------------------
class ApproveSerializer(drf.Serializer):
    scheduled_at = s.AwareDateTimeField(
        required=False,
        help_text="A new time for every delivery (ISO 8601); left out, the post keeps its time "
        "(a time that passed while it waited means now)",
    )


class RejectSerializer(drf.Serializer):
    reason = drf.CharField(max_length=2000, help_text="Why: the author reads it")


class _ReviewView(WorkspaceView):
    noun = "post"

    def decide(
        self, request: Request, pk: int, form: type[drf.Serializer], decide: Any
    ) -> Response:
        """Check the role, validate `form`, call `decide(membership, post, data)`, answer the post."""
        membership = self.membership
        self.require(membership.can_approve, "Only editors, admins and owners review posts.")
        post = self.lookup(Post.objects, pk)
        serializer = form(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            decide(membership, post, serializer.validated_data)
        except compose.ComposeError as error:
            raise split_compose_errors(error.errors) from error
        except compose.PostNotEditable as error:
            raise conflict(str(error)) from error
        fresh = post_queryset(membership.workspace).get(pk=post.pk)
        return Response(s.PostSerializer(fresh).data)


class ApproveView(_ReviewView):
    @extend_schema(
        summary="Approve a post awaiting approval",
        description="Editors, admins and owners only. The post is scheduled at its time, or at "
        "`scheduled_at`. Fires the `post.approved` webhook.",
        request=ApproveSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.PostSerializer, **errors(400, 404, 409, 415, 422)},
        tags=["posts"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return self.decide(
            request,
            pk,
            ApproveSerializer,
            lambda member, post, data: approvals.approve_post(
                member, post, at=data.get("scheduled_at")
            ),
        )


class RejectView(_ReviewView):
    @extend_schema(
        summary="Reject a post awaiting approval, saying why",
        description="Editors, admins and owners only. The post goes back to its author as a "
        "draft with the reason. Fires the `post.rejected` webhook.",
        request=RejectSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: s.PostSerializer, **errors(400, 404, 409, 415, 422)},
        tags=["posts"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return self.decide(
            request,
            pk,
            RejectSerializer,
            lambda member, post, data: approvals.reject_post(member, post, reason=data["reason"]),
        )


# -- comments ----------------------------------------------------------------------------------------
class CommentSerializer(ModelSerializer):
    author = PersonSerializer(allow_null=True)
    mentions = PersonSerializer(many=True)

    class Meta:
        model = Comment
        fields = ["id", "post", "author", "text", "mentions", "created_at"]


class CommentCreateSerializer(drf.Serializer):
    text = drf.CharField(
        max_length=comment_flows.MAX_LENGTH,
        help_text="Mention members with @email or @name-before-the-at",
    )


class CommentListView(WorkspaceView):
    noun = "post"
    pagination_class = None

    @extend_schema(
        summary="A post's comments, oldest first",
        responses={200: CommentSerializer(many=True), **errors(404)},
        tags=["comments"],
    )
    def get(self, request: Request, pk: int) -> Response:
        post = self.lookup(Post.objects, pk)
        rows = post.comments.select_related("author").prefetch_related("mentions")
        return Response(CommentSerializer(rows, many=True).data)

    @extend_schema(
        summary="Comment on a post",
        description="Members mentioned (`@carol@example.com` or `@carol`) are notified.",
        request=CommentCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: CommentSerializer, **errors(400, 404, 409, 415, 422)},
        tags=["comments"],
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        membership = self.membership
        self.require(membership.can_comment, "Viewers cannot comment.")
        post = self.lookup(Post.objects, pk)
        serializer = CommentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            comment = comment_flows.add_comment(
                membership, post, text=serializer.validated_data["text"]
            )
        except comment_flows.CommentError as error:
            raise validation_error({"text": [str(error)]}) from error
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


# -- activity ----------------------------------------------------------------------------------------
class ActivitySerializer(ModelSerializer):
    actor = PersonSerializer(allow_null=True, help_text="Null when Herald itself did it")
    member = PersonSerializer(allow_null=True)
    verb = drf.ChoiceField(choices=ActivityVerb.choices)
    summary = drf.SerializerMethodField()

    class Meta:
        model = Activity
        fields = [
            "id",
            "verb",
            "summary",
            "actor",
            "post",
            "channel",
            "member",
            "changes",
            "created_at",
        ]

    def get_summary(self, entry: Activity) -> str:
        from .. import activity

        return activity.describe(entry)


class ActivityFilterSerializer(drf.Serializer):
    verb = drf.ChoiceField(choices=ActivityVerb.choices, required=False)
    post = drf.IntegerField(required=False, min_value=1)
    channel = drf.IntegerField(required=False, min_value=1)
    actor = drf.IntegerField(required=False, min_value=1, help_text="A member's user id")
    to = s.AwareDateTimeField(required=False, help_text="Entries before this time (ISO 8601)")

    def to_internal_value(self, data: Any) -> Any:
        empty = {
            str(name): ["Give a value, or leave the parameter out."]
            for name in self.fields
            if data.get(name) == ""
        }
        if empty:
            raise drf.ValidationError(empty)
        return super().to_internal_value(data)


def filter_activity(rows: QuerySet[Activity], filters: dict[str, Any]) -> QuerySet[Activity]:
    """Apply the `verb`, `post`, `channel`, `actor` and `to` filters."""
    for name in ("verb", "post", "channel"):
        if name in filters:
            rows = rows.filter(**{name: filters[name]})
    if "actor" in filters:
        rows = rows.filter(actor_id=filters["actor"])
    if "to" in filters:
        rows = rows.filter(created_at__lt=filters["to"])
    return rows


class ActivityListView(WorkspaceView):
    query_params = PAGE_PARAMS | {"verb", "post", "channel", "actor", "to"}

    @extend_schema(
        summary="The workspace's activity log, newest first",
        parameters=[ActivityFilterSerializer],
        responses={200: ActivitySerializer(many=True), **errors(400)},
        tags=["activity"],
    )
    def get(self, request: Request) -> Response:
        filters = ActivityFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = Activity.objects.for_workspace(self.membership.workspace).select_related(
            "actor", "member"
        )
        page = self.paginate_queryset(filter_activity(rows, filters.validated_data))
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)


# -- notifications -----------------------------------------------------------------------------------
class NotificationSerializer(ModelSerializer):
    kind = drf.ChoiceField(choices=NotificationKind.choices)

    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "link", "created_at", "read_at"]


class MarkReadSerializer(drf.Serializer):
    ids = drf.ListField(
        child=drf.IntegerField(min_value=1),
        required=False,
        max_length=500,
        help_text="Notifications to mark read; left out, all of them",
    )


class MarkReadResultSerializer(drf.Serializer):
    marked = drf.IntegerField()
    unread = drf.IntegerField()


class NotificationListView(WorkspaceView):
    query_params = PAGE_PARAMS

    @extend_schema(
        summary="Your notifications in this workspace, newest first",
        responses={200: NotificationSerializer(many=True), **errors(400)},
        tags=["notifications"],
    )
    def get(self, request: Request) -> Response:
        membership = self.membership
        rows = Notification.objects.filter(user=membership.user, workspace=membership.workspace)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(NotificationSerializer(page, many=True).data)


class NotificationReadView(WorkspaceView):
    @extend_schema(
        summary="Mark notifications read",
        request=MarkReadSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: MarkReadResultSerializer, **errors(400, 409, 415, 422)},
        tags=["notifications"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        membership = self.membership
        serializer = MarkReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marked = notifications.mark_read(
            membership.user, membership.workspace, serializer.validated_data.get("ids")
        )
        unread = notifications.unread_count(membership.user, membership.workspace)
        return Response({"marked": marked, "unread": unread})
