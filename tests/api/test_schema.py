"""The OpenAPI schema: served, offline docs, and a schemathesis run that must find no 5xx and no
response contradicting the schema (bounded examples, so it runs in every `make test`)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Membership
from accounts.tokens import create_token
from tests.fixtures.api import API

# Examples per operation; the whole run stays well under a minute.
MAX_EXAMPLES = 25
# No network address the fuzzer invents may be contacted: an IP literal in TEST-NET-1 is refused
# by the server-URL check without a DNS lookup or a connection.
UNROUTABLE_URL = "https://192.0.2.1/hook"


def test_schema_is_served_as_openapi_3_with_every_endpoint(db):
    response = APIClient().get(f"{API}/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(schema["paths"]) >= {
        f"{API}/me",
        f"{API}/channels",
        f"{API}/channels/{{id}}",
        f"{API}/channels/{{id}}/schedule",
        f"{API}/channels/{{id}}/queue",
        f"{API}/channels/{{id}}/queue/reorder",
        f"{API}/channels/{{id}}/queue/shuffle",
        f"{API}/media",
        f"{API}/media/{{id}}",
        f"{API}/posts",
        f"{API}/posts/{{id}}",
        f"{API}/posts/{{id}}/share-now",
        f"{API}/deliveries/{{id}}/retry",
        f"{API}/webhooks",
        f"{API}/webhooks/{{id}}",
        f"{API}/webhooks/{{id}}/deliveries",
        f"{API}/posts/{{id}}/approve",
        f"{API}/posts/{{id}}/reject",
        f"{API}/posts/{{id}}/comments",
        f"{API}/activity",
        f"{API}/notifications",
        f"{API}/notifications/read",
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            if method == "post":
                names = [p["name"] for p in operation.get("parameters", [])]
                assert "Idempotency-Key" in names, path


def test_swagger_ui_is_served_from_local_static_files(db):
    response = APIClient().get(f"{API}/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()


@pytest.fixture
def keep_test_connection(request: Any) -> None:
    """As Django's test client does: the test's connection (and transaction) survive requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request.addfinalizer(lambda: request_started.connect(close_old_connections))
    request.addfinalizer(lambda: request_finished.connect(close_old_connections))


@pytest.fixture
def token_headers(membership: Membership) -> dict[str, str]:
    _, raw = create_token(membership, name="schemathesis", scope="write")
    return {"Authorization": f"Bearer {raw}"}


def _load_schema() -> Any:
    """The schema as the app serves it; requests then go to the app in-process (WSGI)."""
    from config.wsgi import application

    request_started.disconnect(close_old_connections)
    try:
        return schemathesis.openapi.from_wsgi(f"{API}/schema/?format=json", application)
    finally:
        request_started.connect(close_old_connections)


schema = _load_schema()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.usefixtures("api_objects", "keep_test_connection")
def test_api_honours_its_schema(
    case: Any, token_headers: dict[str, str], fake_mastodon: Any, fake_pds: Any
) -> None:
    servers = {"mastodon": fake_mastodon.url, "bluesky": fake_pds.url}
    keep_to_the_fakes(case, servers)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
        ignored_auth,
    ]
    # A multipart field is a string on the wire whatever type the fuzzer meant (an "object"
    # alt text arrives as its JSON text), so a type mutation there cannot be seen by the server.
    if case.media_type != "multipart/form-data":
        checks.append(negative_data_rejection)
    case.call_and_validate(headers=token_headers, checks=checks)


def keep_to_the_fakes(case: Any, servers: dict[str, str]) -> None:
    """Point every address the fuzzer writes at a fake server or an unroutable IP literal.

    Connecting a channel contacts the network's server, and a Bluesky handle without a server
    would be resolved through DNS: the generated bodies never get to do either for real.
    """
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("url"), str):
        body["url"] = UNROUTABLE_URL
    network = body.get("network")
    if network == "bluesky" or isinstance(body.get("server_url"), str):
        body["server_url"] = servers.get(str(network), UNROUTABLE_URL)
