"""Login throttling in front of Django's own backend (django-axes)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a login that django-axes has locked; otherwise lets the next backend decide.

    Every login a person makes over the web (the login page, the admin) carries its request and
    is throttled. Authentication without a request only comes from code (a shell, the test
    client's `login()`): there is nobody to throttle, and axes would raise.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
