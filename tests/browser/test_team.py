"""A team in a real browser: first run, invitations received by email, a contributor's post
approved (and published by the real worker) or rejected, a comment with a mention, the activity
log. Emails travel through a real SMTP server; the worker sends the notification emails."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import Membership, Role, Workspace
from scheduler.models import DeliveryStatus, Post, PostStatus
from tests.browser.conftest import DESKTOP, check_page
from tests.conftest import make_mastodon_channel
from tests.fixtures.mail import links

pytestmark = pytest.mark.e2e
PASSWORD = "a long team passphrase 9"


@pytest.fixture
def worker_with_mail(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Any:
    """The real worker and beat, sending their emails to the test's SMTP server."""
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)  # the processes inherit the environment
    return request.getfixturevalue("celery_processes")


def new_tab(chromium: Browser, live_server: Any) -> Page:
    context = chromium.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(20_000)
    return context.new_page()


def accept_invitation(tab: Page, smtp_server: Any, email: str, live_server: Any) -> None:
    (message,) = smtp_server.wait_for(email)
    (link,) = links(message)
    assert link.startswith(live_server.url + "/invite/")
    tab.goto(link)
    expect(tab.get_by_role("heading", name="Join Acme")).to_be_visible()
    tab.get_by_label("Your name").fill(email.split("@")[0].title())
    tab.get_by_label("Choose a password").fill(PASSWORD)
    tab.get_by_role("button", name="Accept and create my account").click()
    expect(tab.get_by_text("You joined Acme.")).to_be_visible()


def compose(tab: Page, channel_handle: str, text: str) -> int:
    """The contributor writes a post in the composer and asks to share it now."""
    tab.goto("/compose/")
    tab.locator(f"[data-channel][data-handle='{channel_handle}']").check()
    tab.get_by_label("Text of part 1", exact=True).fill(text)
    tab.get_by_label("Share now").check()
    tab.get_by_role("button", name="Share now").click()
    expect(tab.get_by_text("Awaiting approval", exact=True)).to_be_visible()
    return int(re.search(r"/posts/(\d+)/", tab.url).group(1))  # type: ignore[union-attr]


def test_team_invites_reviews_publishes_and_keeps_a_log(
    page: Page,
    chromium: Browser,
    live_server: Any,
    smtp_server: Any,
    worker_with_mail: Any,
    fake_mastodon: Any,
    settings: Any,
    app_url: Callable[[str], str],
) -> None:
    settings.PUBLIC_URL = live_server.url  # links in emails point at this server

    # First run: nobody has an account, so Herald asks for the first owner.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    expect(page.get_by_role("heading", name="Welcome to Herald")).to_be_visible()
    check_page(page, "team-first-run")
    page.get_by_label("Your name").fill("Olga Owner")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Workspace name").fill("Acme")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Create my account and workspace").click()
    expect(page.get_by_text("Welcome! You own Acme.")).to_be_visible()
    workspace = Workspace.objects.get(name="Acme")
    channel = make_mastodon_channel(workspace, fake_mastodon)

    # The owner invites an editor and a contributor; both accept from the emailed link.
    page.goto("/settings/members/")
    for email, role in [
        ("editor@example.com", "editor"),
        ("contributor@example.com", "contributor"),
    ]:
        page.get_by_label("Email").fill(email)
        page.get_by_label("Role", exact=True).select_option(role)
        page.get_by_role("button", name="Send invitation").click()
        expect(page.get_by_text(f"Invitation sent to {email}.")).to_be_visible()
    check_page(page, "team-members")
    editor, contributor = new_tab(chromium, live_server), new_tab(chromium, live_server)
    accept_invitation(editor, smtp_server, "editor@example.com", live_server)
    accept_invitation(contributor, smtp_server, "contributor@example.com", live_server)
    roles = dict(Membership.objects.filter(workspace=workspace).values_list("user__email", "role"))
    assert roles == {
        "owner@example.com": Role.OWNER,
        "editor@example.com": Role.EDITOR,
        "contributor@example.com": Role.CONTRIBUTOR,
    }

    # The contributor composes; the post waits. The editor approves it from the review queue.
    first = compose(contributor, channel.handle, "Our launch is today!")
    assert Post.objects.get(pk=first).status == PostStatus.PENDING_APPROVAL
    editor.goto("/")
    expect(editor.get_by_role("link", name=re.compile(r"Review 1"))).to_be_visible()
    editor.get_by_role("link", name=re.compile(r"Review 1")).click()
    expect(editor.get_by_role("heading", name=re.compile("Review queue"))).to_be_visible()
    check_page(editor, "team-review-queue")
    editor.get_by_role("link", name="Our launch is today!").click()
    check_page(editor, "team-post-pending")
    editor.get_by_role("button", name="Approve").click()
    expect(editor.get_by_text("Approved: the post is scheduled.")).to_be_visible()
    worker_with_mail.wait_for(
        lambda: [s["text"] for s in fake_mastodon.statuses] == ["Our launch is today!"],
        timeout=60,
        what="the approved post on the fake Mastodon",
    )
    worker_with_mail.wait_for(
        lambda: Post.objects.get(pk=first).deliveries.get().status == DeliveryStatus.PUBLISHED,
        timeout=30,
        what="the delivery to be marked published",
    )

    # The contributor is told: in the app (the bell) and by email (sent by the worker).
    contributor.goto("/")
    bell = contributor.get_by_role("link", name=re.compile(r"Notifications: ?\d+ unread"))
    expect(bell).to_be_visible()
    bell.click()
    expect(contributor.get_by_role("link", name=re.compile("approved “Our launch"))).to_be_visible()
    check_page(contributor, "team-notifications")
    approved_mail = smtp_server.wait_for("contributor@example.com", count=2)[-1]
    assert "approved" in str(approved_mail["Subject"])
    contributor.get_by_role("button", name="Mark read").click()  # htmx: in place
    expect(contributor.get_by_role("link", name=re.compile("none unread"))).to_be_visible()
    expect(contributor.get_by_role("button", name="Mark read")).to_have_count(0)
    assert contributor.url.endswith("/notifications/")

    # The reject path: a reason goes back to the author, nothing is published.
    second = compose(contributor, channel.handle, "A draft with a typo")
    editor.goto(f"/posts/{second}/")
    editor.get_by_label("Reason for rejecting").fill("Fix the typo in the first line")
    editor.get_by_role("button", name="Reject").click()
    expect(editor.get_by_text("Rejected: the post went back to its author")).to_be_visible()
    contributor.goto("/notifications/")
    expect(contributor.get_by_text(re.compile("Fix the typo in the first line"))).to_be_visible()
    assert Post.objects.get(pk=second).status == PostStatus.DRAFT

    # A comment with a mention notifies the member mentioned.
    editor.goto(f"/posts/{first}/")
    editor.get_by_label("Add a comment").fill("Great numbers, @contributor, thanks!")
    editor.get_by_role("button", name="Comment").click()
    expect(editor.get_by_text("Comment added; notified Contributor.")).to_be_visible()
    check_page(editor, "team-post-comments")
    contributor.goto("/notifications/")
    expect(contributor.get_by_text(re.compile("mentioned you"))).to_be_visible()
    expect(
        contributor.get_by_role("link", name=re.compile(r"Notifications: ?2 unread"))
    ).to_be_visible()
    contributor.get_by_role("button", name="Mark all read").click()
    expect(contributor.get_by_role("link", name=re.compile("none unread"))).to_be_visible()

    # The activity log shows each step, in the reader's time zone.
    page.goto("/activity/")
    log = page.locator(".activity-list")
    for text in [
        "invited editor@example.com",
        "Contributor joined as contributor",
        "submitted for approval",
        "approved",
        "published",
        "rejected",
        "Fix the typo in the first line",
        "commented on",
    ]:
        expect(log).to_contain_text(text)
    expect(page.get_by_text("Times in Europe/Berlin.")).to_be_visible()
    check_page(page, "team-activity")
    page.get_by_label("What").select_option("rejected")
    page.get_by_role("button", name="Filter").click()
    expect(log.locator("li")).to_have_count(1)
    editor.context.close()
    contributor.context.close()
    assert app_url("/") == live_server.url + "/"


def test_long_review_queue_comes_in_pages_and_members_get_role_forms(
    alice_page: Page, membership: Membership, mastodon_channel: Any
) -> None:
    from django.utils import timezone

    from scheduler.team_views import REVIEW_PAGE
    from tests.conftest import add_member, schedule

    page = alice_page
    contributor = add_member(membership.workspace, "carol@example.com", Role.CONTRIBUTOR)
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        add_member(membership.workspace, f"{role}@example.com", role)
    later = timezone.now() + timedelta(days=2)
    for n in range(REVIEW_PAGE + 3):
        schedule(contributor, [mastodon_channel], f"Pending post {n:02d}.", at=later)

    page.goto("/review/")
    expect(page.get_by_text(f"{REVIEW_PAGE + 3} posts await approval")).to_be_visible()
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Newer").click()
    expect(page.locator(".review-item")).to_have_count(3)
    check_page(page, "team-review-queue-page-2")
    last = page.locator(".review-item").last
    expect(last).to_contain_text(f"Pending post {REVIEW_PAGE + 2:02d}.")
    last.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approved: the post is scheduled.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/review/\?page=2$"))
    expect(page.locator(".review-item")).to_have_count(2)

    page.goto("/settings/members/")
    page.get_by_label("Role of viewer@example.com").select_option("editor")
    page.get_by_label("Role of viewer@example.com").locator("..").get_by_role(
        "button", name="Change role"
    ).click()
    expect(page.get_by_text("viewer@example.com is now Editor.")).to_be_visible()
    expect(page.get_by_label("Role of viewer@example.com")).to_have_value("editor")
    check_page(page, "team-members-roles")
