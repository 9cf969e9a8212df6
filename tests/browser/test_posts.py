"""Post pages in a real browser: list, filters, bulk actions, and what can be done to a post."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta

from django.utils import timezone
from playwright.sync_api import expect

from scheduler.models import Delivery, DeliveryStatus, Post, PostStatus
from tests.browser.conftest import check_page
from tests.conftest import schedule


def later(days: int = 2) -> datetime:
    return (timezone.now() + timedelta(days=days)).replace(second=0, microsecond=0)


def test_edit_changes_the_text_and_keeps_the_time(alice_page, membership, mastodon_channel):
    due = later()
    post = schedule(membership, [mastodon_channel], "Old words", at=due)
    page = alice_page
    page.goto(f"/posts/{post.pk}/")
    page.get_by_role("link", name="Edit").click()
    text = page.locator("[data-part-list][data-prefix=part] [data-part-text]").first
    expect(text).to_have_value("Old words")
    expect(page.get_by_label(re.compile("Keep its time"))).to_be_checked()
    check_page(page, "compose-edit")
    text.fill("New words")
    page.get_by_role("button", name="Save changes").click()

    expect(page.locator(".sent-text")).to_have_text("New words")
    post.refresh_from_db()
    assert [p.text for p in post.parts.all()] == ["New words"]
    assert post.deliveries.get().due_at == due


def test_reschedule_moves_the_post_in_the_readers_time_zone(
    alice_page, alice, membership, mastodon_channel
):
    alice.timezone = "Europe/Berlin"
    alice.save()
    post = schedule(membership, [mastodon_channel], "Move me", at=later())
    page = alice_page
    page.goto(f"/posts/{post.pk}/")
    expect(page.get_by_text("times in Europe/Berlin")).to_be_visible()
    moved = later(5)
    target = moved.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    page.get_by_label(re.compile("Reschedule to")).fill(target.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Reschedule").click()

    expect(page.get_by_role("status")).to_have_text("Rescheduled 1 channel.")
    assert post.deliveries.get().due_at == moved

    past = (timezone.now() - timedelta(hours=3)).astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    page.get_by_label(re.compile("Reschedule to")).fill(past.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Reschedule").click()
    expect(page.get_by_role("alert")).to_contain_text("Not rescheduled: This time has passed")
    assert post.deliveries.get().due_at == moved


def test_duplicate_makes_a_new_draft_with_the_same_content(
    alice_page, membership, mastodon_channel
):
    post = schedule(membership, [mastodon_channel], "Say it", "Twice", at=later())
    page = alice_page
    page.goto(f"/posts/{post.pk}/")
    page.get_by_role("button", name="Duplicate").click()

    expect(page.get_by_role("status").first).to_contain_text("Duplicated as a new draft")
    texts = page.locator("[data-part-list][data-prefix=part] [data-part-text]")
    expect(texts).to_have_count(2)
    expect(texts.nth(1)).to_have_value("Twice")
    copy = Post.objects.exclude(pk=post.pk).get()
    assert copy.status == PostStatus.DRAFT
    assert post.deliveries.get().status == DeliveryStatus.SCHEDULED


def test_cancel_asks_first_and_is_never_offered_once_published(
    alice_page, membership, mastodon_channel
):
    post = schedule(membership, [mastodon_channel], "Maybe not", at=later())
    page = alice_page
    page.goto(f"/posts/{post.pk}/")
    page.get_by_role("link", name="Cancel post…").click()
    expect(page.get_by_role("heading", name="Cancel this post?")).to_be_visible()
    assert post.deliveries.get().status == DeliveryStatus.SCHEDULED
    check_page(page, "confirm-cancel")
    page.get_by_role("button", name="Yes, cancel it").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Cancelled: 1 channel will not get this post."
    )
    expect(page.locator("#post-status")).to_have_text("Cancelled")
    expect(page.get_by_role("link", name="Cancel post…")).to_have_count(0)

    Delivery.objects.filter(post=post).update(status=DeliveryStatus.PUBLISHED)
    Post.objects.filter(pk=post.pk).update(status=PostStatus.SCHEDULED)
    page.reload()
    expect(page.locator("#post-status")).to_have_text("Published")
    expect(page.get_by_role("link", name="Cancel post…")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)


def test_a_javascript_status_url_is_never_a_link(alice_page, membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "Hostile server", at=later())
    Delivery.objects.filter(post=post).update(
        status=DeliveryStatus.PUBLISHED,
        published_at=timezone.now(),
        part_states=[{"remote_id": "1", "url": "javascript:alert(document.cookie)"}],
    )
    page = alice_page
    page.goto(f"/posts/{post.pk}/")

    expect(page.get_by_text("not a web link, so Herald does not show it")).to_be_visible()
    assert "javascript:" not in page.content()
    assert page.locator("a[href^='javascript']").count() == 0
    page.goto("/")
    assert page.locator("a[href^='javascript']").count() == 0


def test_post_list_filters_pages_and_bulk_actions(alice_page, membership, mastodon_channel):
    for n in range(27):
        schedule(membership, [mastodon_channel], f"Routine post {n}", at=later(n + 1))
    special = schedule(membership, [mastodon_channel], "Needle in the stack", at=later(40))
    Post.objects.filter(pk=special.pk).update(tags=["launch"])
    failed = schedule(membership, [mastodon_channel], "This one failed", at=later(41))
    Delivery.objects.filter(post=failed).update(
        status=DeliveryStatus.FAILED, last_error="The server said no."
    )
    page = alice_page
    page.goto("/")
    expect(page.get_by_text("29 posts · times in UTC")).to_be_visible()
    expect(page.locator(".post-row")).to_have_count(25)
    expect(page.locator(".post-row").first).to_contain_text("This one failed")  # latest first
    check_page(page, "post-list")
    page.get_by_role("link", name="Next →").click()
    expect(page.locator(".post-row")).to_have_count(4)

    page.goto("/")
    page.get_by_label("Search").fill("needle")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".post-row")).to_have_count(1)
    page.goto("/?tag=launch")
    expect(page.locator(".post-row")).to_contain_text("Needle in the stack")
    page.goto("/?status=failed")
    expect(page.locator(".post-row")).to_have_count(1)
    expect(page.locator(".post-row .badge").first).to_have_text("Failed")

    page.get_by_label(f"Select post {failed.pk}").check()
    page.get_by_role("button", name="Retry failed").click()
    expect(page.get_by_role("status")).to_have_text("Retrying 1 failed or missed delivery now.")
    assert Delivery.objects.get(post=failed).status == DeliveryStatus.SCHEDULED

    page.goto("/?q=routine+post+1")
    rows = page.locator(".post-select")
    expect(rows).to_have_count(11)  # "Routine post 1" and 10 to 19
    for n in range(11):
        rows.nth(n).check()
    page.get_by_role("button", name="Cancel…").click()
    expect(page.get_by_role("heading", name="Cancel 11 posts?")).to_be_visible()
    assert not Post.objects.filter(status=PostStatus.CANCELLED).exists()
    page.get_by_role("button", name="Yes, cancel 11 posts").click()
    expect(page.get_by_role("status")).to_have_text("Cancelled 11 posts (11 deliveries).")
    assert Post.objects.filter(status=PostStatus.CANCELLED).count() == 11


def test_a_failed_delivery_says_what_happened_and_can_be_retried(
    alice_page, membership, mastodon_channel
):
    post = schedule(membership, [mastodon_channel], "Too spicy", at=later())
    Delivery.objects.filter(post=post).update(
        status=DeliveryStatus.FAILED,
        attempts=1,
        last_error="Mastodon rejected the post: Validation failed: spam.",
        last_error_code="rejected",
    )
    page = alice_page
    page.goto(f"/posts/{post.pk}/")
    expect(page.locator("#post-status")).to_have_text("Failed")
    expect(page.get_by_role("alert")).to_contain_text("Validation failed: spam.")
    expect(page.get_by_role("alert")).to_contain_text("What to do")
    check_page(page, "post-failed")
    page.get_by_role("button", name="Retry now").click()

    expect(page.get_by_role("status")).to_have_text(f"Retrying on {mastodon_channel.handle} now.")
    expect(page.locator("#post-status")).to_have_text("Scheduled")
    assert Delivery.objects.get(post=post).status == DeliveryStatus.SCHEDULED
