from django.urls import path

from . import bluesky_views, public_media, team_views, threads_views, views

app_name = "scheduler"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("compose/", views.compose_view, name="compose"),
    path("posts/<int:pk>/", views.post_detail, name="post_detail"),
    path("posts/<int:pk>/cancel/", views.cancel_post, name="cancel_post"),
    path("deliveries/<int:pk>/retry/", views.retry_delivery, name="retry_delivery"),
    path("channels/mastodon/connect/", views.connect_mastodon, name="connect_mastodon"),
    path("channels/mastodon/callback/", views.mastodon_callback, name="mastodon_callback"),
    path("channels/bluesky/connect/", bluesky_views.connect_bluesky_view, name="connect_bluesky"),
    path("channels/threads/connect/", threads_views.connect_threads, name="connect_threads"),
    path("channels/threads/callback/", threads_views.threads_callback, name="threads_callback"),
    path(
        "public/media/<str:token>/<str:filename>",
        public_media.serve_public_media,
        name="public_media",
    ),
    path("review/", team_views.review_queue, name="review"),
    path("posts/<int:pk>/approve/", team_views.approve, name="approve_post"),
    path("posts/<int:pk>/reject/", team_views.reject, name="reject_post"),
    path("posts/<int:pk>/comments/", team_views.add_comment, name="add_comment"),
    path("activity/", team_views.activity_log, name="activity"),
    path("notifications/", team_views.notification_list, name="notifications"),
    path("notifications/read/", team_views.mark_read, name="mark_read"),
    path("notifications/bell/", team_views.bell, name="bell"),
    path(
        "channels/<int:pk>/<str:action>/",
        views.channel_action,
        name="channel_action",
    ),
]
