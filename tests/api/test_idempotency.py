"""Idempotency-Key: a repeated POST acts once; a reused key with another body is refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduler.api.idempotency import purge_expired
from scheduler.models import Channel, IdempotencyRecord, Post, Webhook
from tests.conftest import schedule
from tests.fakes.mastodon import DEFAULT_TOKEN
from tests.fixtures.api import API, bearer_client


def post_with_key(client, path, body, key):
    return client.post(f"{API}/{path}", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_same_key_and_body_returns_the_first_response_without_acting_again(api, mastodon_channel):
    body = {"channels": [mastodon_channel.pk], "text": "once", "when": "draft"}

    first = post_with_key(api, "posts", body, "key-1")
    second = post_with_key(api, "posts", body, "key-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Post.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_422(api, mastodon_channel):
    post_with_key(
        api, "posts", {"channels": [mastodon_channel.pk], "text": "a", "when": "draft"}, "k"
    )

    response = post_with_key(
        api, "posts", {"channels": [mastodon_channel.pk], "text": "b", "when": "draft"}, "k"
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Post.objects.count() == 1


@pytest.mark.django_db
def test_same_key_on_another_endpoint_is_422(api, mastodon_channel):
    post_with_key(
        api, "posts", {"channels": [mastodon_channel.pk], "text": "a", "when": "draft"}, "k"
    )

    response = post_with_key(
        api, "webhooks", {"url": "http://127.0.0.1:9/h", "events": ["delivery.failed"]}, "k"
    )

    assert response.status_code == 422


@pytest.mark.django_db
def test_body_formatting_does_not_matter(api, mastodon_channel):
    first = api.generic(
        "POST",
        f"{API}/posts",
        f'{{"channels": [{mastodon_channel.pk}], "text": "x", "when": "draft"}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="fmt",
    )
    second = api.generic(
        "POST",
        f"{API}/posts",
        f'{{"when":"draft","text":"x","channels":[{mastodon_channel.pk}]}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="fmt",
    )

    assert (first.status_code, second.status_code) == (201, 201)
    assert Post.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_request_does_not_use_up_its_key(api, mastodon_channel):
    refused = post_with_key(api, "posts", {"channels": [mastodon_channel.pk], "when": "now"}, "k2")
    fixed = post_with_key(
        api,
        "posts",
        {"channels": [mastodon_channel.pk], "text": "now with text", "when": "now"},
        "k2",
    )

    assert (refused.status_code, fixed.status_code) == (400, 201)


@pytest.mark.django_db
def test_keys_are_per_user(api, member_api, mastodon_channel):
    from accounts.models import Role

    editor = member_api(Role.EDITOR)
    body = {"channels": [mastodon_channel.pk], "text": "same", "when": "draft"}

    assert post_with_key(api, "posts", body, "shared").status_code == 201
    assert post_with_key(editor, "posts", body, "shared").status_code == 201
    assert Post.objects.count() == 2


@pytest.mark.django_db
def test_replayed_retry_does_not_retry_twice(api, membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "x")
    delivery = post.deliveries.get()
    delivery.__class__.objects.filter(pk=delivery.pk).update(status="failed")

    first = post_with_key(api, f"deliveries/{delivery.pk}/retry", None, "retry-1")
    replay = post_with_key(api, f"deliveries/{delivery.pk}/retry", None, "retry-1")
    fresh = api.post(f"{API}/deliveries/{delivery.pk}/retry")

    assert (first.status_code, replay.status_code, fresh.status_code) == (200, 200, 409)
    assert replay.json() == first.json()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_unusable_key_is_refused(api, mastodon_channel, key):
    response = post_with_key(
        api, "posts", {"channels": [mastodon_channel.pk], "text": "x", "when": "draft"}, key
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["details"]["fields"]
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_records_are_kept_a_day_at_least_then_purged(api, mastodon_channel, settings):
    settings.HERALD_IDEMPOTENCY_TTL_HOURS = 1  # below the floor: a day still holds
    body = {"channels": [mastodon_channel.pk], "text": "x", "when": "draft"}
    post_with_key(api, "posts", body, "old")
    post_with_key(api, "posts", body, "recent")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    IdempotencyRecord.objects.filter(key="recent").update(
        created_at=timezone.now() - timedelta(hours=23)
    )

    assert purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    assert post_with_key(api, "posts", body, "recent")["Idempotent-Replayed"] == "true"


# -- concurrent duplicates (real threads, committed data) ------------------------------------------
def _in_thread(target, results, index):
    try:
        results[index] = target()
    finally:
        connection.close()


def connect_body(fake):
    return {"network": "mastodon", "server_url": fake.url, "access_token": DEFAULT_TOKEN}


@pytest.mark.django_db(transaction=True)
def test_duplicate_arriving_while_the_first_runs_gets_409_then_the_replay(
    membership, fake_mastodon, settings
):
    settings.HERALD_IDEMPOTENCY_WAIT = 0.2
    client = bearer_client(membership)
    # The first request is slow: the server takes 2 s to verify the token.
    fake_mastodon.inject("GET", r"verify_credentials", delay=2.0)
    results: list = [None]
    first = threading.Thread(
        target=_in_thread,
        args=(
            lambda: post_with_key(client, "channels", connect_body(fake_mastodon), "c1"),
            results,
            0,
        ),
    )
    first.start()
    _wait_for(lambda: IdempotencyRecord.objects.filter(key="c1").exists())

    duplicate = post_with_key(client, "channels", connect_body(fake_mastodon), "c1")
    first.join()
    after = post_with_key(client, "channels", connect_body(fake_mastodon), "c1")

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_in_progress"
    assert duplicate["Retry-After"] == "1"
    assert results[0].status_code == 201
    assert (after.status_code, after.json()) == (201, results[0].json())
    assert Channel.objects.count() == 1
    assert len(fake_mastodon.requests_to("GET", r"verify_credentials$")) == 1


@pytest.mark.django_db(transaction=True)
def test_duplicate_that_waits_gets_the_first_response(membership, fake_mastodon, settings):
    settings.HERALD_IDEMPOTENCY_WAIT = 15
    client = bearer_client(membership)
    fake_mastodon.inject("GET", r"verify_credentials", delay=1.0)
    results: list = [None]
    first = threading.Thread(
        target=_in_thread,
        args=(
            lambda: post_with_key(client, "channels", connect_body(fake_mastodon), "c2"),
            results,
            0,
        ),
    )
    first.start()
    _wait_for(lambda: IdempotencyRecord.objects.filter(key="c2").exists())

    duplicate = post_with_key(client, "channels", connect_body(fake_mastodon), "c2")
    first.join()

    assert results[0].status_code == duplicate.status_code == 201
    assert duplicate.json() == results[0].json()
    assert duplicate["Idempotent-Replayed"] == "true"
    assert len(fake_mastodon.requests_to("GET", r"verify_credentials$")) == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_duplicates_create_one_post(membership, mastodon_channel, settings):
    settings.HERALD_IDEMPOTENCY_WAIT = 10
    clients = [bearer_client(membership) for _ in range(6)]
    body = {"channels": [mastodon_channel.pk], "text": "burst", "when": "draft"}
    start = threading.Barrier(len(clients))
    results: list = [None] * len(clients)

    def send(client):
        start.wait()
        return post_with_key(client, "posts", body, "burst-key")

    threads = [
        threading.Thread(target=_in_thread, args=(lambda c=c: send(c), results, n))
        for n, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Post.objects.count() == 1
    statuses = [r.status_code for r in results]
    assert set(statuses) <= {201, 409}
    created = {r.json()["id"] for r in results if r.status_code == 201}
    assert created == {Post.objects.get().pk}


def _wait_for(condition, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_webhook_secret_is_never_stored_in_the_record(api, webhook_receiver):
    body = {"url": webhook_receiver.url_for(), "events": ["delivery.published"]}
    headers = {"HTTP_IDEMPOTENCY_KEY": "hook-1"}

    first = api.post(f"{API}/webhooks", body, format="json", **headers)
    replay = api.post(f"{API}/webhooks", body, format="json", **headers)

    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    with connection.cursor() as cursor:  # what a database dump would show
        cursor.execute("SELECT response_body::text FROM scheduler_idempotencyrecord")
        (stored,) = cursor.fetchone()
    assert secret not in stored and "whsec_" not in stored
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == {**first.json(), "secret": None}
    assert Webhook.objects.count() == 1
