"""HTTP hardening a browser (and `check --deploy`) can see."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import login
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_security_headers_on_login_page(client):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_carry_no_inline_script_or_style(client, root_user):
    login(client, root_user.email, PASSWORD)
    for path in ("/login/", "/", "/users/", "/audit/", "/password/reset/"):
        html = client.get(path).content.decode()
        assert "<script>" not in html and "style=" not in html and "<style" not in html


def test_csrf_cookie_and_token_on_login_form(client):
    response = client.get("/login/")
    assert "csrfmiddlewaretoken" in response.content.decode()
    assert response.cookies["csrftoken"]["secure"] is True


def test_login_post_without_csrf_is_refused(user):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        "/login/", {"login": user.email, "password": PASSWORD}
    )
    assert response.status_code == 403


def test_static_css_is_served_by_whitenoise(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert b"--accent" in b"".join(response.streaming_content)


def _check_deploy(**env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "CACHE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="iam.settings", **env_overrides)
    with tempfile.TemporaryDirectory() as folder:
        # The checks read the database: not the default file in the tree, which
        # the other CI leg's checks would open at the same time.
        env.setdefault("DATABASE_URL", f"sqlite:///{folder}/db.sqlite3")
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


PRODUCTION_KEY = "x7Qp-" + "k2Vd9ZrT4mWb8NcY1sHf6LjG3aXe0uPo" * 2


def test_check_deploy_is_clean_with_production_env():
    result = _check_deploy(
        DJANGO_SECRET_KEY=PRODUCTION_KEY,
        DJANGO_ALLOWED_HOSTS="iam.shop.example",
        CACHE_URL="redis://cache.internal:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_wants_a_shared_cache():
    """Several app server processes with a per-process cache would each count
    failed logins on their own."""
    result = _check_deploy(
        DJANGO_SECRET_KEY=PRODUCTION_KEY, DJANGO_ALLOWED_HOSTS="iam.shop.example"
    )
    assert result.returncode != 0
    assert "iam.W002" in result.stderr and "CACHE_URL=redis://" in result.stderr


def test_check_deploy_refuses_the_dev_secret_key():
    result = _check_deploy(DJANGO_ALLOWED_HOSTS="iam.shop.example")
    assert result.returncode != 0
    assert "iam.E001" in result.stderr
