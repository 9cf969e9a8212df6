"""Who may cancel which post: one rule on Membership, the same answer on the web and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from scheduler.models import Delivery, DeliveryStatus, PostStatus
from tests.conftest import PASSWORD, add_member, schedule, tick_and_publish
from tests.fixtures.api import API, bearer_client

pytestmark = pytest.mark.django_db


def later():
    return timezone.now() + timedelta(days=1)


def cancel_on_web(membership, post) -> int:
    client = Client()
    client.login(email=membership.user.email, password=PASSWORD)
    return client.post(f"/posts/{post.pk}/cancel/").status_code


def cancel_over_api(membership, post) -> int:
    return bearer_client(membership).delete(f"{API}/posts/{post.pk}").status_code


CANCELLERS = [cancel_on_web, cancel_over_api]


@pytest.mark.parametrize("cancel", CANCELLERS)
def test_contributor_cannot_cancel_someone_elses_post(
    cancel, membership, workspace, mastodon_channel
):
    owners_post = schedule(membership, [mastodon_channel], "the owner's", at=later())
    contributor = add_member(workspace, "carol@example.com", Role.CONTRIBUTOR)

    assert cancel(contributor, owners_post) == 403

    owners_post.refresh_from_db()
    assert owners_post.status == PostStatus.SCHEDULED
    assert Delivery.objects.get(post=owners_post).status == DeliveryStatus.SCHEDULED


@pytest.mark.parametrize("cancel", CANCELLERS)
def test_contributor_cancels_their_own_unpublished_post(cancel, workspace, mastodon_channel):
    contributor = add_member(workspace, "carol@example.com", Role.CONTRIBUTOR)
    own = schedule(contributor, [mastodon_channel], "mine", at=later())

    assert cancel(contributor, own) in (200, 302)

    own.refresh_from_db()
    assert own.status == PostStatus.CANCELLED


@pytest.mark.parametrize("cancel", CANCELLERS)
def test_contributor_cannot_cancel_their_post_once_published(
    cancel, membership, workspace, mastodon_channel, fake_mastodon
):
    contributor = add_member(workspace, "carol@example.com", Role.CONTRIBUTOR)
    own = schedule(membership, [mastodon_channel], "mine")
    assert tick_and_publish() == ["published"]
    type(own).objects.filter(pk=own.pk).update(author=contributor.user)  # as if approved

    assert cancel(contributor, own) == 403
    assert cancel(membership, own) in (200, 302)  # the owner may: published parts stay


@pytest.mark.parametrize("cancel", CANCELLERS)
def test_viewer_cannot_cancel_and_editor_cancels_any(
    cancel, membership, workspace, mastodon_channel
):
    post = schedule(membership, [mastodon_channel], "x", at=later())
    viewer = add_member(workspace, "vic@example.com", Role.VIEWER)
    editor = add_member(workspace, "ed@example.com", Role.EDITOR)

    assert cancel(viewer, post) == 403
    assert cancel(editor, post) in (200, 302)
    post.refresh_from_db()
    assert post.status == PostStatus.CANCELLED
