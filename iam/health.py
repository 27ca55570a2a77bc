"""Health endpoints for load balancers and orchestrators.

`/healthz`: the process answers. `/readyz`: the database and the cache answer
and every migration is applied. Both are answered by the first middleware,
before host validation, sessions or authentication, so they are cheap,
unauthenticated and work when probed by IP address.
"""

import json
import logging

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpResponse

logger = logging.getLogger("iam.health")
_migrations_applied = False


def _json(status: int, body: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False


def _cache() -> bool:
    try:
        cache.set("health:probe", 1, 10)
        return cache.get("health:probe") == 1
    except Exception:  # noqa: BLE001 - any cache client error means "not ready"
        return False


def _migrations() -> bool:
    """Checked until true once; then remembered for the life of the process."""
    global _migrations_applied
    if not _migrations_applied:
        from django.db.migrations.executor import MigrationExecutor

        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError:
            return False
        _migrations_applied = not plan
    return _migrations_applied


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return _json(200, {"status": "ok"})
        if request.path == "/readyz":
            checks = {"database": _database()}
            checks["migrations"] = checks["database"] and _migrations()
            checks["cache"] = _cache()
            ready = all(checks.values())
            response = _json(
                200 if ready else 503,
                {"status": "ok" if ready else "unavailable", "checks": checks},
            )
            if not ready:
                # One WARNING line a probe: not an error of ours, and not
                # repeated by django.request at ERROR.
                logger.warning("not ready: %s", checks)
                response._has_been_logged = True
            return response
        return self.get_response(request)
