"""The composer in a real browser: threads, media, counters, errors, drafts, publishing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from scheduler.models import Delivery, DeliveryStatus, Media, Post, PostStatus
from tests.browser.conftest import check_page
from tests.conftest import png_bytes
from tests.fixtures.bluesky import make_bluesky_channel


def picture(name: str = "photo.png") -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": png_bytes(120, 80, "teal")}


def part(page: Page, index: int):
    return page.locator("[data-part-list][data-prefix=part] > [data-part]").nth(index)


def choose_channel(page: Page, handle: str) -> None:
    page.locator(f"[data-channel][data-handle='{handle}']").check()


def upload_picture(page: Page, index: int, alt: str, name: str = "photo.png") -> None:
    target = part(page, index)
    target.locator("[data-media-input]").set_input_files(picture(name))
    alt_box = target.locator("[data-media-item] [data-alt]").last
    expect(alt_box).to_be_visible()
    alt_box.fill(alt)


@pytest.mark.e2e
def test_thread_with_image_and_alt_text_goes_out_to_mastodon_and_bluesky(
    celery_processes, alice_page, membership, mastodon_channel, fake_mastodon, fake_pds
):
    bluesky = make_bluesky_channel(membership.workspace, fake_pds)
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, mastodon_channel.handle)
    choose_channel(page, bluesky.handle)
    part(page, 0).locator("[data-part-text]").fill("Launch day! Here is the plan.")
    upload_picture(page, 0, "A teal rectangle, our new logo")
    page.get_by_role("button", name="+ Add a part").first.click()
    part(page, 1).locator("[data-part-text]").fill("Step two: tell everyone.")
    page.get_by_role("button", name="+ Add a part").first.click()
    part(page, 2).locator("[data-part-text]").fill("Step three: celebrate.")
    expect(page.locator("[data-previews] .preview")).to_have_count(2)
    expect(page.locator("[data-previews] .preview-bluesky .preview-alt")).to_have_text(
        "ALT: A teal rectangle, our new logo"
    )
    check_page(page, "compose-filled")
    page.get_by_label("Share now").check()
    page.get_by_role("button", name="Share now").click()

    expect(page.get_by_role("status").first).to_contain_text("Publishing now to 2 channels")
    post = Post.objects.get()
    celery_processes.wait_for(
        lambda: post.deliveries.filter(status=DeliveryStatus.PUBLISHED).count() == 2,
        timeout=60,
        what="both deliveries to be published",
    )
    texts = [status["text"] for status in fake_mastodon.statuses]
    assert texts == [
        "Launch day! Here is the plan.",
        "Step two: tell everyone.",
        "Step three: celebrate.",
    ]
    first_media = fake_mastodon.media[fake_mastodon.statuses[0]["media_ids"][0]]
    assert first_media["description"] == "A teal rectangle, our new logo"
    assert fake_mastodon.statuses[1]["in_reply_to_id"] == fake_mastodon.statuses[0]["id"]
    records = sorted(fake_pds.posts, key=lambda r: r.created_at)
    assert [r.value["text"] for r in records] == texts
    assert records[0].value["embed"]["images"][0]["alt"] == "A teal rectangle, our new logo"
    assert records[2].value["reply"]["parent"]["uri"] == records[1].uri
    page.reload()
    expect(page.locator("#post-status")).to_have_text("Published")
    expect(page.get_by_role("link", name=re.compile("View part 1 on Bluesky"))).to_be_visible()
    check_page(page, "post-published")


def test_bluesky_counter_turns_red_at_301_graphemes_and_offers_a_split(
    alice_page, membership, fake_pds
):
    bluesky = make_bluesky_channel(membership.workspace, fake_pds)
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, bluesky.handle)
    text = part(page, 0).locator("[data-part-text]")
    counter = part(page, 0).locator(".counter[data-network=bluesky]")
    text.fill("é" * 300)
    expect(counter).to_have_text("Bluesky 300/300")
    expect(counter).not_to_have_class(re.compile("over"))
    text.fill("🇺🇦" + "é" * 300)  # a flag is one grapheme (two code points)
    expect(counter).to_have_text("Bluesky 301/300 · 1 over")
    expect(counter).to_have_class(re.compile("over"))
    assert counter.evaluate("el => getComputedStyle(el).color") == "rgb(180, 35, 24)"

    text.fill("This sentence is short. " * 20)
    part(page, 0).get_by_role("button", name=re.compile("Split into 2 parts")).click()
    expect(page.locator("[data-part-list][data-prefix=part] > [data-part]")).to_have_count(2)
    expect(part(page, 1).locator(".counter")).to_have_text(re.compile(r"Bluesky \d+/300$"))


def test_crlf_text_with_dash_lines_becomes_a_thread(alice_page, mastodon_channel):
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, mastodon_channel.handle)
    part(page, 0).locator("[data-part-text]").fill("One\n---\nTwo\r\n---\r\nThree")
    page.get_by_label("Save as draft").check()
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved as a draft")

    post = Post.objects.get()
    assert [p.text for p in post.parts.all()] == ["One", "Two", "Three"]


def test_an_error_keeps_every_field_choice_and_file(
    alice_page, membership, mastodon_channel, fake_pds
):
    bluesky = make_bluesky_channel(membership.workspace, fake_pds)
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, mastodon_channel.handle)
    choose_channel(page, bluesky.handle)
    part(page, 0).locator("[data-part-text]").fill("First part")
    upload_picture(page, 0, "A chart of growth")
    page.get_by_role("button", name="+ Add a part").first.click()
    part(page, 1).locator("[data-part-text]").fill("Second part")
    override = page.locator(f"[data-override='{bluesky.pk}']")
    override.locator("summary").click()
    override.get_by_label(re.compile("Use its own version")).check()
    override.locator("[data-part] [data-part-text]").first.fill("Bluesky's own first part")
    page.get_by_label("Content warning").fill("Spoilers")
    page.get_by_label("Visibility").select_option("unlisted")
    page.get_by_label(re.compile("^Language")).fill("de")
    page.get_by_label(re.compile("^Tags")).fill("launch, q4")
    page.get_by_label("Schedule at").check()
    past = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.locator("#scheduled_at").fill(past)
    page.get_by_role("button", name="Schedule").click()

    expect(page.get_by_role("alert")).to_contain_text("This time has passed")
    expect(page.locator("#when-error")).to_contain_text("This time has passed")
    expect(page.locator(f"[data-channel][value='{mastodon_channel.pk}']")).to_be_checked()
    expect(page.locator(f"[data-channel][value='{bluesky.pk}']")).to_be_checked()
    expect(part(page, 0).locator("[data-part-text]")).to_have_value("First part")
    expect(part(page, 1).locator("[data-part-text]")).to_have_value("Second part")
    expect(part(page, 0).locator("[data-alt]")).to_have_value("A chart of growth")
    expect(part(page, 0).locator("img.thumb")).to_be_visible()
    expect(override.locator("[data-override-toggle]")).to_be_checked()
    expect(override.locator("[data-part] [data-part-text]").first).to_have_value(
        "Bluesky's own first part"
    )
    expect(page.get_by_label("Content warning")).to_have_value("Spoilers")
    expect(page.get_by_label("Visibility")).to_have_value("unlisted")
    expect(page.get_by_label(re.compile("^Language"))).to_have_value("de")
    expect(page.get_by_label(re.compile("^Tags"))).to_have_value("launch, q4")
    expect(page.get_by_label("Schedule at")).to_be_checked()
    expect(page.locator("#scheduled_at")).to_have_value(past)
    assert not Post.objects.exclude(status=PostStatus.DRAFT).exists()
    check_page(page, "compose-error")

    future = timezone.localtime(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    page.locator("#scheduled_at").fill(future)
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("status").first).to_contain_text("Scheduled for")
    post = Post.objects.get()
    assert post.status == PostStatus.SCHEDULED
    assert post.options == {
        "content_warning": "Spoilers",
        "visibility": "unlisted",
        "language": "de",
    }
    assert post.tags == ["launch", "q4"]
    assert Media.objects.get().alt_text == "A chart of growth"
    assert (
        Delivery.objects.get(channel=bluesky).override_parts[0]["text"]
        == "Bluesky's own first part"
    )


def test_a_draft_autosaves_and_comes_back_after_a_reload(alice_page, mastodon_channel):
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, mastodon_channel.handle)
    part(page, 0).locator("[data-part-text]").fill("Half a thought")
    upload_picture(page, 0, "A sketch")
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved", timeout=20_000)
    expect(page).to_have_url(re.compile(r"/posts/\d+/edit/$"))
    page.reload()

    expect(part(page, 0).locator("[data-part-text]")).to_have_value("Half a thought")
    expect(part(page, 0).locator("[data-alt]")).to_have_value("A sketch")
    expect(page.locator(f"[data-channel][value='{mastodon_channel.pk}']")).to_be_checked()
    expect(page.get_by_label("Save as draft")).to_be_checked()
    assert Post.objects.get().status == PostStatus.DRAFT


def test_leaving_with_unsaved_changes_asks_first(alice_page, mastodon_channel):
    page = alice_page
    page.goto("/compose/")
    part(page, 0).locator("[data-part-text]").fill("Not saved yet")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.get_by_role("link", name="Posts").click()
    page.wait_for_timeout(300)
    assert dialogs == ["beforeunload"]
    expect(part(page, 0).locator("[data-part-text]")).to_have_value("Not saved yet")


def test_bluesky_preview_shows_the_link_card_it_will_attach(
    alice_page, membership, fake_pds, page_server
):
    bluesky = make_bluesky_channel(membership.workspace, fake_pds)
    link = page_server.og_page("/launch", title="Our launch", description="All the news")
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, bluesky.handle)
    part(page, 0).locator("[data-part-text]").fill(f"Read this: {link}")

    card = page.locator(".preview-bluesky .link-card")
    expect(card.locator(".link-card-title")).to_have_text("Our launch")
    expect(card.locator(".link-card-desc")).to_have_text("All the news")
    expect(page.locator(".preview-bluesky .pv-link")).to_have_text(link)


def test_add_to_queue_shows_the_slot_it_takes_and_says_so(alice_page, mastodon_channel):
    from scheduler import queue

    every_day = {day: ["09:00", "18:00"] for day in queue.WEEKDAYS}
    queue.set_schedule(mastodon_channel, timezone_name="UTC", slots=every_day)
    slot = queue.free_slots(mastodon_channel, count=1)[0]
    shown = timezone.localtime(slot).strftime("%a %-d %b %Y, %H:%M")
    page = alice_page
    page.goto("/compose/")
    choose_channel(page, mastodon_channel.handle)
    part(page, 0).locator("[data-part-text]").fill("Whenever suits")
    slots = page.locator("[data-slots=queue]")
    expect(slots).to_contain_text(f"{mastodon_channel.handle}: {shown}")
    page.locator("input[name=when][value=queue]").check()
    page.get_by_role("button", name="Add to queue").click()

    expect(page.get_by_role("status").first).to_contain_text(
        f"Added to the queue: {mastodon_channel.handle} at {shown}"
    )
    delivery = Delivery.objects.get()
    assert (delivery.due_at, delivery.pinned) == (slot, False)
