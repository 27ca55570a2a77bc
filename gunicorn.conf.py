"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py iam.wsgi`.

Each knob can be overridden by the environment (GUNICORN_*), so one image
serves small and large machines.
"""

import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Password hashing is CPU-bound (Argon2id): one worker process per core, plus
# one so a core is never idle while a worker waits on the database.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
# Threads overlap the database, cache and identity-provider waits of cheap
# requests within a worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
# The heartbeat file is touched on every loop of every worker: keep it in
# memory (a container's overlay disk makes each touch a real write). gunicorn
# makes it with mkstemp and unlinks it at once, so a shared directory is safe.
SHM = "/dev/shm"  # noqa: S108
if os.path.isdir(SHM):
    worker_tmp_dir = SHM
# Recycle workers now and then so a slow leak cannot grow for ever.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 20000))
max_requests_jitter = 2000
# X-Forwarded-* are judged by the app (IAM_TRUSTED_PROXIES), not by gunicorn.
forwarded_allow_ips = ""
# GUNICORN_ACCESSLOG= (empty) turns the access log off, e.g. behind nginx,
# which logs every request already.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
# No query strings in the access log (SSO codes and states travel there), and
# the key in a password-reset link path is blanked out.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
_RESET_KEY = re.compile(r"(/password/reset/key/)[^/]+")


class AccessLogger(Logger):
    """Writes the line of `access_log_format` from the eight fields it uses.
    gunicorn's own atoms() first copies every request header, response header
    and environ entry into a dict: measured, a fifth of the CPU of a
    /healthz request."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != access_log_format:  # changed at the command line
            return super().access(resp, req, environ, request_time)
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        self.access_log.info(
            '%s "%s %s %s" %s %s %d.%06ds "%s"',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD"),
            self._redact(environ.get("PATH_INFO", "")),
            environ.get("SERVER_PROTOCOL"),
            status,
            "-" if sent is None else sent,
            request_time.seconds,
            request_time.microseconds,
            environ.get("HTTP_USER_AGENT", "-"),
        )

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = self._redact(atoms.get("U", ""))
        return atoms

    @staticmethod
    def _redact(path: str) -> str:
        return _RESET_KEY.sub(r"\1<redacted>", path)


logger_class = AccessLogger
