"""`{{ url|safe_link }}`: a URL from outside (a network's answer) only if it is http(s).

A hostile server can answer with `javascript:...` as a status or avatar URL; such a value becomes
an empty string, so `href`/`src` never carry it. Use it on every URL Herald did not build itself.
"""

from django import template

from ..models import web_link

register = template.Library()


@register.filter
def safe_link(value: object) -> str:
    """The URL if its scheme is http or https, else an empty string."""
    return web_link(str(value or ""))
