"""/api/v1/: the REST API, its OpenAPI schema and the (offline) Swagger UI."""

from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import channels, me, media, posts, queue, team, webhooks
from .base import unknown_path

app_name = "api"

urlpatterns = [
    path("me", me.MeView.as_view(), name="me"),
    path("channels", channels.ChannelListView.as_view(), name="channels"),
    path("channels/<int:pk>", channels.ChannelDetailView.as_view(), name="channel"),
    path("channels/<int:pk>/schedule", queue.ScheduleView.as_view(), name="schedule"),
    path("channels/<int:pk>/queue", queue.QueueView.as_view(), name="queue"),
    path("channels/<int:pk>/queue/reorder", queue.QueueReorderView.as_view(), name="queue_reorder"),
    path("channels/<int:pk>/queue/shuffle", queue.QueueShuffleView.as_view(), name="queue_shuffle"),
    path("media", media.MediaListView.as_view(), name="media"),
    path("media/<int:pk>", media.MediaDetailView.as_view(), name="media_item"),
    path("posts", posts.PostListView.as_view(), name="posts"),
    path("posts/<int:pk>", posts.PostDetailView.as_view(), name="post"),
    path("posts/<int:pk>/share-now", posts.ShareNowView.as_view(), name="share_now"),
    path("posts/<int:pk>/approve", team.ApproveView.as_view(), name="approve"),
    path("posts/<int:pk>/reject", team.RejectView.as_view(), name="reject"),
    path("posts/<int:pk>/comments", team.CommentListView.as_view(), name="comments"),
    path("activity", team.ActivityListView.as_view(), name="activity"),
    path("notifications", team.NotificationListView.as_view(), name="notifications"),
    path("notifications/read", team.NotificationReadView.as_view(), name="notifications_read"),
    path("deliveries/<int:pk>", posts.DeliveryDetailView.as_view(), name="delivery"),
    path("deliveries/<int:pk>/retry", posts.DeliveryRetryView.as_view(), name="delivery_retry"),
    path("webhooks", webhooks.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>", webhooks.WebhookDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<int:pk>/deliveries",
        webhooks.WebhookDeliveryListView.as_view(),
        name="webhook_deliveries",
    ),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    # The split view serves its start-up script as a file (no inline <script>); the page keeps
    # one small inline <style> block.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema")
        ),
        name="docs",
    ),
    re_path(r"^[\s\S]*$", unknown_path),
]
