"""Template context every page gets."""

from __future__ import annotations

from django.http import HttpRequest

from .networks import NetworkEntry, entries


def networks(request: HttpRequest) -> dict[str, list[NetworkEntry]]:
    """`networks`: the registry's entries, for the "Connect <label>" navigation."""
    return {"networks": entries()}
