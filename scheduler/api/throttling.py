"""Rate limit per token: a fixed one-minute window counted in the cache (Redis when set)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from .authentication import TokenAuth

WINDOW = 60


class TokenRateThrottle(BaseThrottle):
    """HERALD_API_RATE_LIMIT requests per token per minute; 429 with Retry-After beyond."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, TokenAuth):
            return True  # unauthenticated requests are refused before they cost anything
        now = time.time()
        window = int(now // WINDOW)
        # Keyed by the token's hash, not its id: ids repeat when a database is recreated.
        key = f"herald:api-rate:{request.auth.token.token_hash[:32]}:{window}"
        # add() then incr() is atomic on Redis: concurrent requests never share a count.
        cache.add(key, 0, timeout=WINDOW * 2)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=WINDOW * 2)
            count = 1
        self.retry_after = (window + 1) * WINDOW - now
        return bool(count <= settings.HERALD_API_RATE_LIMIT)

    def wait(self) -> float | None:
        return getattr(self, "retry_after", None)
