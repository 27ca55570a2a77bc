"""Every door answers a database outage with 503, Retry-After and one log
line, in its own words (issue 22, item 7; iam.outages): people get the 503
page, the API its JSON error, SCIM its error JSON (identity providers retry
a 503, never a 400). First through the test client with every query
failing as a dropped connection does, then (PostgreSQL) against a real
server whose database is really made unavailable and brought back."""

import json
import logging
import os

import pytest
import requests
from django.db import OperationalError, connection

from tests.conftest import PASSWORD, login
from tests.servers import manage, started
from tests.support.pg import cut, own_database, postgres_only
from tests.support.scim import ERROR_SCHEMA, make_token


def _down(execute, sql, params, many, context):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.fixture
def outage(client, caplog):
    """Requests made in the block meet a database that is gone; yields the
    outage log lines."""
    client.raise_request_exception = False
    lines = []
    caplog.set_level(logging.WARNING)

    class Block:
        def __enter__(self):
            self.wrapper = connection.execute_wrapper(_down)
            self.wrapper.__enter__()
            caplog.clear()
            return lines

        def __exit__(self, *exc):
            self.wrapper.__exit__(*exc)
            lines.extend(r.getMessage() for r in caplog.records if r.name == "iam.outage")
            assert not any(r.exc_info for r in caplog.records)  # no traceback

    return Block()


def test_scim_answers_503_in_scim_error_json(client, db, outage):
    token = make_token()
    with outage as lines:
        response = client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/scim+json"
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == "503"
    assert "scimType" not in body  # not the client's fault
    assert lines == ["database unavailable: GET /scim/v2/Users: OperationalError"]


def test_scim_write_answers_503_not_400(client, db, outage):
    token = make_token()
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "new@shop.example",
        "name": {"givenName": "N", "familyName": "U"},
        "emails": [{"value": "new@shop.example", "primary": True, "type": "work"}],
        "active": True,
    }
    calls = {"n": 0}

    def later(execute, sql, params, many, context):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    client.raise_request_exception = False
    with connection.execute_wrapper(later):
        response = client.post(
            "/scim/v2/Users",
            json.dumps(user),
            content_type="application/scim+json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 503, response.content
    assert response.json()["status"] == "503" and response["Retry-After"] == "5"


def test_the_api_answers_503_in_json(client, db, outage):
    with outage as lines:
        response = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer some-token")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"] == "5"
    assert lines == ["database unavailable: GET /api/v1/me: OperationalError"]


def test_a_page_answers_the_503_page(client, root_user, outage):
    login(client, root_user.email, PASSWORD)
    client.cookies.pop("iam_session", None)
    client.cookies["iam_session"] = "x" * 32  # a session to look up
    with outage as lines:
        response = client.get("/users/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "cannot reach its database" in page
    assert "Traceback" not in page
    assert lines == ["database unavailable: GET /users/: OperationalError"]


@postgres_only
def test_a_real_server_answers_scim_503_while_the_database_is_away(tmp_path):
    with own_database("iam_ops_doors") as (name, url):
        env = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}
        env.update(
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="iam.settings",
            DJANGO_SECRET_KEY="doors-" + "s" * 40,
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_LOG_LEVEL="WARNING",
            DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        )
        manage(env, "migrate", "-v0")
        token = manage(env, "scimtoken", "create", "--name", "idp").stdout.strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}"}
        with started(env) as (server,):
            users = server.base + "/scim/v2/Users"
            assert requests.get(users, headers=auth, timeout=10).status_code == 200
            cut(name, allow=False)
            try:
                down = requests.get(users, headers=auth, timeout=10)
                api = requests.get(server.base + "/api/v1/me", headers=auth, timeout=10)
            finally:
                cut(name, allow=True)
            assert down.status_code == 503 and down.headers["Retry-After"] == "5"
            assert down.headers["Content-Type"] == "application/scim+json"
            assert down.json()["status"] == "503"
            assert api.status_code == 503 and api.json()["error"] == "temporarily_unavailable"
            assert requests.get(users, headers=auth, timeout=10).status_code == 200
            log = server.log.read_text()
    assert log.count("database unavailable: GET /scim/v2/Users") == 1, log
    assert "Traceback" not in log, log
