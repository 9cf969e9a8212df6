"""/healthz: can this deployment publish? Database, broker, and the last dispatch tick."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from config.celery import app

from .dispatch import HEARTBEAT
from .models import EngineHeartbeat


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_broker() -> dict[str, Any]:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": f"cannot reach the broker: {exc}"}


def check_dispatch() -> dict[str, Any]:
    beat = EngineHeartbeat.objects.filter(name=HEARTBEAT).first()
    limit = settings.HERALD_DISPATCH_INTERVAL * 3
    if beat is None:
        return {"ok": False, "error": "the dispatcher has never run: is Celery beat running?"}
    age = (timezone.now() - beat.beat_at).total_seconds()
    result: dict[str, Any] = {"ok": age <= limit, "last_tick_age_seconds": round(age, 3)}
    if age > limit:
        result["error"] = (
            f"no dispatch tick for {age:.0f} s (expected every {settings.HERALD_DISPATCH_INTERVAL:g} s): check Celery beat and workers"
        )
    return result


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    checks["dispatch"] = check_dispatch() if checks["database"]["ok"] else {"ok": False}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, "checks": checks}, status=200 if healthy else 503)
