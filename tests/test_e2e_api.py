"""End to end over the API: posts created with when=now and when=at are published at the fake
Mastodon by a real Celery worker and beat, and a signed webhook reports each one."""

from __future__ import annotations

import json
import time
import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from scheduler import webhooks
from scheduler.models import Delivery, DeliveryStatus
from tests.conftest import make_mastodon_channel
from tests.fixtures.api import API, bearer_client

pytestmark = pytest.mark.e2e


def test_api_posts_now_and_at_are_published_by_the_worker_and_reported_by_webhook(
    celery_processes, membership, fake_mastodon, webhook_receiver
):
    channel = make_mastodon_channel(membership.workspace, fake_mastodon)
    api = bearer_client(membership)
    hook = api.post(
        f"{API}/webhooks",
        {"url": webhook_receiver.url_for(), "events": ["delivery.published"]},
        format="json",
    ).json()
    due = (timezone.now() + timedelta(seconds=5)).replace(microsecond=0)
    berlin_time = due.astimezone(zoneinfo.ZoneInfo("Europe/Berlin")).isoformat()

    now_post = api.post(
        f"{API}/posts",
        {"channels": [channel.pk], "text": "Now, from the API", "when": "now"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="e2e-now",
    )
    at_post = api.post(
        f"{API}/posts",
        {
            "channels": [channel.pk],
            "parts": [{"text": "At a time, from the API"}, {"text": "with a reply"}],
            "when": "at",
            "scheduled_at": berlin_time,
        },
        format="json",
    )
    assert (now_post.status_code, at_post.status_code) == (201, 201)
    assert at_post.json()["deliveries"][0]["due_at"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")

    celery_processes.wait_for(
        lambda: Delivery.objects.filter(status=DeliveryStatus.PUBLISHED).count() == 2,
        timeout=40,
        what="both API posts to be published",
    )
    celery_processes.wait_for(
        lambda: len(webhook_receiver.received()) == 2, timeout=40, what="two signed webhooks"
    )
    time.sleep(3)  # more ticks run; none may publish again

    texts = [status["text"] for status in fake_mastodon.statuses]
    assert sorted(texts) == ["At a time, from the API", "Now, from the API", "with a reply"]
    at_delivery = api.get(f"{API}/posts/{at_post.json()['id']}").json()["deliveries"][0]
    assert at_delivery["status"] == "published"
    assert datetime.fromisoformat(at_delivery["published_at"]) >= due  # never early
    assert [part["url"] for part in at_delivery["parts"]] == [
        status["url"] for status in fake_mastodon.statuses if status["text"] != "Now, from the API"
    ]
    reported = set()
    for request in webhook_receiver.received():
        assert webhooks.verify_signature(
            hook["secret"],
            timestamp=request.header("Herald-Timestamp"),
            body=request.body,
            signature=request.header("Herald-Signature"),
        )
        reported.add(json.loads(request.body)["data"]["post_id"])
    assert reported == {now_post.json()["id"], at_post.json()["id"]}
    replay = api.post(
        f"{API}/posts",
        {"channels": [channel.pk], "text": "Now, from the API", "when": "now"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="e2e-now",
    )
    assert replay.json()["id"] == now_post.json()["id"]
    assert len(fake_mastodon.statuses) == 3
