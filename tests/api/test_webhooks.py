"""Webhooks: subscriptions over the API; signed sends to a local receiver, retried and logged."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from scheduler import events, webhooks
from scheduler.models import Webhook, WebhookDelivery, WebhookDeliveryStatus
from scheduler.retry import backoff_seconds
from tests.conftest import schedule, tick_and_publish
from tests.fixtures.api import API

pytestmark = pytest.mark.django_db


def subscribe(api, url, events_=("delivery.published", "delivery.failed")):
    response = api.post(f"{API}/webhooks", {"url": url, "events": list(events_)}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def make_due(delivery_id):
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


@pytest.fixture
def eager_celery():
    """Tasks run in the caller's thread (no worker), as the engine's on-commit hooks fire."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


# -- subscriptions ----------------------------------------------------------------------------------
def test_webhook_secret_is_shown_once(api, webhook_receiver):
    created = subscribe(api, webhook_receiver.url_for())

    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["delivery.failed", "delivery.published"]
    assert "secret" not in api.get(f"{API}/webhooks/{created['id']}").json()
    assert [w["id"] for w in api.get(f"{API}/webhooks").json()["results"]] == [created["id"]]
    assert Webhook.objects.get().secret == created["secret"]


def test_unknown_event_and_private_url_are_refused(api, settings):
    bad_event = api.post(
        f"{API}/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["post.liked"]}, format="json"
    )
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    private = api.post(
        f"{API}/webhooks",
        {"url": "http://10.0.0.1/h", "events": ["delivery.failed"]},
        format="json",
    )

    assert bad_event.status_code == 400
    assert "events" in bad_event.json()["error"]["details"]["fields"]
    assert private.status_code == 400
    assert "url" in private.json()["error"]["details"]["fields"]
    assert not Webhook.objects.exists()


def test_deleted_webhook_gets_nothing_more(api, membership, webhook_receiver):
    created = subscribe(api, webhook_receiver.url_for())

    assert api.delete(f"{API}/webhooks/{created['id']}").status_code == 204

    assert (
        webhooks.enqueue_event("delivery.failed", workspace_id=membership.workspace_id, payload={})
        == []
    )
    assert api.get(f"{API}/webhooks/{created['id']}").status_code == 404


# -- sending -----------------------------------------------------------------------------------------
def test_event_is_sent_signed_to_subscribed_webhooks_only(
    api, membership, bob_api, webhook_receiver
):
    mine = subscribe(api, webhook_receiver.url_for("mine"))
    subscribe(api, webhook_receiver.url_for("other-events"), ["channel.needs_reconnect"])
    subscribe(bob_api, webhook_receiver.url_for("bob"))

    ids = webhooks.enqueue_event(
        "delivery.published",
        workspace_id=membership.workspace_id,
        payload={"delivery_id": 7, "urls": ["https://example.social/@a/1"]},
    )
    assert len(ids) == 1
    assert webhooks.send(ids[0]) is None

    (request,) = webhook_receiver.received("mine")
    assert webhook_receiver.received("other-events") == webhook_receiver.received("bob") == []
    assert request.header("Herald-Event") == "delivery.published"
    assert webhooks.verify_signature(
        mine["secret"],
        timestamp=request.header("Herald-Timestamp"),
        body=request.body,
        signature=request.header("Herald-Signature"),
    )
    assert not webhooks.verify_signature(
        "whsec_wrong",
        timestamp=request.header("Herald-Timestamp"),
        body=request.body,
        signature=request.header("Herald-Signature"),
    )
    body = json.loads(request.body)
    assert body["event"] == "delivery.published"
    assert body["id"] == request.header("Herald-Event-Id")
    assert body["data"] == {"delivery_id": 7, "urls": ["https://example.social/@a/1"]}
    log = api.get(f"{API}/webhooks/{mine['id']}/deliveries").json()["results"]
    assert [(entry["status"], entry["attempts"], entry["response_status"]) for entry in log] == [
        ("succeeded", 1, 204)
    ]


def test_signature_is_hmac_sha256_of_timestamp_dot_body(api, membership, webhook_receiver):
    import hashlib
    import hmac

    secret = subscribe(api, webhook_receiver.url_for())["secret"]
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={"x": 1}
    )
    webhooks.send(pk)

    (request,) = webhook_receiver.received()
    expected = hmac.new(
        secret.encode(),
        request.header("Herald-Timestamp").encode() + b"." + request.body,
        hashlib.sha256,
    ).hexdigest()
    assert request.header("Herald-Signature") == f"v1={expected}"


def test_failed_send_is_retried_with_backoff_and_logged(
    api, membership, webhook_receiver, settings
):
    settings.HERALD_WEBHOOK_BACKOFF_BASE = 30
    created = subscribe(api, webhook_receiver.url_for())
    webhook_receiver.inject("POST", r"^/hooks/", status=503, body={"error": "busy"})
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={"delivery_id": 1}
    )

    before = timezone.now()
    assert webhooks.send(pk) == 30.0
    waiting = WebhookDelivery.objects.get(pk=pk)
    assert waiting.status == WebhookDeliveryStatus.PENDING
    assert (waiting.attempts, waiting.response_status) == (1, 503)
    assert "HTTP 503" in waiting.error
    assert waiting.next_attempt_at >= before + timedelta(seconds=30)
    assert webhooks.send(pk) is None  # not due yet: nothing is sent
    assert len(webhook_receiver.received()) == 1
    assert pk not in webhooks.due_ids()

    make_due(pk)
    assert webhooks.due_ids() == [pk]
    assert webhooks.send(pk) is None

    first, second = webhook_receiver.received()
    assert first.header("Herald-Event-Id") == second.header("Herald-Event-Id")
    log = api.get(f"{API}/webhooks/{created['id']}/deliveries").json()["results"]
    assert [(e["status"], e["attempts"], e["response_status"], e["error"]) for e in log] == [
        ("succeeded", 2, 204, "")
    ]


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_seconds(n, base=30, cap=100) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_sending_gives_up_after_the_last_attempt(membership, api, webhook_receiver, settings):
    settings.HERALD_WEBHOOK_MAX_ATTEMPTS = 2
    subscribe(api, webhook_receiver.url_for())
    webhook_receiver.inject("POST", r"^/hooks/", status=500, times=5)
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={}
    )

    assert webhooks.send(pk) is not None
    make_due(pk)
    assert webhooks.send(pk) is None

    failed = WebhookDelivery.objects.get(pk=pk)
    assert (failed.status, failed.attempts) == (WebhookDeliveryStatus.FAILED, 2)
    assert "Gave up after 2 attempts" in failed.error
    assert len(webhook_receiver.received()) == 2


def test_unreachable_receiver_is_retried(membership, api, webhook_receiver):
    subscribe(api, webhook_receiver.url_for())
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={}
    )
    webhook_receiver.stop()

    assert webhooks.send(pk) is not None
    waiting = WebhookDelivery.objects.get(pk=pk)
    assert waiting.status == WebhookDeliveryStatus.PENDING
    assert "Could not reach" in waiting.error


def test_url_is_checked_again_when_sending(membership, api, webhook_receiver, settings):
    subscribe(api, webhook_receiver.url_for())
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={}
    )
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []

    assert webhooks.send(pk) is None

    refused = WebhookDelivery.objects.get(pk=pk)
    assert refused.status == WebhookDeliveryStatus.FAILED
    assert refused.error.startswith("Not sent:")
    assert webhook_receiver.received() == []


def test_redirects_are_not_followed(membership, api, webhook_receiver):
    subscribe(api, webhook_receiver.url_for())
    webhook_receiver.inject(
        "POST", r"^/hooks/", status=302, headers={"Location": f"{webhook_receiver.url}/hooks/x"}
    )
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={}
    )

    assert webhooks.send(pk) is not None
    assert webhook_receiver.received("x") == []
    assert WebhookDelivery.objects.get(pk=pk).response_status == 302


def test_engine_events_reach_the_webhook(
    api,
    membership,
    mastodon_channel,
    fake_mastodon,
    webhook_receiver,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    created = subscribe(api, webhook_receiver.url_for(), ["delivery.published"])
    post = schedule(membership, [mastodon_channel], "Tell the webhook")

    with django_capture_on_commit_callbacks(execute=True):
        assert tick_and_publish() == ["published"]

    (request,) = webhook_receiver.received()
    data = json.loads(request.body)["data"]
    delivery = post.deliveries.get()
    assert (data["delivery_id"], data["status"]) == (delivery.pk, "published")
    assert data["urls"] == [fake_mastodon.statuses[0]["url"]]
    assert webhooks.verify_signature(
        created["secret"],
        timestamp=request.header("Herald-Timestamp"),
        body=request.body,
        signature=request.header("Herald-Signature"),
    )


def test_a_broken_webhook_table_never_breaks_the_engine(membership, mastodon_channel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(webhooks, "enqueue_event", broken)
    post = schedule(membership, [mastodon_channel], "x")

    events.delivery_failed(post.deliveries.get())  # logs, does not raise


def test_receiver_answer_excerpt_is_logged(membership, api, webhook_receiver):
    subscribe(api, webhook_receiver.url_for())
    webhook_receiver.inject("POST", r"^/hooks/", status=200, body={"ok": 1})
    (pk,) = webhooks.enqueue_event(
        "delivery.failed", workspace_id=membership.workspace_id, payload={}
    )

    webhooks.send(pk)

    logged = WebhookDelivery.objects.get(pk=pk)
    assert (logged.status, logged.response_excerpt) == ("succeeded", '{"ok": 1}')
