"""Cursor pagination: stable under inserts, opaque `next`/`previous` links."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    page_size_query_description = "How many results per page (1 to 200, default 50)."
    cursor_query_description = "The cursor from a `next` or `previous` link."


class OldestFirst(Cursor):
    ordering = "id"
