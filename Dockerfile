# The app image: granian (WSGI) configured by its GRANIAN_* variables,
# static files collected.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
RUN pip install --quiet .

COPY manage.py ./
COPY deploy/granian-log.json deploy/granian-log-json.json deploy/access.yaml ./deploy/
COPY iam ./iam
COPY accounts ./accounts
COPY backoffice ./backoffice
COPY sso ./sso
COPY api ./api
COPY scim ./scim
COPY maintenance ./maintenance
COPY templates ./templates
COPY static ./static
COPY locale ./locale
# The translations are compiled here (.mo files are not committed), by
# Python alone (iam/catalogues.py): no gettext in the image.
RUN python -m iam.catalogues
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0

# The production server. granian has no configuration file: it reads each
# option from a GRANIAN_* variable, and these are the image's defaults (each
# one overridable with `docker run -e`, compose's `environment`; the table in
# README "Production deployment"). Sized as measured (benchmarks/README.md):
# 4 Python threads a worker overlap the database, cache and provider waits;
# granian's own defaults (512 threads, 30 s header timeout, no access log,
# the RSGI interface) are not wanted here. The HTTP/1 header-read timeout is
# also the idle keep-alive close: 60 s (its maximum), above nginx's upstream
# keepalive_timeout of 50 s (deploy/nginx/nginx.conf), so nginx always
# closes an idle connection first. Workers are replaced one at a time after
# GRANIAN_WORKERS_LIFETIME (recycling, so a slow leak cannot grow for ever)
# and respawned if one dies. The access log has no query strings and no
# password-reset keys (deploy/granian-log.json, iam/accesslog.py).
# X-Forwarded-* are judged by the app (IAM_TRUSTED_PROXIES), not by granian.
ENV GRANIAN_INTERFACE=wsgi \
    GRANIAN_HOST=0.0.0.0 \
    GRANIAN_PORT=8000 \
    GRANIAN_BLOCKING_THREADS=4 \
    GRANIAN_RUNTIME_THREADS=1 \
    GRANIAN_BACKLOG=1024 \
    GRANIAN_HTTP=1 \
    GRANIAN_HTTP1_HEADER_READ_TIMEOUT=60000 \
    GRANIAN_RESPAWN_FAILED_WORKERS=true \
    GRANIAN_WORKERS_LIFETIME=6h \
    GRANIAN_WORKERS_KILL_TIMEOUT=30 \
    GRANIAN_LOG_CONFIG=deploy/granian-log.json \
    GRANIAN_LOG_ACCESS_ENABLED=true \
    GRANIAN_LOG_ACCESS_FMT="%(addr)s \"%(method)s %(path)s %(protocol)s\" %(status)d %(dt_ms).1fms \"%(header{user-agent})s\""

USER nobody
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['GRANIAN_PORT'], timeout=2)"
# Password hashing (Argon2id) is CPU-bound: one worker process per core, plus
# one so a core is never idle while a worker waits, unless GRANIAN_WORKERS says.
# IAM_LOG_FORMAT=json makes granian's own lines (access log included) JSON
# too, unless GRANIAN_LOG_CONFIG names another file (README "Logs and request ids").
# Each worker counts its metrics into a file in PROMETHEUS_MULTIPROC_DIR, and
# /metrics sums them (README "Metrics"); the files of a former run are
# removed first, so a restart begins at zero as Prometheus expects.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/iam-metrics
CMD ["sh", "-c", "export GRANIAN_WORKERS=\"${GRANIAN_WORKERS:-$(($(nproc) + 1))}\" && if [ \"$IAM_LOG_FORMAT\" = json ] && [ \"$GRANIAN_LOG_CONFIG\" = deploy/granian-log.json ]; then export GRANIAN_LOG_CONFIG=deploy/granian-log-json.json; fi && if [ -n \"$PROMETHEUS_MULTIPROC_DIR\" ]; then mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && rm -f \"$PROMETHEUS_MULTIPROC_DIR\"/*.db; fi && exec granian iam.wsgi:application"]
