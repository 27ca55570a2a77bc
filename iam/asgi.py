import os

from django.core.asgi import get_asgi_application

from iam import telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
# Before the handler reads MIDDLEWARE (README "Traces").
telemetry.setup()
application = get_asgi_application()
