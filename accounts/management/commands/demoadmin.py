"""`manage.py demoadmin`: a local admin for `make run`, its password printed once."""

import secrets

from django.core.management.base import BaseCommand

from accounts.audit import Actor
from accounts.selectors import groups_by_names, user_get_by_email
from accounts.services import user_create

DEMO_EMAIL = "admin@example.com"


class Command(BaseCommand):
    help = "Create the demo admin (group root) if it does not exist; print its password once."

    def handle(self, *args, **opts):
        if user_get_by_email(DEMO_EMAIL) is not None:
            self.stdout.write(f"Demo admin {DEMO_EMAIL} exists (its password was printed once).")
            return
        password = secrets.token_urlsafe(12)
        user_create(
            email=DEMO_EMAIL,
            first_name="Demo",
            last_name="Admin",
            password=password,
            groups=groups_by_names(["root"]),
            by=Actor.system(label="demoadmin"),
            via="demoadmin",
        )
        self.stdout.write(
            f"Demo admin created. Log in at http://127.0.0.1:8000/login/ with\n"
            f"  email:    {DEMO_EMAIL}\n  password: {password}\n"
            f"This password is shown only now."
        )
