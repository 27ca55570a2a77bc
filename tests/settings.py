"""The production settings, with the two differences a test run needs."""

from iam.settings import *  # noqa: F403

# Test clients and the live server speak plain HTTP on loopback.
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0

# No collectstatic before tests: serve static files straight from static/.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# The MFA policy (default: group root) is switched on by the tests about it;
# the others log root in with a password only.
IAM_MFA_REQUIRED_GROUPS = []

# Mail: most tests read `mail.outbox` right after the request, so here the
# queue runs each task at once, in the process that queues it (django-tasks'
# immediate backend). The tests of the queue itself (tests/test_mail_queue.py)
# switch back to the database backend and run the real `db_worker`.
TASKS = {
    "default": {
        "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["mail", "events"],
    }
}

# PostgreSQL: the suite's own connections do not wait for each commit to
# reach the disk (a crash could lose the last commits of a throwaway test
# database; what other sessions see, and when, is unchanged). Each
# transactional test commits and empties every table: on a busy disk those
# waits were a good part of the PostgreSQL leg. The servers and workers the
# tests start run iam.settings, as production does.
if DATABASES["default"]["ENGINE"] == "iam.db.postgresql":  # noqa: F405
    _options = DATABASES["default"]["OPTIONS"]  # noqa: F405
    _options["options"] = f"{_options.get('options', '')} -c synchronous_commit=off".strip()
