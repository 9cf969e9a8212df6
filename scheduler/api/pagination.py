"""Cursor pagination: stable under inserts, opaque `next`/`previous` links.

Unlike DRF's default, a bad `limit` or `cursor` is an error (400), not silently ignored.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor as CursorPosition
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from .errors import validation_error


class Cursor(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    page_size_query_description = "How many results per page (1 to 200, default 50)."
    cursor_query_description = "The cursor from a `next` or `previous` link."

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise validation_error(
                {"limit": [f"Give a whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def decode_cursor(self, request: Request) -> CursorPosition | None:
        if request.query_params.get(self.cursor_query_param) == "":
            raise validation_error({"cursor": ["Give a cursor, or leave the parameter out."]})
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise validation_error(
                {"cursor": ["This cursor is not valid: use a `next` or `previous` link as given."]}
            ) from exc

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
            elif parameter["name"] == self.cursor_query_param:
                parameter["schema"]["minLength"] = 1  # an empty cursor is refused
        return parameters
