import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
application = get_wsgi_application()

# Serve warm from the first request (iam.warmup says why).
from iam.warmup import warm  # noqa: E402

warm(application)
