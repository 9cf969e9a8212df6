"""Template tags of the app shell: navigation links that know where the reader is."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

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
