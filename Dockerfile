# The app image: gunicorn with gunicorn.conf.py, static files collected.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
RUN pip install --quiet .

COPY manage.py gunicorn.conf.py ./
COPY iam ./iam
COPY accounts ./accounts
COPY backoffice ./backoffice
COPY sso ./sso
COPY templates ./templates
COPY static ./static
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0

USER nobody
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "iam.wsgi"]
