"""The SSRF-guarded fetch and Open Graph link cards, against a local page server."""

from __future__ import annotations

import ipaddress

import pytest

from scheduler.networks.bluesky import linkcard
from scheduler.outbound import OutboundError, UnsafeURL, fetch, is_public_address
from tests.fixtures.bluesky import image_bytes


def _only(page_server, settings):
    """Allow exactly the page server's host:port (not the host name `localhost`)."""
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = [page_server.url.split("://")[1]]


def test_open_graph_card_is_read_from_the_page(page_server, settings):
    _only(page_server, settings)
    url = page_server.og_page(
        "/article",
        title="Herald &amp; friends",
        description="A scheduler for the open web",
        image="/img/cover.jpg",
    )

    card = linkcard.fetch_link_card(url)

    assert card is not None
    assert card.url == url
    assert card.title == "Herald & friends"
    assert card.description == "A scheduler for the open web"
    assert card.image_url == page_server.url + "/img/cover.jpg"


def test_page_without_open_graph_falls_back_to_title_and_description(page_server, settings):
    _only(page_server, settings)
    url = page_server.html(
        "/plain",
        '<html><head><meta charset="utf-8"><title> Plain  page </title>'
        '<meta name="description" content="Just HTML"></head></html>',
    )

    card = linkcard.fetch_link_card(url)

    assert (card.title, card.description, card.image_url) == ("Plain page", "Just HTML", "")


def test_card_is_none_for_a_missing_page(page_server, settings):
    _only(page_server, settings)
    assert linkcard.fetch_link_card(page_server.url + "/nowhere") is None
    assert linkcard.fetch_link_card(page_server.image("/pic", image_bytes(10, 10))) is None


def test_loopback_address_is_refused_unless_allowed(page_server, settings):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    url = page_server.og_page("/secret", title="internal")

    with pytest.raises(UnsafeURL, match="private or local address"):
        fetch("GET", url, max_bytes=10_000, timeout=5)
    assert linkcard.fetch_link_card(url) is None
    assert page_server.requests == []


def test_host_name_is_checked_after_dns_resolution(page_server, settings):
    # "localhost" is a name; only its resolved address (127.0.0.1 / ::1) shows it is local.
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    url = page_server.og_page("/secret", title="internal").replace("127.0.0.1", "localhost")

    with pytest.raises(UnsafeURL):
        fetch("GET", url, max_bytes=10_000, timeout=5)
    assert page_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_private_link_local_and_special_addresses_are_refused(url, settings):
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    with pytest.raises(UnsafeURL):
        fetch("GET", url, max_bytes=10_000, timeout=5)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/"])
def test_only_http_and_https_are_fetched(url):
    with pytest.raises(UnsafeURL, match="Only http and https"):
        fetch("GET", url, max_bytes=10_000, timeout=5)


def test_redirect_to_a_private_address_is_refused(page_server, settings):
    _only(page_server, settings)
    inside = page_server.og_page("/admin", title="internal").replace("127.0.0.1", "localhost")
    start = page_server.redirect("/go", inside)

    with pytest.raises(UnsafeURL):
        fetch("GET", start, max_bytes=10_000, timeout=5)
    assert [r.path for r in page_server.requests] == ["/go"]


def test_redirects_between_allowed_pages_are_followed(page_server, settings):
    _only(page_server, settings)
    final = page_server.og_page("/final", title="Arrived")
    page_server.redirect("/middle", "/final", status=301)
    start = page_server.redirect("/start", page_server.url + "/middle")

    fetched = fetch("GET", start, max_bytes=10_000, timeout=5)

    assert (fetched.status, fetched.url) == (200, final)
    assert [r.path for r in page_server.requests] == ["/start", "/middle", "/final"]
    assert page_server.requests[0].header("host") == page_server.url.split("://")[1]


def test_redirect_loops_stop(page_server, settings):
    _only(page_server, settings)
    loop = page_server.redirect("/loop", "/loop")

    with pytest.raises(OutboundError, match="Too many redirects"):
        fetch("GET", loop, max_bytes=10_000, timeout=5, max_redirects=3)
    assert len(page_server.requests) == 4


def test_body_over_the_cap_is_refused_or_truncated(page_server, settings):
    _only(page_server, settings)
    big = page_server.image("/big.jpg", b"\xff\xd8\xff" + b"x" * 50_000)

    with pytest.raises(OutboundError, match="larger than"):
        fetch("GET", big, max_bytes=10_000, timeout=5)
    fetched = fetch("GET", big, max_bytes=10_000, timeout=5, truncate=True)
    assert fetched.truncated and len(fetched.content) == 10_000


def test_a_huge_page_still_gives_the_card_from_its_head(page_server, settings):
    _only(page_server, settings)
    settings.HERALD_LINK_CARD_MAX_BYTES = 4096
    url = page_server.html(
        "/long",
        '<html><head><meta property="og:title" content="Long read"></head><body>'
        + "word " * 50_000
        + "</body></html>",
    )

    card = linkcard.fetch_link_card(url)

    assert card is not None and card.title == "Long read"


def test_slow_server_times_out(page_server, settings):
    _only(page_server, settings)
    settings.HERALD_LINK_CARD_TIMEOUT = 0.3
    url = page_server.og_page("/slow", title="Eventually")
    page_server.inject("GET", "^/slow$", delay=1.5, times=2)

    with pytest.raises(OutboundError):
        fetch("GET", url, max_bytes=10_000, timeout=0.3)
    assert linkcard.fetch_link_card(url) is None  # the card is skipped, nothing raised


def test_image_is_fetched_through_the_guard(page_server, settings):
    _only(page_server, settings)
    data = image_bytes(40, 30, fmt="JPEG")
    url = page_server.image("/cover.jpg", data)

    assert linkcard.fetch_image(url) == data
    settings.HERALD_ALLOWED_PRIVATE_HOSTS = []
    assert linkcard.fetch_image(url) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("172.16.0.1", False),
        ("fc00::1", False),
        ("2001:db8::1", False),  # documentation range
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
    ],
)
def test_public_address_classification(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public
