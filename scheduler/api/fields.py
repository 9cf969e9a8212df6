"""JSON fields that take only the type the schema declares, and give every time in UTC.

DRF's fields coerce: "1" or 1.0 becomes 1, "yes" or 0 becomes a boolean, 42 becomes "42". The
schema says string, integer or boolean, so a request with another type is refused (400) instead
of being read as something the client may not have meant.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from rest_framework import serializers


class UTCDateTimeField(serializers.DateTimeField):
    """A time as ISO 8601 in UTC (`2026-05-01T07:30:00Z`), whoever asks: the API's one zone.

    A fixed zone also spares DRF a lookup of the active zone for every time of a long list."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)


class ModelSerializer(serializers.ModelSerializer):
    """DRF's, with the model's datetime fields given in UTC."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        # The schema's maxLength counts what was sent, before whitespace is trimmed.
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        # JSON Schema counts 2.0 as an integer; a boolean or a string is not one.
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class AccessTokenField(StrictCharField):
    """A bearer token as a network issues it: visible ASCII only, which can go in a header."""

    def __init__(self, **kwargs: Any) -> None:
        message = "An access token has no spaces or special characters: copy it again."
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(r"^[\x21-\x7e]+$", message))
