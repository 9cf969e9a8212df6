"""The app shell in a real browser: navigation, roles, workspace switcher, error pages."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from accounts.models import Role
from accounts.workspaces import create_workspace
from tests.browser.conftest import PHONE, check_page
from tests.conftest import add_member


def test_main_shell_pages_are_accessible_and_fit_a_phone(alice_page, mastodon_channel):
    page = alice_page
    for path, name in [("/", "posts"), ("/channels/", "channels")]:
        page.goto(path)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        check_page(page, name)

    page.goto("/compose/")
    expect(page.get_by_role("heading", name="Compose")).to_be_visible()
    check_page(page, "compose")

    page.goto("/no-such-page/")
    expect(page.get_by_role("heading", name="We couldn\u2019t find that page")).to_be_visible()
    check_page(page, "error-404")


def test_phone_menu_collapses_and_marks_the_current_page(alice_page):
    page = alice_page
    page.set_viewport_size(PHONE)
    page.goto("/channels/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="Channels")).to_have_attribute("aria-current", "page")
    nav.get_by_role("link", name="Posts").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_skip_link_moves_focus_to_the_main_content(alice_page):
    page = alice_page
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_links_follow_the_role(page, log_in, workspace, mastodon_channel):
    viewer = add_member(workspace, "vera@example.com", Role.VIEWER).user
    log_in(page, viewer)
    page.goto("/channels/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Compose")).to_have_count(0)
    expect(page.get_by_role("link", name="Connect Mastodon")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)

    page.goto("/compose/")
    expect(page.get_by_role("heading", name="You can\u2019t do that here")).to_be_visible()
    expect(page.get_by_text("Viewers cannot write posts.")).to_be_visible()
    check_page(page, "error-403")


def test_workspace_switcher_changes_the_workspace_and_says_so(alice_page, alice):
    create_workspace("Initech", owner=alice)
    page = alice_page
    page.goto("/")
    switcher = page.locator("details.workspace-switcher")
    expect(switcher.locator("summary")).to_contain_text("Acme")
    switcher.locator("summary").click()
    page.get_by_role("button", name=re.compile("^Initech")).click()
    expect(page.get_by_role("status")).to_have_text("You are now working in Initech.")
    expect(switcher.locator("summary")).to_contain_text("Initech")


def test_user_menu_logs_out_with_a_post(alice_page):
    page = alice_page
    page.goto("/")
    page.locator(
        "details.user-menu > summary", has_text="Account menu for alice@example.com"
    ).click()
    page.get_by_role("button", name="Log out").click()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_login_page_is_accessible_and_fits_a_phone(page, alice):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    check_page(page, "login")
