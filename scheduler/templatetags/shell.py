"""Template tags of the app shell: navigation links that know where the reader is."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(
    context: template.Context, view_name: str, label: str, section: str = ""
) -> SafeString:
    """A nav link; `aria-current="page"` on the page itself, `"true"` anywhere in its section.

    `section` is a path prefix that also belongs to the link (e.g. "/posts/" for the post list).
    """
    url = reverse(view_name)
    request = context.get("request")
    path = request.path if request else ""
    current = ""
    if path == url:
        current = "page"
    elif (url != "/" and path.startswith(url)) or (section and path.startswith(section)):
        current = "true"
    if current:
        return format_html('<a href="{}" aria-current="{}">{}</a>', url, current, label)
    return format_html('<a href="{}">{}</a>', url, label)


@register.filter
def overall_label(value: str) -> str:
    """The wording of an overall post status (scheduler.overview.OverallStatus)."""
    from scheduler.overview import OverallStatus

    return str(OverallStatus(value).label) if value in OverallStatus.values else value


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """`mapping[key]`, trying the key as given and as a string; [] when missing."""
    if not mapping:
        return []
    return mapping.get(key, mapping.get(str(key), []))


_HIGHLIGHT = re.compile(r"(https?://[^\s<>\"]+)|(@[\w.-]+(?:@[\w.-]+\.[a-z]{2,})?)|(#\w+)", re.I)


@register.filter
def highlight(text: str) -> SafeString:
    """Escaped text with links, mentions and hashtags marked for the previews (not clickable)."""
    out, last = [], 0
    for match in _HIGHLIGHT.finditer(text or ""):
        out.append(escape(text[last : match.start()]))
        kind = "link" if match.group(1) else "mention" if match.group(2) else "tag"
        out.append(format_html('<span class="pv-{}">{}</span>', kind, match.group(0)))
        last = match.end()
    out.append(escape((text or "")[last:]))
    return mark_safe("".join(out))


@register.filter
def index(sequence: Any, position: int) -> Any:
    try:
        return sequence[position]
    except (IndexError, TypeError, KeyError):
        return None


@register.filter
def first_link(text: str) -> str:
    """The link Bluesky builds its card from (the publisher's own rule), or ""."""
    from scheduler.networks.bluesky.network import first_link as bluesky_first_link

    return bluesky_first_link(text or "") or ""


@register.filter
def shown_status(delivery: Any) -> Any:
    """A delivery's status in the overall wording (scheduler.overview.delivery_status)."""
    from scheduler.overview import delivery_status

    return delivery_status(delivery, delivery.post)
