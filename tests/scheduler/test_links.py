"""Only http(s) URLs from a network's answers become links; pages carry a strict CSP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduler.models import Delivery, DeliveryStatus
from tests.conftest import PASSWORD, schedule, tick_and_publish

pytestmark = pytest.mark.django_db

HOSTILE_URL = "javascript:alert(document.cookie)//"


@pytest.fixture
def browser(client, alice):
    client.login(email=alice.email, password=PASSWORD)
    return client


def test_a_hostile_status_url_is_never_rendered_as_a_link(
    browser, membership, mastodon_channel, fake_mastodon
):
    fake_mastodon.inject(
        "POST",
        r"^/api/v1/statuses$",
        status=200,
        body={
            "id": "666",
            "created_at": "2026-01-01T00:00:00.000Z",
            "uri": "https://evil.example/statuses/666",
            "url": HOSTILE_URL,
            "content": "<p>hi</p>",
            "visibility": "public",
            "media_attachments": [],
            "account": {"id": "1", "acct": "alice", "username": "alice"},
        },
    )
    post = schedule(membership, [mastodon_channel], "hi")
    assert tick_and_publish() == ["published"]
    assert Delivery.objects.get().status == DeliveryStatus.PUBLISHED

    for page in ("/", f"/posts/{post.pk}/"):
        html = browser.get(page).content.decode()
        assert "javascript:" not in html, page


@pytest.mark.parametrize("value", [HOSTILE_URL, "JavaScript:x", "data:text/html,x", "//evil", ""])
def test_safe_link_drops_anything_but_http_and_https(value):
    from scheduler.templatetags.links import safe_link

    assert safe_link(value) == ""
    assert safe_link("https://mastodon.example/@a/1") == "https://mastodon.example/@a/1"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def test_pages_carry_a_strict_csp_and_no_inline_script(browser, membership, mastodon_channel):
    post = schedule(membership, [mastodon_channel], "hi", at=timezone.now() + timedelta(days=1))
    pages = [reverse("scheduler:dashboard"), reverse("scheduler:compose")]
    pages += [reverse("scheduler:post_detail", args=[post.pk]), "/api/v1/docs/", "/admin/"]
    pages += [reverse("scheduler:connect_mastodon"), reverse("accounts:api_tokens")]
    pages += [reverse("scheduler:calendar"), reverse("scheduler:feed_settings")]
    pages += [
        reverse(name, args=[mastodon_channel.pk])
        for name in ("scheduler:queue", "scheduler:schedule")
    ]
    for page in pages:
        response = browser.get(page, follow=True)
        assert response.status_code == 200, page
        policy = response.headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'", page
        assert directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), page
        assert not EVENT_HANDLER.search(html), page


def test_api_docs_start_up_script_is_served_as_a_file(client):
    response = client.get("/api/v1/docs/?script=")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in response.content


def test_https_responses_carry_hsts(client):
    response = client.get("/login/", secure=True)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
