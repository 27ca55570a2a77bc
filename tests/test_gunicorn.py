"""The production server as configured in gunicorn.conf.py, on loopback."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("gunicorn") / "db.sqlite3"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="test-" + "x" * 60,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    log = tmp_path_factory.mktemp("gunicorn-log") / "access.log"
    env["GUNICORN_ACCESSLOG"] = str(log)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "iam.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield base, log
    process.terminate()
    process.wait(timeout=15)


def _get(url):
    try:
        return urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as error:
        return error


def test_health_and_readiness_under_gunicorn(server):
    base, _ = server
    assert _get(base + "/healthz").status == 200
    assert _get(base + "/readyz").status == 200
    assert _get(base + "/login/").status == 200


def test_access_log_keeps_no_reset_key_or_query(server):
    base, log = server
    _get(base + "/password/reset/key/1-abcdef-0123456789secret/")
    _get(base + "/sso/x/callback/?code=supersecretcode&state=s")
    time.sleep(0.3)
    text = log.read_text()
    assert "/password/reset/key/<redacted>/" in text
    # The line: client, request without query, status, bytes, seconds, user agent.
    assert re.search(
        r'^127\.0\.0\.1 "GET /sso/x/callback/ HTTP/1\.1" 404 \d+ \d+\.\d{6}s "Python-urllib/',
        text,
        re.MULTILINE,
    ), text
    assert "0123456789secret" not in text and "supersecretcode" not in text
