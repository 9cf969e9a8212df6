from django.urls import include, path

from . import public_media, views
from .networks import entries

app_name = "scheduler"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("compose/", views.compose_view, name="compose"),
    path("channels/", views.channels_view, name="channels"),
    path("posts/<int:pk>/", views.post_detail, name="post_detail"),
    path("posts/<int:pk>/cancel/", views.cancel_post, name="cancel_post"),
    path("deliveries/<int:pk>/retry/", views.retry_delivery, name="retry_delivery"),
    # Each network's connect pages, from the registry: /channels/<key>/connect/ and so on.
    *(path(f"channels/{entry.key}/", include(entry.urlpatterns)) for entry in entries()),
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
