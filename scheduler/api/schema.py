"""What the OpenAPI schema says that the serializers alone cannot."""

from __future__ import annotations

from typing import Any


def declare_text_or_parts(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A post body carries `text` or `parts`, never both (the server refuses both with 400).

    A drf-spectacular postprocessing hook: every request body with both properties gets
    `not: {required: [text, parts]}`.
    """
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        properties = schema.get("properties", {})
        if name.endswith("Request") and {"text", "parts"} <= set(properties):
            schema["not"] = {"required": ["text", "parts"]}
    return result
