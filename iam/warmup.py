"""Warm a fresh app server process before it serves (iam.wsgi).

Django imports the URLconf and the views behind it, compiles templates,
loads the translations and the password hasher's library on first use, so
a fresh granian worker spent about 2.1 s on its first page while /readyz
(answered by the first middleware) already said 200: the first logins on
new workers took 2.5 s (benchmarks/first_login.py). Here that is paid at
start: the URLconf resolved, the password hasher run once, and the login
page rendered through the whole middleware stack in each language, with no
write (an anonymous GET). A failure here only leaves the process cold.
"""

from __future__ import annotations

import io
import logging
import sys
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger("iam.warmup")

# Set in the WSGI environ of the warm-up's own requests (no client can set a
# key without the HTTP_ prefix): the metrics leave them out.
WARMUP_KEY = "iam.warmup"


def _host() -> str:
    for host in settings.ALLOWED_HOSTS:
        if host != "*":
            return host.lstrip(".")
    return "localhost"


def _get(application, path: str, language: str) -> int:
    """One anonymous GET through the app, as the server would make it."""
    status = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": _host(),
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": _host(),
        "HTTP_ACCEPT_LANGUAGE": language,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        WARMUP_KEY: True,
    }
    body = application(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        for _chunk in body:
            pass
    finally:
        if hasattr(body, "close"):
            body.close()
    return int(status[0].split()[0]) if status else 0


def warm(application) -> None:
    start = time.perf_counter()
    try:
        from django.contrib.auth.hashers import get_hasher
        from django.urls import get_resolver

        get_resolver().reverse_dict  # noqa: B018 - imports every view module, for reverse() too
        hasher = get_hasher()
        hasher.verify("warm-up", hasher.encode("warm-up", hasher.salt()))
        statuses = [_get(application, "/login/", code) for code, _name in settings.LANGUAGES]
    except Exception:  # noqa: BLE001 - a cold process still serves
        logger.warning("warm-up failed; the first requests will be slower", exc_info=True)
        return
    finally:
        connections.close_all()  # this thread serves no request: keep no connection
    logger.info(
        "warmed in %.0f ms (login page: %s)",
        (time.perf_counter() - start) * 1000,
        ",".join(map(str, statuses)),
    )
