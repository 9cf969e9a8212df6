"""Files the composer uploaded for a post that was never saved are deleted after a day."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from scheduler.compose import PartInput, create_post
from scheduler.media import delete_unused_uploads
from scheduler.models import Media
from tests.conftest import upload_media

pytestmark = pytest.mark.django_db


def test_only_old_uploads_no_post_uses_are_deleted(membership, mastodon_channel):
    with time_machine.travel(timezone.now() - timedelta(hours=30)):
        orphan = upload_media(membership, alt_text="never posted")
        in_post = upload_media(membership, alt_text="posted")
        in_override = upload_media(membership, alt_text="own version")
    fresh = upload_media(membership, alt_text="still being written")
    create_post(
        membership,
        channels=[mastodon_channel],
        parts=[PartInput("with a picture", [in_post])],
        overrides={mastodon_channel.pk: [PartInput("own", [in_override])]},
        at=None,
        draft=True,
    )
    orphan_path = orphan.file.path

    assert delete_unused_uploads(older_than=timedelta(hours=24)) == 1

    assert set(Media.objects.values_list("pk", flat=True)) == {in_post.pk, in_override.pk, fresh.pk}
    assert not os.path.exists(orphan_path)
