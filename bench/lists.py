"""Benchmark: server time and queries of every API list with 500 posts in the workspace.

Fills `herald_bench` like bench/post_list.py (3 channels, N posts, half of them two-part threads
on two channels, each first part with an image), then requests each list through Django's full
stack with a bearer token, at limit=200 and limit=50, and prints median/p95 server time and the
query count. It repeats with a tenth of the posts to show the counts do not grow with them.

    python bench/lists.py [--posts 500] [--runs 20]
"""

from __future__ import annotations

import argparse
import os

from common import setup_django

LISTS = ["posts", "activity", "channels", "media", "webhooks", "notifications"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    setup_django()
    from post_list import fill, measure

    print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())} (2 shared cores)")
    for posts in (args.posts // 10, args.posts):
        client, _, _ = fill(posts)
        api = api_client(client, with_media=True)
        print(f"-- {posts} posts on 3 channels")
        for name in LISTS:
            for limit in (200, 50):
                url = f"/api/v1/{name}?limit={limit}"
                measure(api, "get", url, f"{name} ({limit})", args.runs)


def api_client(client, *, with_media: bool):  # type: ignore[no-untyped-def]
    """A bearer-token client of the bench user; gives each first part an image first."""
    from django.core.files.base import ContentFile
    from rest_framework.test import APIClient

    from accounts.models import Membership
    from accounts.tokens import create_token
    from scheduler.models import Media, PartMedia, PostPart

    membership = Membership.objects.select_related("workspace").get()
    if with_media:
        media = Media(workspace=membership.workspace, kind="image", mime_type="image/png", size=67)
        media.file.save("bench.png", ContentFile(b"\x89PNG bench"), save=False)
        media.checksum = "0" * 64
        media.save()
        PartMedia.objects.bulk_create(
            PartMedia(part=part, media=media) for part in PostPart.objects.filter(position=0)
        )
    _, raw = create_token(membership, name="bench", scope="read")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


if __name__ == "__main__":
    main()
