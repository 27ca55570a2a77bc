"""/healthz and /readyz: cheap, unauthenticated, honest."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_without_login_or_known_host(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "Set-Cookie" not in str(response.headers)


def test_readyz_checks_database_cache_migrations(client):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "migrations": True, "cache": True}


def test_readyz_is_503_when_the_cache_is_gone(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] is False
