"""/healthz reports database, broker and dispatch-tick age."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.dispatch import run_tick
from scheduler.models import EngineHeartbeat

pytestmark = pytest.mark.django_db


def test_healthy_after_a_recent_tick(client):
    run_tick(enqueue=lambda claim: None)

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert body["checks"]["dispatch"]["last_tick_age_seconds"] < 2


def test_unhealthy_when_no_tick_for_three_intervals(client, settings):
    settings.HERALD_DISPATCH_INTERVAL = 2
    EngineHeartbeat.objects.create(name="dispatch", beat_at=timezone.now() - timedelta(seconds=7))

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "check Celery beat" in response.json()["checks"]["dispatch"]["error"]


def test_unhealthy_when_dispatcher_never_ran(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "never run" in response.json()["checks"]["dispatch"]["error"]


def test_unhealthy_when_broker_is_unreachable(client, settings):
    from config.celery import app

    run_tick(enqueue=lambda claim: None)
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert "broker" in response.json()["checks"]["broker"]["error"]


def test_unhealthy_when_a_due_delivery_is_not_progressing(client, membership, mastodon_channel):
    from tests.conftest import schedule

    run_tick(enqueue=lambda claim: None)
    schedule(membership, [mastodon_channel], "Nobody claims me", at=timezone.now())
    assert client.get("/healthz").status_code == 200  # just due: the next tick takes it

    stuck = schedule(membership, [mastodon_channel], "Old", at=timezone.now())
    stuck.deliveries.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    response = client.get("/healthz")

    assert response.status_code == 503
    check = response.json()["checks"]["deliveries"]
    assert check["overdue_unclaimed"] == 1
    assert "overdue and not progressing" in check["error"]


def test_unhealthy_when_a_lease_expired_long_ago(client, membership, mastodon_channel):
    from scheduler.models import Delivery
    from tests.conftest import schedule

    post = schedule(membership, [mastodon_channel], "Worker died")
    run_tick(enqueue=lambda claim: None)  # claimed; the task is lost
    assert client.get("/healthz").status_code == 200

    Delivery.objects.filter(post=post).update(claimed_until=timezone.now() - timedelta(minutes=2))
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["deliveries"]["overdue_lease_expired"] == 1
