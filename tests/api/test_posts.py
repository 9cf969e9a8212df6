"""Posts and deliveries over the API: create (every `when`), validate per network, list, edit,
cancel, share now, retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from scheduler.models import Delivery, DeliveryStatus, Media, Post, PostStatus
from tests.conftest import schedule, tick_and_publish
from tests.fixtures.api import API, png_upload
from tests.fixtures.bluesky import make_bluesky_channel

pytestmark = pytest.mark.django_db


def create(api, **body):
    return api.post(f"{API}/posts", body, format="json")


def error(response):
    return response.json()["error"]


def upload(api, alt_text="A red square"):
    response = api.post(f"{API}/media", {"file": png_upload(), "alt_text": alt_text})
    assert response.status_code == 201, response.json()
    return response.json()["id"]


# -- creating -----------------------------------------------------------------------------------------
def test_post_now_is_published_at_the_next_tick(api, mastodon_channel, fake_mastodon):
    response = create(api, channels=[mastodon_channel.pk], text="Hello API", when="now")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["parts"] == [{"text": "Hello API", "media": []}]
    (delivery,) = body["deliveries"]
    assert (delivery["channel"], delivery["status"], delivery["queued"]) == (
        mastodon_channel.pk,
        "scheduled",
        False,
    )

    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["Hello API"]
    published = api.get(f"{API}/posts/{body['id']}").json()["deliveries"][0]
    assert published["status"] == "published"
    assert published["published_at"] is not None
    assert published["parts"] == [
        {"remote_id": fake_mastodon.statuses[0]["id"], "url": fake_mastodon.statuses[0]["url"]}
    ]
    assert published["attempts"] == 1
    assert published["error"] is None


def test_post_at_a_time_with_an_offset_is_due_then(api, mastodon_channel, fake_mastodon):
    response = create(
        api,
        channels=[mastodon_channel.pk],
        text="Later",
        when="at",
        scheduled_at="2030-05-01T09:30:00+02:00",
    )

    assert response.status_code == 201
    assert response.json()["deliveries"][0]["due_at"] == "2030-05-01T07:30:00Z"
    assert tick_and_publish() == []
    assert fake_mastodon.statuses == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"when": "at"}, "Required"),
        ({"when": "at", "scheduled_at": "2030-05-01T09:30:00"}, "offset"),
        ({"when": "at", "scheduled_at": "2020-01-01T09:30:00Z"}, "passed"),
        ({"when": "now", "scheduled_at": "2030-05-01T09:30:00Z"}, "Only used with when=at"),
    ],
)
def test_scheduled_at_must_be_given_with_an_offset_and_in_the_future(
    api, mastodon_channel, extra, message
):
    response = create(api, channels=[mastodon_channel.pk], text="x", **extra)

    assert response.status_code == 400
    assert message in " ".join(error(response)["details"]["fields"]["scheduled_at"])
    assert not Post.objects.exists()


def test_draft_is_held_without_a_time(api, mastodon_channel):
    response = create(api, channels=[mastodon_channel.pk], text="Someday", when="draft")

    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert response.json()["deliveries"][0]["status"] == "held"
    assert response.json()["deliveries"][0]["due_at"] is None


def test_thread_with_media_is_published_part_by_part(api, mastodon_channel, fake_mastodon):
    media_id = upload(api)

    response = create(
        api,
        channels=[mastodon_channel.pk],
        parts=[{"text": "1/2 look", "media": [media_id]}, {"text": "2/2 done"}],
        when="now",
        options={"visibility": "unlisted", "content_warning": "colours"},
    )

    assert response.status_code == 201, response.json()
    assert response.json()["parts"][0]["media"][0]["id"] == media_id
    assert tick_and_publish() == ["published"]
    first, second = fake_mastodon.statuses
    assert (first["text"], second["text"]) == ("1/2 look", "2/2 done")
    assert second["in_reply_to_id"] == first["id"]
    assert first["visibility"] == "unlisted"
    assert len(first["media_ids"]) == 1
    assert fake_mastodon.media[first["media_ids"][0]]["description"] == "A red square"


def test_too_long_for_bluesky_but_fine_for_mastodon_fails_per_channel(
    api, workspace, mastodon_channel, fake_pds
):
    bluesky = make_bluesky_channel(workspace, fake_pds)

    response = create(api, channels=[mastodon_channel.pk, bluesky.pk], text="x" * 400, when="now")

    assert response.status_code == 400
    details = error(response)["details"]
    assert list(details["channels"]) == [str(bluesky.pk)]
    assert "300" in details["channels"][str(bluesky.pk)][0]
    assert not Post.objects.exists()


def test_override_adapts_the_text_for_one_channel(
    api, workspace, mastodon_channel, fake_pds, fake_mastodon
):
    bluesky = make_bluesky_channel(workspace, fake_pds)

    response = create(
        api,
        channels=[mastodon_channel.pk, bluesky.pk],
        text="x" * 400,
        overrides={str(bluesky.pk): {"parts": [{"text": "The short version"}]}},
        when="now",
    )

    assert response.status_code == 201, response.json()
    by_channel = {d["channel"]: d for d in response.json()["deliveries"]}
    assert by_channel[bluesky.pk]["override"] == [{"text": "The short version", "media": []}]
    assert by_channel[mastodon_channel.pk]["override"] is None
    assert sorted(tick_and_publish()) == ["published", "published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["x" * 400]
    assert [record.value["text"] for record in fake_pds.posts] == ["The short version"]


def test_contributors_post_awaits_approval(member_api, mastodon_channel, fake_mastodon):
    contributor = member_api(Role.CONTRIBUTOR)

    response = create(
        contributor, channels=[mastodon_channel.pk], text="Please approve", when="now"
    )

    assert response.status_code == 201
    assert response.json()["status"] == "pending_approval"
    assert response.json()["deliveries"][0]["status"] == "held"
    assert tick_and_publish() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": [], "text": "x", "when": "now"}, "channels"),
        ({"channels": [999999], "text": "x", "when": "now"}, "channels"),
        ({"channels": ["first"], "text": "x", "when": "now"}, "channels"),
        ({"when": "now"}, "text"),
        ({"text": "x", "parts": [{"text": "y"}], "when": "now"}, "parts"),
        ({"text": "x", "when": "tomorrow"}, "when"),
        ({"parts": [{"text": "x", "media": [999999]}], "when": "now"}, "parts"),
        ({"text": "x", "when": "now", "options": {"visibility": "everyone"}}, "options"),
        (
            {"text": "x", "when": "now", "overrides": {"abc": {"parts": [{"text": "y"}]}}},
            "overrides",
        ),
        (
            {"text": "x", "when": "now", "overrides": {"999": {"parts": [{"text": "y"}]}}},
            "overrides",
        ),
    ],
)
def test_invalid_post_body_says_which_field(api, mastodon_channel, body, field):
    body = {"channels": [mastodon_channel.pk], **body}

    response = create(api, **body)

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert field in error(response)["details"]["fields"]
    assert not Post.objects.exists()


def test_another_workspaces_channel_or_media_cannot_be_used(
    api, bob_api, mastodon_channel, other_workspace, fake_mastodon
):
    from tests.conftest import make_mastodon_channel

    theirs = make_mastodon_channel(other_workspace, fake_mastodon, remote_id="2")
    their_media = upload(bob_api)

    channel = create(api, channels=[theirs.pk], text="x", when="now")
    media = create(
        api,
        channels=[mastodon_channel.pk],
        parts=[{"text": "x", "media": [their_media]}],
        when="now",
    )

    assert channel.status_code == 400
    assert "channels" in error(channel)["details"]["fields"]
    assert media.status_code == 400
    assert "parts" in error(media)["details"]["fields"]
    assert Media.objects.get(pk=their_media).workspace == other_workspace


# -- listing ------------------------------------------------------------------------------------------
def test_posts_are_listed_newest_first_with_cursor_pagination(api, mastodon_channel):
    ids = [
        create(api, channels=[mastodon_channel.pk], text=f"post {n}", when="draft").json()["id"]
        for n in range(5)
    ]

    seen, url, pages = [], f"{API}/posts?limit=2", 0
    while url:
        page = api.get(url).json()
        seen += [post["id"] for post in page["results"]]
        url, pages = page["next"], pages + 1
        assert len(page["results"]) <= 2
    assert seen == list(reversed(ids))
    assert pages == 3
    back = api.get(api.get(f"{API}/posts?limit=2").json()["next"]).json()["previous"]
    assert [p["id"] for p in api.get(back).json()["results"]] == seen[:2]


def test_a_list_shows_each_posts_parts_and_media_in_order(api, mastodon_channel):
    red, blue, green = upload(api, "red"), upload(api, "blue"), upload(api, "green")
    thread = create(
        api,
        channels=[mastodon_channel.pk],
        parts=[{"text": "1/2", "media": [blue, red]}, {"text": "2/2", "media": [green]}],
        when="draft",
    ).json()["id"]
    plain = create(api, channels=[mastodon_channel.pk], text="no media", when="draft").json()["id"]

    listed = {post["id"]: post["parts"] for post in api.get(f"{API}/posts").json()["results"]}
    one = api.get(f"{API}/posts/{thread}").json()["parts"]

    shown = [(part["text"], [m["alt_text"] for m in part["media"]]) for part in one]
    assert shown == [("1/2", ["blue", "red"]), ("2/2", ["green"])]
    assert listed[thread] == one
    assert listed[plain] == [{"text": "no media", "media": []}]
    assert one[0]["media"][0]["created_at"].endswith("Z")


def test_posts_filter_by_status_channel_tag_and_time(
    api, membership, workspace, mastodon_channel, fake_mastodon
):
    from tests.conftest import make_mastodon_channel

    other = make_mastodon_channel(workspace, fake_mastodon, remote_id="9")
    soon = create(api, channels=[mastodon_channel.pk], text="soon", when="now", tags=["launch"])
    later = create(
        api,
        channels=[other.pk],
        text="later",
        when="at",
        scheduled_at="2030-01-01T12:00:00Z",
        tags=["blog"],
    )
    draft = create(api, channels=[other.pk], text="draft", when="draft")
    tick_and_publish()

    def ids(query):
        response = api.get(f"{API}/posts?{query}")
        assert response.status_code == 200, response.json()
        return {post["id"] for post in response.json()["results"]}

    assert ids("status=draft") == {draft.json()["id"]}
    assert ids("status=published") == {soon.json()["id"]}
    assert ids("status=scheduled") == {soon.json()["id"], later.json()["id"]}
    assert ids(f"channel={other.pk}") == {later.json()["id"], draft.json()["id"]}
    assert ids("tag=launch") == {soon.json()["id"]}
    assert ids("from=2029-12-31T00:00:00Z") == {later.json()["id"]}
    assert ids("to=2029-12-31T00:00:00%2B00:00") == {soon.json()["id"]}
    assert api.get(f"{API}/posts?status=nope").status_code == 400
    assert api.get(f"{API}/posts?from=2030-01-01T00:00:00").status_code == 400


# -- changing -----------------------------------------------------------------------------------------
def test_patch_changes_text_and_time_of_a_scheduled_post(api, mastodon_channel, fake_mastodon):
    post = create(
        api,
        channels=[mastodon_channel.pk],
        text="typo",
        when="at",
        scheduled_at="2030-01-01T09:00:00Z",
    ).json()

    response = api.patch(
        f"{API}/posts/{post['id']}",
        {"text": "fixed", "when": "now", "tags": ["edited"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["not_changed"] == []
    assert body["post"]["parts"][0]["text"] == "fixed"
    assert body["post"]["tags"] == ["edited"]
    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["fixed"]


def test_patch_after_one_channel_published_changes_only_the_others(
    api, membership, workspace, mastodon_channel, fake_mastodon
):
    from tests.conftest import make_mastodon_channel

    second = make_mastodon_channel(workspace, fake_mastodon, remote_id="2")
    post = create(
        api,
        channels=[mastodon_channel.pk, second.pk],
        text="original",
        when="at",
        scheduled_at="2030-01-01T09:00:00Z",
    ).json()
    published = Delivery.objects.get(post_id=post["id"], channel=mastodon_channel)
    Delivery.objects.filter(pk=published.pk).update(
        status=DeliveryStatus.PUBLISHED, published_at=timezone.now()
    )

    response = api.patch(f"{API}/posts/{post['id']}", {"text": "edited"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["not_changed"] == [
        {
            "delivery": published.pk,
            "channel": mastodon_channel.pk,
            "status": "published",
            "reason": "It is already published.",
        }
    ]
    assert body["post"]["parts"][0]["text"] == "original"  # what was published stays on record
    by_channel = {d["channel"]: d for d in body["post"]["deliveries"]}
    assert by_channel[second.pk]["override"] == [{"text": "edited", "media": []}]


def test_patch_when_nothing_can_change_is_a_conflict(api, membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "done")
    post.deliveries.update(status=DeliveryStatus.PUBLISHED)

    response = api.patch(f"{API}/posts/{post.pk}", {"text": "too late"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "conflict"


def test_patch_validates_the_new_text_per_channel(api, workspace, mastodon_channel, fake_pds):
    bluesky = make_bluesky_channel(workspace, fake_pds)
    post = create(api, channels=[mastodon_channel.pk, bluesky.pk], text="short", when="draft")

    response = api.patch(f"{API}/posts/{post.json()['id']}", {"text": "y" * 400}, format="json")

    assert response.status_code == 400
    assert list(error(response)["details"]["channels"]) == [str(bluesky.pk)]
    assert Post.objects.get().parts.get().text == "short"


def test_draft_scheduled_by_patch_goes_out(api, mastodon_channel, fake_mastodon):
    post = create(api, channels=[mastodon_channel.pk], text="was a draft", when="draft").json()

    response = api.patch(f"{API}/posts/{post['id']}", {"when": "now"}, format="json")

    assert response.json()["post"]["status"] == "scheduled"
    assert tick_and_publish() == ["published"]


def test_contributor_cannot_change_someone_elses_post(api, member_api, mastodon_channel):
    post = create(api, channels=[mastodon_channel.pk], text="alice's", when="draft").json()
    contributor = member_api(Role.CONTRIBUTOR)

    response = contributor.patch(f"{API}/posts/{post['id']}", {"text": "mine now"}, format="json")

    assert response.status_code == 403
    assert contributor.delete(f"{API}/posts/{post['id']}").status_code == 403


def test_delete_cancels_what_is_not_published_and_keeps_the_rest(
    api, membership, workspace, mastodon_channel, fake_mastodon
):
    from tests.conftest import make_mastodon_channel

    second = make_mastodon_channel(workspace, fake_mastodon, remote_id="2")
    post = schedule(membership, [mastodon_channel, second], "half")
    post.deliveries.filter(channel=mastodon_channel).update(status=DeliveryStatus.PUBLISHED)

    response = api.delete(f"{API}/posts/{post.pk}")

    assert response.status_code == 200
    statuses = {d["channel"]: d["status"] for d in response.json()["deliveries"]}
    assert statuses == {mastodon_channel.pk: "published", second.pk: "cancelled"}
    assert tick_and_publish() == []


def test_share_now_brings_a_scheduled_post_forward(api, mastodon_channel, fake_mastodon):
    post = create(
        api,
        channels=[mastodon_channel.pk],
        text="hurry",
        when="at",
        scheduled_at="2030-01-01T09:00:00Z",
    ).json()

    response = api.post(f"{API}/posts/{post['id']}/share-now")

    assert response.status_code == 200
    assert response.json()["shared"] == 1
    due = response.json()["post"]["deliveries"][0]["due_at"]
    assert due < (timezone.now() + timedelta(seconds=1)).isoformat()
    assert tick_and_publish() == ["published"]
    assert [s["text"] for s in fake_mastodon.statuses] == ["hurry"]


def test_share_now_of_a_post_awaiting_approval_is_a_conflict(
    api, member_api, mastodon_channel, fake_mastodon
):
    contributor = member_api(Role.CONTRIBUTOR)
    post = create(contributor, channels=[mastodon_channel.pk], text="pending", when="now").json()

    assert contributor.post(f"{API}/posts/{post['id']}/share-now").status_code == 403
    response = api.post(f"{API}/posts/{post['id']}/share-now")
    assert response.status_code == 409
    assert tick_and_publish() == []


def test_failed_delivery_shows_its_error_and_can_be_retried(
    api, membership, mastodon_channel, fake_mastodon
):
    post = schedule(membership, [mastodon_channel], "x" * 10)
    fake_mastodon.inject("POST", r"^/api/v1/statuses$", status=422, body={"error": "Nope"})
    assert tick_and_publish() == ["failed"]
    delivery = post.deliveries.get()

    failed = api.get(f"{API}/deliveries/{delivery.pk}").json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"]
    assert "Nope" in failed["error"]["message"]

    retried = api.post(f"{API}/deliveries/{delivery.pk}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] == "scheduled"
    assert retried.json()["error"] is None
    assert tick_and_publish() == ["published"]

    again = api.post(f"{API}/deliveries/{delivery.pk}/retry")
    assert again.status_code == 409


def test_post_status_stays_as_stored(api, membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "x")

    assert api.get(f"{API}/posts/{post.pk}").json()["status"] == PostStatus.SCHEDULED
