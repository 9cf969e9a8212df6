"""Approvals over the API: who may approve or reject, what each does to the post and to the
network, the approval history on the post, and the post.* webhooks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership, Notification, NotificationKind, Role
from scheduler import webhooks
from scheduler.models import Delivery, Media, WebhookDelivery
from tests.conftest import add_member, tick_and_publish
from tests.fixtures.api import API, bearer_client

pytestmark = pytest.mark.django_db


EVERY_ROLE = pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.OWNER, True),
        (Role.ADMIN, True),
        (Role.EDITOR, True),
        (Role.CONTRIBUTOR, False),
        (Role.VIEWER, False),
    ],
)


@pytest.fixture
def team(workspace, membership):
    """role -> (membership, write client); the owner is Alice."""
    people = {Role.OWNER: (membership, bearer_client(membership))}
    for role in (Role.ADMIN, Role.EDITOR, Role.CONTRIBUTOR, Role.VIEWER):
        member = add_member(workspace, f"{role}@example.com", role)
        people[role] = (member, bearer_client(member))
    return people


def submit(team, channel, text="Please approve", **body):
    _, contributor = team[Role.CONTRIBUTOR]
    body = {"channels": [channel.pk], "text": text, "when": "now", **body}
    response = contributor.post(f"{API}/posts", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending_approval"
    return response.json()


@EVERY_ROLE
def test_approve_with_every_role(team, role, allowed, mastodon_channel, fake_mastodon):
    post = submit(team, mastodon_channel)
    member, client = team[role]

    response = client.post(f"{API}/posts/{post['id']}/approve")

    if not allowed:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert tick_and_publish() == []
        assert fake_mastodon.statuses == []
        return
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["deliveries"][0]["status"] == "scheduled"
    assert body["approval"]["state"] == "approved"
    assert [(e["action"], e["actor"]["email"]) for e in body["approval"]["history"]] == [
        ("submitted", "contributor@example.com"),
        ("approved", member.user.email),
    ]
    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["Please approve"]


@EVERY_ROLE
def test_reject_with_every_role(team, role, allowed, mastodon_channel, fake_mastodon):
    post = submit(team, mastodon_channel)
    _, client = team[role]

    response = client.post(
        f"{API}/posts/{post['id']}/reject", {"reason": "Add the link"}, format="json"
    )

    if not allowed:
        assert response.status_code == 403
        return
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["deliveries"][0]["status"]) == ("draft", "held")
    assert body["approval"]["state"] == "rejected"
    assert body["approval"]["history"][-1]["reason"] == "Add the link"
    assert tick_and_publish() == []
    assert fake_mastodon.statuses == []
    contributor = team[Role.CONTRIBUTOR][0].user
    (note,) = Notification.objects.filter(user=contributor)
    assert note.kind == NotificationKind.POST_REVIEWED
    assert "Add the link" in note.text
    assert note.link == f"/posts/{post['id']}/"


def test_approve_at_a_new_time_schedules_it_then(team, mastodon_channel, fake_mastodon):
    post = submit(team, mastodon_channel)
    _, editor = team[Role.EDITOR]

    response = editor.post(
        f"{API}/posts/{post['id']}/approve",
        {"scheduled_at": "2030-05-01T09:30:00+02:00"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    delivery = response.json()["deliveries"][0]
    assert (delivery["status"], delivery["due_at"]) == ("scheduled", "2030-05-01T07:30:00Z")
    assert tick_and_publish() == []


def test_approve_in_the_past_or_twice_is_refused(team, mastodon_channel):
    post = submit(team, mastodon_channel)
    _, editor = team[Role.EDITOR]
    past = (timezone.now() - timedelta(hours=1)).isoformat()

    too_late = editor.post(
        f"{API}/posts/{post['id']}/approve", {"scheduled_at": past}, format="json"
    )
    first = editor.post(f"{API}/posts/{post['id']}/approve")
    again = editor.post(f"{API}/posts/{post['id']}/approve")
    reject_after = editor.post(f"{API}/posts/{post['id']}/reject", {"reason": "x"}, format="json")

    assert too_late.status_code == 400
    assert "scheduled_at" in too_late.json()["error"]["details"]["fields"]
    assert first.status_code == 200
    assert again.status_code == reject_after.status_code == 409
    assert "not awaiting approval" in again.json()["error"]["message"]


def test_reject_needs_a_reason(team, mastodon_channel):
    post = submit(team, mastodon_channel)
    _, editor = team[Role.EDITOR]

    missing = editor.post(f"{API}/posts/{post['id']}/reject", {}, format="json")
    blank = editor.post(f"{API}/posts/{post['id']}/reject", {"reason": "   "}, format="json")

    assert missing.status_code == blank.status_code == 400
    assert "reason" in blank.json()["error"]["details"]["fields"]
    assert editor.get(f"{API}/posts/{post['id']}").json()["status"] == "pending_approval"


def test_another_workspace_cannot_approve(team, bob_api, mastodon_channel):
    post = submit(team, mastodon_channel)

    assert bob_api.post(f"{API}/posts/{post['id']}/approve").status_code == 404


def test_owner_edits_a_pending_post_then_approves_and_shares_it_now(
    team, mastodon_channel, fake_mastodon
):
    post = submit(team, mastodon_channel, when="at", scheduled_at="2030-01-01T10:00:00Z")
    _, owner = team[Role.OWNER]

    edited = owner.patch(f"{API}/posts/{post['id']}", {"text": "Polished"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["post"]["status"] == "pending_approval"
    assert owner.post(f"{API}/posts/{post['id']}/share-now").status_code == 409

    assert owner.post(f"{API}/posts/{post['id']}/approve").status_code == 200
    shared = owner.post(f"{API}/posts/{post['id']}/share-now")

    assert shared.status_code == 200, shared.json()
    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["Polished"]


def test_contributors_edit_of_an_approved_post_goes_back_to_review(
    team, mastodon_channel, fake_mastodon
):
    post = submit(team, mastodon_channel, when="at", scheduled_at="2030-01-01T10:00:00Z")
    _, editor = team[Role.EDITOR]
    _, contributor = team[Role.CONTRIBUTOR]
    assert editor.post(f"{API}/posts/{post['id']}/approve").status_code == 200

    edited = contributor.patch(
        f"{API}/posts/{post['id']}", {"text": "Sneaky change", "when": "now"}, format="json"
    )

    assert edited.status_code == 200
    body = edited.json()["post"]
    assert (body["status"], body["deliveries"][0]["status"]) == ("pending_approval", "held")
    assert body["approval"]["state"] == "pending"
    assert tick_and_publish() == []
    assert fake_mastodon.statuses == []
    # Only a new approval lets the changed text out.
    assert editor.post(f"{API}/posts/{post['id']}/approve").status_code == 200
    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["Sneaky change"]


def test_contributors_new_media_or_time_also_needs_a_new_approval(
    team, mastodon_channel, fake_mastodon
):
    post = submit(team, mastodon_channel, when="at", scheduled_at="2030-01-01T10:00:00Z")
    _, editor = team[Role.EDITOR]
    contributor_member, contributor = team[Role.CONTRIBUTOR]
    assert editor.post(f"{API}/posts/{post['id']}/approve").status_code == 200
    from tests.conftest import upload_media

    media = upload_media(contributor_member, alt_text="A chart")

    with_media = contributor.patch(
        f"{API}/posts/{post['id']}",
        {"parts": [{"text": "Please approve", "media": [media.pk]}]},
        format="json",
    )
    assert with_media.json()["post"]["status"] == "pending_approval"
    assert editor.post(f"{API}/posts/{post['id']}/approve").status_code == 200
    moved = contributor.patch(f"{API}/posts/{post['id']}", {"when": "now"}, format="json")

    assert moved.json()["post"]["status"] == "pending_approval"
    assert tick_and_publish() == []
    assert Media.objects.filter(pk=media.pk).exists()


def test_submission_notifies_approvers_but_not_the_author(team, mastodon_channel):
    post = submit(team, mastodon_channel)

    notified = set(
        Notification.objects.filter(kind=NotificationKind.APPROVAL_REQUESTED).values_list(
            "user__email", flat=True
        )
    )
    assert notified == {"alice@example.com", "admin@example.com", "editor@example.com"}
    assert Notification.objects.get(user__email="editor@example.com").link == (
        f"/posts/{post['id']}/"
    )


def test_post_webhooks_fire_on_submit_approve_and_reject(
    team, membership, mastodon_channel, webhook_receiver, django_capture_on_commit_callbacks
):
    _, owner = team[Role.OWNER]
    created = owner.post(
        f"{API}/webhooks",
        {
            "url": webhook_receiver.url_for(),
            "events": ["post.submitted", "post.approved", "post.rejected"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    _, editor = team[Role.EDITOR]

    with django_capture_on_commit_callbacks(execute=True):
        first = submit(team, mastodon_channel, text="one")
        second = submit(team, mastodon_channel, text="two")
        editor.post(f"{API}/posts/{first['id']}/approve")
        editor.post(f"{API}/posts/{second['id']}/reject", {"reason": "Typo"}, format="json")

    for row in WebhookDelivery.objects.order_by("pk"):
        webhooks.send(row.pk)
    bodies = [json.loads(r.body) for r in webhook_receiver.received()]
    assert [(b["event"], b["data"]["post_id"]) for b in bodies] == [
        ("post.submitted", first["id"]),
        ("post.submitted", second["id"]),
        ("post.approved", first["id"]),
        ("post.rejected", second["id"]),
    ]
    editor_id = Membership.objects.get(role=Role.EDITOR).user_id
    assert bodies[3]["data"]["reason"] == "Typo"
    assert bodies[3]["data"]["actor_id"] == editor_id


def test_post_list_shows_approval_state_in_constant_queries(
    team, mastodon_channel, django_assert_max_num_queries
):
    _, editor = team[Role.EDITOR]
    for n in range(3):
        post = submit(team, mastodon_channel, text=f"post {n}")
        editor.post(f"{API}/posts/{post['id']}/approve")

    with django_assert_max_num_queries(12):
        body = editor.get(f"{API}/posts").json()

    assert [p["approval"]["state"] for p in body["results"]] == ["approved"] * 3
    assert Delivery.objects.filter(status="scheduled").count() == 3
