"""Keeping channels healthy: periodic verification marks dead tokens, never transient failures."""

from __future__ import annotations

import pytest

from scheduler.channels import verify_channel
from scheduler.models import ChannelStatus

pytestmark = pytest.mark.django_db


def test_revoked_token_marks_channel_needs_reconnect(mastodon_channel, fake_mastodon):
    fake_mastodon.revoke("fake-token-alice")

    assert verify_channel(mastodon_channel) is False

    mastodon_channel.refresh_from_db()
    assert mastodon_channel.status == ChannelStatus.NEEDS_RECONNECT
    assert "no longer accepts" in mastodon_channel.status_detail


def test_server_outage_does_not_disconnect(mastodon_channel, fake_mastodon):
    fake_mastodon.inject("GET", r"verify_credentials", status=503)

    assert verify_channel(mastodon_channel) is True

    mastodon_channel.refresh_from_db()
    assert mastodon_channel.status == ChannelStatus.ACTIVE
    assert mastodon_channel.last_verified_at is None


def test_working_token_updates_profile_and_verified_time(mastodon_channel, fake_mastodon):
    assert verify_channel(mastodon_channel) is True

    mastodon_channel.refresh_from_db()
    assert mastodon_channel.last_verified_at is not None
    assert mastodon_channel.display_name
    assert len(fake_mastodon.requests_to("GET", r"verify_credentials")) == 1
