"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Fixtures (all tests here run with a committed database, as the live server needs):
- `chromium`: one headless Chromium for the whole session.
- `page`: a fresh browser tab (own cookies) at desktop size; closed after the test.
- `app_url(path)`: the live server's absolute URL for `path`.
- `log_in(page, user)`: logs `user` in by setting a session cookie (no login form round trip).
- `alice_page`: `page` already logged in as alice (owner of the workspace "Acme").
Helpers to import from `tests.browser.conftest`:
- `assert_accessible(page)`: runs the vendored axe-core; fails on serious/critical violations.
- `assert_no_horizontal_scroll(page)`: at 390 px wide, nothing sticks out sideways.
- `save_screenshots(page, name)`: full-page var/screenshots/<name>-desktop.png and -phone.png.
- `check_page(page, name)`: all three, the way every main page is checked.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Sync Playwright runs an event loop in this thread; Django's ORM calls from the test body are
# still synchronous and safe (the live server has its own thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = "/static/vendor/axe-core/axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Browser tests need Debian's Chromium: `apt-get install chromium` "
            "(make test installs it when run as root)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def app_url(live_server: Any) -> Callable[[str], str]:
    return lambda path="/": f"{live_server.url}{path}"


@pytest.fixture
def page(chromium: Browser, live_server: Any) -> Iterator[Page]:
    context = chromium.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    # Pages answering 4xx on purpose (an error page, a refused form) log "Failed to load
    # resource"; script errors and CSP refusals ("Refused to ...") are what must never happen.
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    # A script error or a CSP refusal is a broken page even when the assertions passed.
    assert not errors, "The browser reported errors:\n" + "\n".join(errors)


@pytest.fixture
def log_in(live_server: Any) -> Callable[[Page, Any], None]:
    from django.conf import settings
    from django.test import Client

    def _log_in(tab: Page, user: Any) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        tab.context.clear_cookies()
        tab.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
        )

    return _log_in


@pytest.fixture
def alice_page(page: Page, log_in: Callable[[Page, Any], None], alice: Any) -> Page:
    log_in(page, alice)
    return page


def assert_accessible(page: Page) -> None:
    """Fail with a readable list when axe-core finds serious or critical violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE)  # same origin, so the strict CSP allows it
    result = page.evaluate("async () => (await axe.run(document)).violations")
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    if bad:
        lines = [f"axe-core found {len(bad)} serious/critical violation(s) on {page.url}:"]
        for violation in bad:
            lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']}")
            for node in violation["nodes"][:5]:
                lines.append(f"    at {' '.join(node['target'])}: {node['failureSummary']}")
        pytest.fail("\n".join(lines), pytrace=False)


def assert_no_horizontal_scroll(page: Page) -> None:
    """At 390 px wide the page must not scroll sideways; names the elements that stick out."""
    page.set_viewport_size(PHONE)
    try:
        overflow = page.evaluate(
            """() => {
              const width = document.documentElement.clientWidth;
              if (document.documentElement.scrollWidth <= width) return null;
              const wide = [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > width + 1)
                .slice(0, 8)
                .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                           (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
                           ' (right edge ' + Math.round(el.getBoundingClientRect().right) + ' px)');
              return {scrollWidth: document.documentElement.scrollWidth, width, wide};
            }"""
        )
    finally:
        page.set_viewport_size(DESKTOP)
    if overflow:
        pytest.fail(
            f"{page.url} scrolls sideways at 390 px: {overflow['scrollWidth']} px wide "
            f"for {overflow['width']} px. Too wide: {', '.join(overflow['wide'])}",
            pytrace=False,
        )


def save_screenshots(page: Page, name: str) -> None:
    """Save full-page desktop and phone screenshots as var/screenshots/<name>-*.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    try:
        page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    finally:
        page.set_viewport_size(DESKTOP)


def check_page(page: Page, name: str) -> None:
    """What every main page gets: axe-core (desktop and phone), no sideways scroll, screenshots."""
    assert_accessible(page)
    assert_no_horizontal_scroll(page)
    page.set_viewport_size(PHONE)
    try:
        assert_accessible(page)
    finally:
        page.set_viewport_size(DESKTOP)
    save_screenshots(page, name)
