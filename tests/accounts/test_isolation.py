"""A user of one workspace can read or change nothing of another workspace."""

from __future__ import annotations

import pytest

from scheduler.models import Channel, DeliveryStatus, Post
from tests.conftest import PASSWORD, make_mastodon_channel, schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_post(membership, fake_mastodon):
    channel = make_mastodon_channel(membership.workspace, fake_mastodon)
    return schedule(membership, [channel], "Acme secret plans")


@pytest.fixture
def bob_client(client, bob):
    client.login(email=bob.email, password=PASSWORD)
    return client


def test_other_workspace_sees_none_of_acmes_rows_in_querysets(acme_post, other_workspace):
    assert not Post.objects.for_workspace(other_workspace).exists()
    assert not Channel.objects.for_workspace(other_workspace).exists()


def test_dashboard_shows_only_own_workspace(bob_client, acme_post):
    page = bob_client.get("/").content.decode()
    assert "Acme secret plans" not in page
    assert "@alice@" not in page


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/posts/{post}/"),
        ("post", "/posts/{post}/cancel/"),
        ("post", "/deliveries/{delivery}/retry/"),
        ("post", "/channels/{channel}/pause/"),
        ("post", "/channels/{channel}/verify/"),
    ],
)
def test_object_urls_of_another_workspace_answer_404_and_change_nothing(
    bob_client, acme_post, method, path, bob
):
    from accounts.models import Membership, Role

    Membership.objects.filter(user=bob).update(role=Role.OWNER)
    delivery = acme_post.deliveries.get()
    url = path.format(post=acme_post.pk, delivery=delivery.pk, channel=delivery.channel_id)

    response = getattr(bob_client, method)(url)

    assert response.status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SCHEDULED
    assert Channel.objects.get(pk=delivery.channel_id).status == "active"


def test_compose_cannot_target_another_workspaces_channel(bob_client, acme_post):
    channel_id = acme_post.deliveries.get().channel_id
    response = bob_client.post(
        "/compose/", {"channels": [channel_id], "text": "hijack", "when": "now"}
    )
    assert response.status_code == 400
    assert Post.objects.count() == 1
