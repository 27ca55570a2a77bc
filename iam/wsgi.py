import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

from iam import telemetry
from iam.warmup import warm

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
# Serve warm from the first request (iam.warmup says why), warmed through a
# handler of its own built before traces are on: its requests are no
# client's, so they make no span (nor metrics: iam.warmup.WARMUP_KEY).
warm(get_wsgi_application())
# In each server worker process, before the handler reads MIDDLEWARE.
telemetry.setup()
application = WSGIHandler()
