"""A post's overall status, computed from its deliveries in one place, worded the same everywhere.

The rule is one SQL expression (`with_overview`), so the post list can filter and count by it and
every page reads the same annotation: first match wins.

    post is a draft                               -> Draft
    post awaits approval                          -> Pending approval
    a delivery is publishing                      -> Publishing
    every delivery published                      -> Published
    some published (others failed/waiting/...)    -> Partly published
    every waiting delivery is on a queue          -> Queued
    some delivery waits for its time              -> Scheduled
    a delivery failed                             -> Failed
    a delivery was missed                         -> Missed
    otherwise (everything cancelled)              -> Cancelled
"""

from __future__ import annotations

from django.db import models
from django.db.models import Case, Count, F, Min, Q, QuerySet, Value, When

from . import states
from .models import Delivery, DeliveryStatus, Post, PostStatus


class OverallStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    QUEUED = "queued", "Queued"
    SCHEDULED = "scheduled", "Scheduled"
    PUBLISHING = "publishing", "Publishing"
    PUBLISHED = "published", "Published"
    PARTLY_PUBLISHED = "partly_published", "Partly published"
    FAILED = "failed", "Failed"
    MISSED = "missed", "Missed"
    CANCELLED = "cancelled", "Cancelled"


_WAITING = states.CHANGEABLE  # not started yet


def _count(**where: object) -> Count:
    return Count("deliveries", filter=Q(**{f"deliveries__{k}": v for k, v in where.items()}))


def with_overview(posts: QuerySet[Post]) -> QuerySet[Post]:
    """Annotate `overall` (an OverallStatus value) and `due` (the earliest delivery time).

    Filter the deliveries through Exists subqueries, not joins, or the counts would multiply.
    """
    counted = posts.annotate(
        n_total=Count("deliveries"),
        n_publishing=_count(status=DeliveryStatus.PUBLISHING),
        n_published=_count(status=DeliveryStatus.PUBLISHED),
        n_waiting=_count(status__in=_WAITING),
        n_waiting_queued=_count(status__in=_WAITING, pinned=False),
        n_failed=_count(status=DeliveryStatus.FAILED),
        n_missed=_count(status=DeliveryStatus.MISSED),
        due=Min("deliveries__due_at"),
    )
    S = OverallStatus
    return counted.annotate(
        overall=Case(
            When(status=PostStatus.DRAFT, then=Value(S.DRAFT)),
            When(status=PostStatus.PENDING_APPROVAL, then=Value(S.PENDING_APPROVAL)),
            When(n_publishing__gt=0, then=Value(S.PUBLISHING)),
            When(n_total__gt=0, n_published=F("n_total"), then=Value(S.PUBLISHED)),
            When(n_published__gt=0, then=Value(S.PARTLY_PUBLISHED)),
            When(n_waiting__gt=0, n_waiting_queued=F("n_waiting"), then=Value(S.QUEUED)),
            When(n_waiting__gt=0, then=Value(S.SCHEDULED)),
            When(n_failed__gt=0, then=Value(S.FAILED)),
            When(n_missed__gt=0, then=Value(S.MISSED)),
            default=Value(S.CANCELLED),
            output_field=models.CharField(),
        )
    )


def overall_status(post: Post) -> OverallStatus:
    """The overall status of one saved post (one query; lists use `with_overview`)."""
    annotated = with_overview(Post.objects.filter(pk=post.pk)).get()
    return OverallStatus(annotated.overall)  # type: ignore[attr-defined]


def delivery_status(delivery: Delivery, post: Post) -> OverallStatus:
    """One channel's status in the same words: a held delivery is its post's Draft or Pending
    approval, a scheduled one on a queue is Queued."""
    if delivery.status == DeliveryStatus.HELD:
        return S_HELD.get(str(post.status), OverallStatus.DRAFT)
    if delivery.status == DeliveryStatus.SCHEDULED and not delivery.pinned:
        return OverallStatus.QUEUED
    return OverallStatus(delivery.status)


S_HELD: dict[str, OverallStatus] = {
    PostStatus.DRAFT: OverallStatus.DRAFT,
    PostStatus.PENDING_APPROVAL: OverallStatus.PENDING_APPROVAL,
    PostStatus.CANCELLED: OverallStatus.CANCELLED,
}
