"""The production server as the image runs it (tests/servers.py: the
Dockerfile's ENV and CMD), on loopback: it serves, its access log keeps no
secret, and its idle keep-alive close is the one nginx is paired with."""

import logging
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.keepalive import idle_close, reuse
from iam.accesslog import RedactSecrets
from tests.servers import ROOT, image, migrated_sqlite, started


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    db = tmp_path_factory.mktemp("granian") / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DATABASE_URL=migrated_sqlite(db),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="test-" + "x" * 60,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
    )
    return env


@pytest.fixture(scope="module")
def server(app_env):
    with started(app_env, GRANIAN_WORKERS="2") as (server,):
        yield server


def _get(url, **headers):
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as error:
        return error


def test_health_readiness_and_login_page(server):
    assert _get(server.base + "/healthz").status == 200
    assert _get(server.base + "/readyz").status == 200
    assert _get(server.base + "/login/").status == 200


def test_it_runs_the_image_configuration(server):
    """The CMD's shell hands over to granian (it gets the signals), with the
    image's settings and the worker-count knob; the image's own HEALTHCHECK
    command passes against it."""
    cmdline = (Path("/proc") / str(server.process.pid) / "cmdline").read_bytes()
    assert b"granian\0iam.wsgi:application" in cmdline
    assert server.env["GRANIAN_INTERFACE"] == "wsgi"
    assert server.env["GRANIAN_BLOCKING_THREADS"] == "4"
    log = server.log.read_text()
    assert "Spawning worker-2 " in log and "Spawning worker-3 " not in log, log
    check = subprocess.run(
        ["sh", "-c", image()["healthcheck"]], env=server.env, timeout=30, cwd=ROOT
    )
    assert check.returncode == 0


def test_access_log_keeps_no_reset_key_or_query(server):
    _get(server.base + "/password/reset/key/1-abcdef-0123456789secret/")
    _get(server.base + "/sso/x/callback/?code=supersecretcode&state=secretstate")
    _get(server.base + "/password/reset/key/done/", **{"User-Agent": "probe/1"})
    # granian writes access lines from its own threads, not in request order,
    # and late on a loaded machine: wait for all three.
    expected = ("probe/1", "/password/reset/key/<redacted>/", "/sso/x/callback/ ")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(marker in server.log.read_text() for marker in expected):
            break
        time.sleep(0.1)
    text = server.log.read_text()  # everything the server wrote: access log, app log
    assert '"GET /password/reset/key/<redacted>/ HTTP/1.1" 200' in text, text
    assert '"GET /password/reset/key/done/ HTTP/1.1" 200' in text, text
    # The line: client, request without query, status, duration, user agent.
    assert re.search(
        r'^127\.0\.0\.1 "GET /sso/x/callback/ HTTP/1\.1" 404 \d+\.\dms "Python-urllib/',
        text,
        re.MULTILINE,
    ), text
    for secret in ("0123456789secret", "abcdef", "supersecretcode", "secretstate"):
        assert secret not in text, text


def test_an_idle_connection_is_answered_until_the_server_closes_it(app_env):
    """The keep-alive pairing, on the real server, scaled down from 60 s to
    3 s so that it takes seconds: granian closes a kept-alive connection
    after GRANIAN_HTTP1_HEADER_READ_TIMEOUT of idleness; a request sent on it
    before then is answered (what nginx does with its upstream
    keepalive_timeout below the server's: 50 s < 60 s), and one sent after
    it is not (what nginx would meet were its timeout the longer one). Uses
    the probes of `python -m benchmarks keepalive`, which checks the
    production values themselves (49.8 and 50.2 s against 60 s)."""
    outcomes: dict[str, object] = {}
    with started(app_env, GRANIAN_HTTP1_HEADER_READ_TIMEOUT="3000") as (server,):
        probes = {
            "closed after": lambda: idle_close(server.port, 15),
            "reused after 2.4 s": lambda: reuse(server.port, 2.4),
            "reused after 3.8 s": lambda: reuse(server.port, 3.8),
        }
        threads = [
            threading.Thread(target=lambda k=k, f=f: outcomes.__setitem__(k, f()))
            for k, f in probes.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert 2.5 <= outcomes["closed after"] <= 4.5, outcomes
    assert outcomes["reused after 2.4 s"] == "200", outcomes
    assert outcomes["reused after 3.8 s"] in (
        "end of stream, no answer",
        "connection reset",
        "broken pipe",
    ), outcomes


def test_the_filter_also_blanks_what_a_changed_format_would_show():
    """An operator's GRANIAN_LOG_ACCESS_FMT may print the query string; a
    reset key with a slash in it (allauth's route takes `.+`) goes whole."""
    record = logging.LogRecord(
        "granian.access",
        logging.INFO,
        __file__,
        0,
        "%(path)s ? %(query_string)s",
        ({"path": "/password/reset/key/1-ab/cd/", "query_string": "code=c&state=s"},),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "/password/reset/key/<redacted>/ ? <redacted>"
    record.args = {"path": "/users/", "query_string": ""}
    RedactSecrets().filter(record)
    assert record.getMessage() == "/users/ ? "
