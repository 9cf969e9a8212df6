"""Notifications (in the app and by email through a real SMTP server), comments with mentions,
and the activity log, over the workflows and the API."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Notification, NotificationKind, Role
from config.celery import app as celery_app
from scheduler.compose import PartInput, update_post
from scheduler.models import Activity
from scheduler.team_views import REVIEW_PAGE
from tests.conftest import add_member, schedule, tick_and_publish
from tests.fixtures.api import API, bearer_client
from tests.fixtures.mail import body

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def contributor(workspace):
    return add_member(workspace, "carol@example.com", Role.CONTRIBUTOR)


# -- notifications -----------------------------------------------------------------------------------
def test_approvers_are_emailed_as_they_chose(
    workspace,
    contributor,
    mastodon_channel,
    smtp_server,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    editor = add_member(workspace, "ed@example.com", Role.EDITOR)
    editor.user.email_notifications = [NotificationKind.MENTIONED]
    editor.user.save()

    with django_capture_on_commit_callbacks(execute=True):
        post = schedule(contributor, [mastodon_channel], "Launch day")

    (message,) = smtp_server.wait_for("alice@example.com")
    assert str(message["Subject"]).strip() == (
        "[Herald] carol@example.com asks you to approve “Launch day”."
    )
    assert f"http://testserver/posts/{post.pk}/" in body(message)
    assert "Choose which emails you get" in body(message)
    # In the app both are told; by email only the one who wants it.
    assert set(Notification.objects.values_list("user__email", flat=True)) == {
        "alice@example.com",
        "ed@example.com",
    }
    assert smtp_server.to("ed@example.com") == []
    assert Notification.objects.get(user__email="alice@example.com").emailed_at is not None


def test_failed_delivery_notifies_its_author_and_is_logged(
    membership,
    mastodon_channel,
    fake_mastodon,
    smtp_server,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", status=422, body={"error": "Too long"})
    post = schedule(membership, [mastodon_channel], "Doomed")

    with django_capture_on_commit_callbacks(execute=True):
        assert tick_and_publish() == ["failed"]

    note = Notification.objects.get(kind=NotificationKind.DELIVERY_FAILED)
    assert note.user == membership.user
    assert "“Doomed” failed to publish on @alice@" in note.text
    assert "Too long" in note.text
    assert note.link == f"/posts/{post.pk}/"
    (message,) = smtp_server.wait_for("alice@example.com")
    assert "failed to publish" in str(message["Subject"])
    entry = Activity.objects.get(verb="failed")
    assert (entry.actor, entry.post, entry.channel) == (None, post, mastodon_channel)
    assert "Too long" in entry.changes["error"]


def test_channel_needing_reconnect_notifies_owners_and_admins(
    workspace, membership, mastodon_channel, django_capture_on_commit_callbacks
):
    add_member(workspace, "admin@example.com", Role.ADMIN)
    add_member(workspace, "ed@example.com", Role.EDITOR)

    with django_capture_on_commit_callbacks(execute=True):
        mastodon_channel.mark_needs_reconnect("The token was revoked.")

    notified = Notification.objects.filter(kind=NotificationKind.CHANNEL_NEEDS_RECONNECT)
    assert sorted(n.user.email for n in notified) == ["admin@example.com", "alice@example.com"]
    assert "needs reconnecting: The token was revoked." in notified[0].text
    assert Activity.objects.filter(verb="needs_reconnect", channel=mastodon_channel).exists()


def test_notifications_api_lists_and_marks_read(membership, contributor, mastodon_channel):
    schedule(contributor, [mastodon_channel], "one")
    schedule(contributor, [mastodon_channel], "two")
    api = bearer_client(membership)

    listed = api.get(f"{API}/notifications").json()["results"]
    assert [n["kind"] for n in listed] == ["approval_requested"] * 2
    assert listed[0]["read_at"] is None
    one = api.post(f"{API}/notifications/read", {"ids": [listed[0]["id"]]}, format="json").json()
    rest = api.post(f"{API}/notifications/read", {}, format="json").json()

    assert (one, rest) == ({"marked": 1, "unread": 1}, {"marked": 1, "unread": 0})
    assert bearer_client(contributor).get(f"{API}/notifications").json()["results"] == []


def test_marking_one_read_in_place_returns_it_and_refreshes_the_bell(
    client, membership, contributor, mastodon_channel
):
    schedule(contributor, [mastodon_channel], "one")
    note = Notification.objects.get(user=membership.user)
    client.force_login(membership.user)

    response = client.post("/notifications/read/", {"id": note.pk}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert response["HX-Trigger"] == "notifications-changed"
    assert f'id="notification-{note.pk}"' in response.content.decode()
    assert "Mark read" not in response.content.decode()
    note.refresh_from_db()
    assert note.read_at is not None
    assert "none unread" in client.get("/notifications/bell/").content.decode()


# -- review queue --------------------------------------------------------------------------------------
def _submit_pending(contributor, channel, count: int) -> list[Any]:
    """`count` posts of the contributor awaiting approval, oldest first."""
    later = timezone.now() + timedelta(days=1)
    return [
        schedule(contributor, [channel], f"Pending post {n:02d}.", at=later) for n in range(count)
    ]


def _review_items(html: str) -> list[str]:
    return re.findall(r"Pending post (\d\d)\.", html)


def test_review_queue_shows_the_oldest_first_in_pages_and_how_many_await(
    client, membership, contributor, mastodon_channel
):
    _submit_pending(contributor, mastodon_channel, REVIEW_PAGE + 5)
    client.force_login(membership.user)

    first = client.get("/review/").content.decode()
    second = client.get("/review/", {"page": 2}).content.decode()

    assert _review_items(first) == [f"{n:02d}" for n in range(REVIEW_PAGE)]
    assert _review_items(second) == [f"{n:02d}" for n in range(REVIEW_PAGE, REVIEW_PAGE + 5)]
    total = REVIEW_PAGE + 5
    assert f"{total} posts await approval, oldest first; showing 1\u2013{REVIEW_PAGE}." in first
    assert f"showing {REVIEW_PAGE + 1}\u2013{total}." in second
    assert f'<span class="nav-badge">{total}</span>' in second
    assert '<a href="?page=2">Newer</a>' in first and '<a href="?page=1">Older</a>' in second
    assert "Page 2 of 2" in second


def test_approving_or_rejecting_from_a_later_page_returns_to_a_valid_page(
    client, membership, contributor, mastodon_channel
):
    posts = _submit_pending(contributor, mastodon_channel, REVIEW_PAGE + 2)
    client.force_login(membership.user)
    page = client.get("/review/", {"page": 2}).content.decode()
    (back,) = set(re.findall(r'name="next" value="([^"]+)"', page))
    assert back == "/review/?page=2"

    approved = client.post(f"/posts/{posts[-1].pk}/approve/", {"next": back}, follow=True)
    assert approved.redirect_chain == [("/review/?page=2", 302)]
    assert _review_items(approved.content.decode()) == [f"{REVIEW_PAGE:02d}"]
    assert "Approved: the post is scheduled." in approved.content.decode()

    # The last one on page 2 leaves it: page 2 no longer exists, the last page is shown.
    data = {"next": back, "reason": "Not yet"}
    rejected = client.post(f"/posts/{posts[-2].pk}/reject/", data, follow=True)
    assert rejected.redirect_chain == [("/review/?page=2", 302)]
    html = rejected.content.decode()
    assert _review_items(html) == [f"{n:02d}" for n in range(REVIEW_PAGE)]
    assert "Rejected: the post went back to its author as a draft." in html
    assert f"{REVIEW_PAGE} posts await approval" in html and "Page 2" not in html


# -- comments ------------------------------------------------------------------------------------------
def test_comment_mentions_notify_members_named(
    workspace, membership, contributor, mastodon_channel
):
    add_member(workspace, "carol@other.example", Role.VIEWER)  # a second "carol"
    add_member(workspace, "dave@example.com", Role.EDITOR)
    post = schedule(membership, [mastodon_channel], "Hello")
    api = bearer_client(membership)

    response = api.post(
        f"{API}/posts/{post.pk}/comments",
        {"text": "@dave and @carol@example.com, also @carol and @nobody: thoughts?"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert sorted(m["email"] for m in response.json()["mentions"]) == [
        "carol@example.com",
        "dave@example.com",
    ]
    mentioned = Notification.objects.filter(kind=NotificationKind.MENTIONED)
    assert sorted(n.user.email for n in mentioned) == ["carol@example.com", "dave@example.com"]
    assert mentioned[0].link.endswith(f"#comment-{response.json()['id']}")
    listed = api.get(f"{API}/posts/{post.pk}/comments").json()
    assert [c["text"] for c in listed] == [response.json()["text"]]


def test_viewers_cannot_comment_and_empty_comments_are_refused(
    workspace, membership, mastodon_channel
):
    viewer = bearer_client(add_member(workspace, "vic@example.com", Role.VIEWER))
    post = schedule(membership, [mastodon_channel], "Hello")

    assert (
        viewer.post(f"{API}/posts/{post.pk}/comments", {"text": "hi"}, format="json").status_code
        == 403
    )
    blank = bearer_client(membership).post(
        f"{API}/posts/{post.pk}/comments", {"text": "   "}, format="json"
    )
    assert blank.status_code == 400


# -- activity ------------------------------------------------------------------------------------------
def test_edits_record_what_changed(membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "Helo", at=None)
    update_post(membership, post, parts=[PartInput("Hello")], tags=["launch"])

    entry = Activity.objects.get(verb="edited")
    assert entry.changes["fields"] == ["text", "tags"]
    assert entry.changes["text"] == {"from": "Helo", "to": "Hello"}
    assert entry.actor == membership.user


def test_activity_api_filters_pages_and_stays_in_its_workspace(
    membership, contributor, mastodon_channel, bob_api, django_assert_max_num_queries
):
    posts = [schedule(contributor, [mastodon_channel], f"post {n}") for n in range(4)]
    api = bearer_client(membership)

    with django_assert_max_num_queries(8):
        first = api.get(f"{API}/activity", {"limit": 3}).json()
    second = api.get(first["next"]).json()
    submitted = api.get(f"{API}/activity", {"verb": "submitted"}).json()["results"]
    by_alice = api.get(f"{API}/activity", {"actor": membership.user_id}).json()["results"]

    assert len(first["results"]) == 3
    assert first["results"][0]["summary"] == (
        f"carol@example.com submitted for approval post {posts[-1].pk}"
    )
    assert {e["id"] for e in first["results"]}.isdisjoint(e["id"] for e in second["results"])
    assert [e["verb"] for e in submitted] == ["submitted"] * 4
    assert all(e["actor"]["email"] == "carol@example.com" for e in submitted)
    assert by_alice == []
    assert bob_api.get(f"{API}/activity").json()["results"] == []
    bad = api.get(f"{API}/activity", {"verb": "liked"})
    assert bad.status_code == 400


def test_activity_page_filters_pages_and_shows_the_readers_time_zone(client, membership):
    from scheduler.models import ActivityVerb

    Activity.objects.bulk_create(
        Activity(workspace=membership.workspace, actor=membership.user, verb=verb)
        for verb in [ActivityVerb.SUBMITTED] * 55 + [ActivityVerb.APPROVED] * 3
    )
    membership.user.timezone = "Asia/Tokyo"
    membership.user.save()
    client.force_login(membership.user)

    page = client.get("/activity/", {"verb": "submitted"}).content.decode()

    assert page.count("submitted for approval") == 50 + 1  # entries, and the filter's option
    assert "?verb=submitted&amp;page=2" in page
    assert "JST" in page and "Times in Asia/Tokyo." in page
    assert (
        client.get("/activity/", {"verb": "submitted", "page": 2})
        .content.decode()
        .count("submitted for approval")
        == 5 + 1
    )


def test_contributor_moving_an_approved_post_on_the_calendar_needs_a_new_approval(
    membership, contributor, mastodon_channel, fake_mastodon
):
    from datetime import timedelta

    from django.utils import timezone

    from scheduler import approvals
    from scheduler import calendar as cal
    from scheduler.models import DeliveryStatus, PostStatus

    post = schedule(contributor, [mastodon_channel], "Moved", at=timezone.now() + timedelta(days=1))
    approvals.approve_post(membership, post)
    delivery = post.deliveries.get()

    cal.reschedule_delivery(contributor, delivery.pk, at=timezone.now() + timedelta(seconds=2))

    post.refresh_from_db()
    delivery.refresh_from_db()
    assert (post.status, delivery.status) == (PostStatus.PENDING_APPROVAL, DeliveryStatus.HELD)
    assert tick_and_publish(timezone.now() + timedelta(seconds=5)) == []
    assert fake_mastodon.statuses == []
    cal.reschedule_delivery(membership, delivery.pk, at=timezone.now() + timedelta(hours=1))
    post.refresh_from_db()
    assert post.status == PostStatus.PENDING_APPROVAL  # an editor's move is no approval
