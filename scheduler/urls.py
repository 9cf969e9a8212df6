from django.urls import path

from . import bluesky_views, compose_views, post_views, public_media, threads_views, views

app_name = "scheduler"

urlpatterns = [
    path("", post_views.post_list, name="dashboard"),
    path("posts/bulk/", post_views.bulk_action, name="bulk_action"),
    path("posts/<int:pk>/", post_views.post_detail, name="post_detail"),
    path("posts/<int:pk>/cancel/", post_views.cancel_post, name="cancel_post"),
    path("posts/<int:pk>/duplicate/", post_views.duplicate_post, name="duplicate_post"),
    path("posts/<int:pk>/reschedule/", post_views.reschedule_post, name="reschedule_post"),
    path("posts/<int:pk>/share-now/", post_views.share_post_now, name="share_post_now"),
    path("posts/<int:pk>/edit/", compose_views.edit_post, name="edit_post"),
    path("deliveries/<int:pk>/retry/", post_views.retry_delivery, name="retry_delivery"),
    path("compose/", compose_views.compose_post, name="compose"),
    path("compose/check/", compose_views.check, name="compose_check"),
    path("compose/autosave/", compose_views.autosave, name="compose_autosave"),
    path("compose/link-card/", compose_views.link_card, name="link_card"),
    path("media/upload/", compose_views.upload_media, name="upload_media"),
    path("media/<int:pk>/", compose_views.media_file, name="media_file"),
    path("channels/", views.channels_view, name="channels"),
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
    path(
        "channels/<int:pk>/<str:action>/",
        views.channel_action,
        name="channel_action",
    ),
]
