"""One overall status per post, computed from its deliveries, worded the same everywhere."""

from __future__ import annotations

import pytest

from scheduler.models import Channel, Delivery, Post, PostStatus
from scheduler.overview import OverallStatus, delivery_status, overall_status, with_overview

pytestmark = pytest.mark.django_db

S = OverallStatus


@pytest.mark.parametrize(
    ("post_status", "deliveries", "expected"),
    [
        ("draft", [("held", True)], S.DRAFT),
        ("pending_approval", [("held", True), ("held", True)], S.PENDING_APPROVAL),
        ("scheduled", [("scheduled", False), ("scheduled", False)], S.QUEUED),
        ("scheduled", [("scheduled", True), ("scheduled", False)], S.SCHEDULED),
        ("scheduled", [("publishing", True), ("published", True)], S.PUBLISHING),
        ("scheduled", [("published", True), ("published", True)], S.PUBLISHED),
        ("scheduled", [("published", True), ("failed", True)], S.PARTLY_PUBLISHED),
        ("scheduled", [("published", True), ("scheduled", True)], S.PARTLY_PUBLISHED),
        ("scheduled", [("failed", True), ("missed", True)], S.FAILED),
        ("scheduled", [("missed", True), ("cancelled", True)], S.MISSED),
        ("cancelled", [("cancelled", True), ("cancelled", True)], S.CANCELLED),
    ],
)
def test_overall_status_follows_the_deliveries(
    workspace, mastodon_channel, post_status, deliveries, expected
):
    post = Post.objects.create(workspace=workspace, status=post_status)
    for n, (status, pinned) in enumerate(deliveries):
        channel = mastodon_channel if n == 0 else _other_channel(workspace, n)
        Delivery.objects.create(
            workspace=workspace, post=post, channel=channel, status=status, pinned=pinned
        )

    assert overall_status(post) == expected
    listed = with_overview(Post.objects.filter(pk=post.pk)).filter(overall=expected.value)
    assert listed.exists()  # the list filters by the same expression


def test_a_delivery_is_worded_like_its_post(workspace, mastodon_channel):
    post = Post.objects.create(workspace=workspace, status=PostStatus.PENDING_APPROVAL)
    held = Delivery(post=post, channel=mastodon_channel, status="held")
    queued = Delivery(post=post, channel=mastodon_channel, status="scheduled", pinned=False)

    assert delivery_status(held, post) == S.PENDING_APPROVAL
    assert delivery_status(queued, post) == S.QUEUED
    assert str(S.PARTLY_PUBLISHED.label) == "Partly published"


def _other_channel(workspace, n):  # type: ignore[no-untyped-def]
    return Channel.objects.create(
        workspace=workspace,
        network="bluesky",
        server_url="https://pds.example",
        remote_id=f"did:plc:{n}",
        handle=f"other{n}.example",
    )
