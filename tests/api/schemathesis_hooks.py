"""Schemathesis hooks for the randomized CLI run (tests/api/test_schema_randomized.py).

Loaded by path (SCHEMATHESIS_HOOKS), so it imports nothing from the project: the fake servers'
addresses come from the environment the test sets.
"""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# A webhook URL the server accepts (test settings allow 127.0.0.1) that nothing listens on.
LOCAL_HOOK_URL = "http://127.0.0.1:9/hook"
# No other address the fuzzer invents may be contacted: an IP literal in TEST-NET-1 is refused
# by the server-URL check without a DNS lookup or a connection.
UNROUTABLE_URL = "https://192.0.2.1/"
# A 1x1 PNG: a valid upload, where the schema can only say "binary".
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Keep generated requests to the fakes, and make valid ones valid beyond the schema."""
    negative_body = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    negative_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    if case.headers and "Idempotency-Key" in case.headers and not negative_headers:
        # A reused key with another body is refused with 422 by design; each call is new here.
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("url"), str):
        body["url"] = LOCAL_HOOK_URL
    if "file" in body and not negative_body:
        body["file"] = PNG
    network = body.get("network")
    servers = {
        "mastodon": os.environ["HERALD_FAKE_MASTODON_URL"],
        "bluesky": os.environ["HERALD_FAKE_PDS_URL"],
    }
    if network == "bluesky" or isinstance(body.get("server_url"), str):
        body["server_url"] = servers.get(str(network), UNROUTABLE_URL)
