"""End to end: real Celery worker and beat publish to the fake Threads and refresh its token.

Herald is served over real HTTP (pytest-django's live server) at PUBLIC_URL, so the fake
downloads the image from Herald's signed public URL exactly as Meta would.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from scheduler.compose import PartInput, create_post
from scheduler.models import Channel, Delivery, DeliveryStatus
from tests.fixtures.threads import make_image, make_threads_channel, threads_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def threads_celery(
    transactional_db: Any,
    live_server: Any,
    fake_threads: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Any:
    """Worker and beat pointed at the fake Threads, refreshing tokens every second."""
    settings.PUBLIC_URL = live_server.url
    for name, value in threads_env(fake_threads, live_server.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("THREADS_REFRESH_INTERVAL", "1")
    return request.getfixturevalue("celery_processes")


def test_scheduled_thread_with_image_lands_on_threads_once_and_token_is_refreshed(
    threads_celery, membership, fake_threads
):
    channel = make_threads_channel(membership.workspace, fake_threads, age=timedelta(days=55))
    old_token = channel.credentials["access_token"]
    image = make_image(membership, alt_text="A magenta rectangle")
    due = (timezone.now() + timedelta(seconds=4)).replace(microsecond=0)
    post = create_post(
        membership,
        channels=[channel],
        parts=[PartInput("Hello from the real worker", [image]), PartInput("and a reply")],
        at=due,
    )
    delivery = post.deliveries.get()

    threads_celery.wait_for(
        lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PUBLISHED).exists(),
        timeout=45,
        what="the delivery to be published",
    )
    threads_celery.wait_for(
        lambda: Channel.objects.get(pk=channel.pk).credentials["access_token"] != old_token,
        timeout=30,
        what="beat to refresh the Threads token",
    )
    time.sleep(3)  # a few more ticks and refresh runs; none may publish or refresh again

    delivery.refresh_from_db()
    first, second = fake_threads.posts
    assert first["text"] == "Hello from the real worker"
    assert first["media_type"] == "IMAGE"
    assert first["alt_text"] == "A magenta rectangle"
    assert second["text"] == "and a reply"
    assert second["reply_to_id"] == first["id"]
    assert delivery.published_at >= due  # never early
    assert [s["remote_id"] for s in delivery.part_states] == [first["id"], second["id"]]
    (fetch,) = fake_threads.fetched_urls
    assert fetch["url"].startswith(f"{threads_celery.env['PUBLIC_URL']}/public/media/")
    assert fetch["status"] == 200
    assert fetch["bytes"] == image.size
    channel.refresh_from_db()
    assert [r["old"] for r in fake_threads.refreshes] == [old_token]
    assert channel.credentials["access_token"] == fake_threads.refreshes[0]["new"]
    assert 59 <= (channel.token_expires_at - timezone.now()).days <= 60
    print(f"lateness: {(delivery.published_at - due).total_seconds():.3f} s")
