from django.urls import include, path

from . import calendar_views, compose_views, post_views, public_media, team_views, views
from .networks import entries

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
    # Each network's connect pages, from the registry: /channels/<key>/connect/ and so on.
    *(path(f"channels/{entry.key}/", include(entry.urlpatterns)) for entry in entries()),
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
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    path("calendar/move/", calendar_views.calendar_move, name="calendar_move"),
    path("calendar/subscribe/", calendar_views.feed_settings, name="feed_settings"),
    path("calendar/feed/<str:token>.ics", calendar_views.calendar_feed, name="calendar_feed"),
    path("queue/", calendar_views.queue_index, name="queue_index"),
    path("queue/<int:pk>/", calendar_views.queue_page, name="queue"),
    path("queue/<int:pk>/<str:action>/", calendar_views.queue_action, name="queue_action"),
    path("schedule/<int:pk>/", calendar_views.schedule_page, name="schedule"),
]
