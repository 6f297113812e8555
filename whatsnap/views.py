import logging
import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:
        return False, type(exc).__name__


def _check_broker() -> tuple[bool, str]:
    try:
        from django_q.brokers import get_broker

        broker = get_broker()
        if not broker.ping():
            return False, "no answer"
        return True, type(broker).__name__
    except Exception as exc:
        return False, type(exc).__name__


def _check_channel_layer() -> tuple[bool, str]:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        async_to_sync(layer.send)("healthz.probe", {"type": "healthz.probe", "at": time.time()})
        async_to_sync(layer.receive)("healthz.probe")
        return True, type(layer).__name__
    except Exception as exc:
        return False, type(exc).__name__


def livez(request):
    """Liveness: the process answers. Touches nothing (also the framework floor in bench/)."""
    return JsonResponse({"status": "ok"})


@never_cache
def healthz(request):
    checks = {"database": _check_database(), "broker": _check_broker(), "channel_layer": _check_channel_layer()}
    healthy = all(ok for ok, _ in checks.values())
    body = {"status": "ok" if healthy else "degraded", **{k: {"ok": ok, "detail": d} for k, (ok, d) in checks.items()}}
    if not healthy:
        logger.warning("health check degraded: %s", body)
    return JsonResponse(body, status=200 if healthy else 503)
