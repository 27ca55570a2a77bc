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
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
# No query strings in the access log (SSO codes and states travel there), and
# the key in a password-reset link path is blanked out.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
_RESET_KEY = re.compile(r"(/password/reset/key/)[^/]+")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = _RESET_KEY.sub(r"\1<redacted>", atoms.get("U", ""))
        return atoms


logger_class = RedactingLogger
