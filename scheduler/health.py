"""/healthz: can this deployment publish? Database, broker, the last dispatch tick, and whether
due deliveries are being worked on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from config.celery import app

from .dispatch import HEARTBEAT
from .models import ChannelStatus, Delivery, EngineHeartbeat


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


def check_deliveries() -> dict[str, Any]:
    """Deliveries overdue by HERALD_STUCK_AFTER seconds that nobody works on: due but not claimed
    (on an active channel), or claimed with a lease nobody renewed."""
    stuck_since = timezone.now() - timedelta(seconds=settings.HERALD_STUCK_AFTER)
    unclaimed = (
        Delivery.objects.due(stuck_since).filter(channel__status=ChannelStatus.ACTIVE).count()
    )
    abandoned = Delivery.objects.lease_expired(stuck_since).count()
    result: dict[str, Any] = {
        "ok": not (unclaimed or abandoned),
        "overdue_unclaimed": unclaimed,
        "overdue_lease_expired": abandoned,
    }
    if not result["ok"]:
        result["error"] = (
            f"{unclaimed + abandoned} deliveries are more than {settings.HERALD_STUCK_AFTER:g} s "
            "overdue and not progressing: check that Celery beat and workers are running and "
            "can reach the database and the broker"
        )
    return result


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    database_ok = checks["database"]["ok"]
    checks["dispatch"] = check_dispatch() if database_ok else {"ok": False}
    checks["deliveries"] = check_deliveries() if database_ok else {"ok": False}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, "checks": checks}, status=200 if healthy else 503)
