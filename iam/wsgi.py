import os

from django.core.wsgi import get_wsgi_application

from iam import telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
# In each server worker process, before the handler reads MIDDLEWARE.
telemetry.setup()
application = get_wsgi_application()
