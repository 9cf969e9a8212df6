"""Credentials are encrypted at rest and keys can be rotated."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from scheduler import crypto
from scheduler.models import Channel

pytestmark = pytest.mark.django_db


def _raw_credentials(channel: Channel) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM scheduler_channel WHERE id = %s", [channel.pk])
        return cursor.fetchone()[0]


def test_database_holds_no_plaintext_token(mastodon_channel):
    raw = _raw_credentials(mastodon_channel)
    assert "fake-token-alice" not in raw
    assert Channel.objects.get(pk=mastodon_channel.pk).credentials == {
        "access_token": "fake-token-alice"
    }


def test_rotation_re_encrypts_with_the_new_key(mastodon_channel, settings):
    old_key = settings.HERALD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.HERALD_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys")

    settings.HERALD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert (
        Channel.objects.get(pk=mastodon_channel.pk).credentials["access_token"]
        == "fake-token-alice"
    )
    assert Fernet(new_key.encode()).decrypt(_raw_credentials(mastodon_channel).encode())


def test_unknown_key_is_a_clear_configuration_error(mastodon_channel, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.HERALD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured, match="rotate_encryption_keys"):
        Channel.objects.get(pk=mastodon_channel.pk)
    assert crypto.fernet()
