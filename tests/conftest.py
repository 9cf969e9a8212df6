"""Shared fixtures: named users and workspaces, channels on fake networks, engine helpers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Membership, Role, User, Workspace
from accounts.workspaces import create_user_with_workspace
from tests.fakes.mastodon import DEFAULT_TOKEN, FakeMastodon

pytest_plugins = [
    "tests.fixtures.e2e",
    "tests.fixtures.bluesky",
    "tests.fixtures.threads",
    "tests.fixtures.api",
    "tests.fixtures.mail",
]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db: Any) -> User:
    user, _ = create_user_with_workspace(
        "alice@example.com", password=PASSWORD, workspace_name="Acme"
    )
    return user


@pytest.fixture
def workspace(alice: User) -> Workspace:
    return Workspace.objects.get(memberships__user=alice)


@pytest.fixture
def membership(alice: User, workspace: Workspace) -> Membership:
    return Membership.objects.get(user=alice, workspace=workspace)


@pytest.fixture
def bob(db: Any) -> User:
    """A user of another workspace, who must never see Acme's data."""
    user, _ = create_user_with_workspace(
        "bob@example.com", password=PASSWORD, workspace_name="Globex"
    )
    return user


@pytest.fixture
def other_workspace(bob: User) -> Workspace:
    return Workspace.objects.get(memberships__user=bob)


def add_member(workspace: Workspace, email: str, role: Role) -> Membership:
    user = User.objects.create_user(email, PASSWORD)
    return Membership.objects.create(user=user, workspace=workspace, role=role)


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    fake = FakeMastodon().start()
    yield fake
    fake.stop()


@pytest.fixture
def mastodon_channel(workspace: Workspace, fake_mastodon: FakeMastodon) -> Any:
    return make_mastodon_channel(workspace, fake_mastodon)


def make_mastodon_channel(
    workspace: Workspace, fake: FakeMastodon, *, remote_id: str = "1", token: str = DEFAULT_TOKEN
) -> Any:
    from scheduler.models import Channel

    channel = Channel(
        workspace=workspace,
        network="mastodon",
        server_url=fake.url,
        remote_id=remote_id,
        handle=f"@alice@{fake.url.split('://')[1]}",
        display_name="Alice",
    )
    channel.credentials = {"access_token": token}
    channel.save()
    return channel


def schedule(
    membership: Membership,
    channels: list[Any],
    *texts: str,
    at: datetime | None = None,
    options: dict[str, Any] | None = None,
) -> Any:
    """Create a scheduled post (a thread when several texts are given). Returns the Post."""
    from scheduler.compose import PartInput, create_post

    return create_post(
        membership,
        channels=channels,
        parts=[PartInput(text) for text in texts],
        at=at or timezone.now() - timedelta(seconds=1),
        options=options,
    )


def tick_and_publish(now: datetime | None = None) -> list[str]:
    """Run one dispatch tick and publish what it claimed, in this thread. Returns outcomes."""
    from scheduler.dispatch import run_tick
    from scheduler.publishing import publish_delivery

    claims: list[Any] = []
    run_tick(now, enqueue=claims.extend)
    return [publish_delivery(c.delivery_id, claim_token=c.token) for c in claims]


def png_bytes(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_media(
    membership: Membership, *, alt_text: str = "", video: bool = False, **image: Any
) -> Any:
    """Store a PNG (or a small fake MP4) through the same path as the composer and the API."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from scheduler.media import save_upload

    if video:
        upload = SimpleUploadedFile(
            "clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2048, "video/mp4"
        )
    else:
        upload = SimpleUploadedFile("picture.png", png_bytes(**image), "image/png")
    return save_upload(membership, upload, alt_text=alt_text)


@pytest.fixture
def alice_client(client: Any, alice: User) -> Any:
    """Django's test client logged in as alice (owner of Acme)."""
    client.force_login(alice)
    return client


def run_at_once(function: Any, count: int = 2) -> list[Any]:
    """Call `function` in `count` threads released together. Returns what the calls returned."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(count)
    results: list[Any] = []

    def call() -> None:
        try:
            barrier.wait()
            results.append(function())
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
