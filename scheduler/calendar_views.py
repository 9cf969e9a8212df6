"""HTML views for the content calendar, posting schedules, queues and the calendar feed."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from . import feeds


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The secret iCalendar feed; 404 for an unknown or revoked token."""
    feed = feeds.find_feed(token)
    if feed is None:
        raise Http404("No calendar feed at this address; it may have been turned off.")
    response = HttpResponse(feeds.render_feed(feed), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="herald.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
