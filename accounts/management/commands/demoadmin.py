"""`manage.py demoadmin`: a local admin for `make run`, its password printed once.

`--port` is the port `make run` serves (its PORT), so the printed address is
the one to open: http://localhost:PORT/, where security keys and passkeys
work (a browser refuses them on an IP address such as 127.0.0.1);
`--new-password` gives the existing demo admin a new
password (printed once) when the first one is lost."""

import secrets

from django.db import transaction

from accounts import services
from accounts.audit import Actor
from accounts.selectors import groups_by_names, user_get_by_email
from iam import commands as base

DEMO_EMAIL = "admin@example.com"


def login_url(port: int) -> str:
    """localhost, not 127.0.0.1: WebAuthn needs a host name as relying party."""
    return f"http://localhost:{port}/login/"


class Command(base.Command):
    help = "Create the demo admin (group root) if it does not exist; print its password once."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=8000, help="the port `make run` serves (default 8000)"
        )
        parser.add_argument(
            "--new-password",
            action="store_true",
            help="give the existing demo admin a new password, printed once",
        )

    def handle(self, *args, **opts):
        port = opts["port"]
        if not 0 < port < 65536:
            self.stderr.write(f"--port {port} is not a port (1-65535).")
            raise SystemExit(1)
        by = Actor.system(label="demoadmin")
        user = user_get_by_email(DEMO_EMAIL)
        password = secrets.token_urlsafe(12)
        if user is None:
            services.user_create(
                email=DEMO_EMAIL,
                first_name="Demo",
                last_name="Admin",
                password=password,
                groups=groups_by_names(["root"]),
                by=by,
                via="demoadmin",
            )
            done = "Demo admin created."
        elif opts["new_password"]:
            with transaction.atomic():
                user.set_password(password)
                user.save(update_fields=["password"])
                # Audited as a completed reset: other sessions end, the lock lifts.
                services.password_reset_completed(user=user, keep_session_key=None, by=by)
            done = "Demo admin has a new password."
        else:
            self.stdout.write(
                f"Demo admin {DEMO_EMAIL} exists (its password was printed once; "
                f"`make run` then log in at {login_url(port)}, or "
                f"`.venv/bin/python manage.py demoadmin --new-password` for a new one)."
            )
            return
        self.stdout.write(
            f"{done} Log in at {login_url(port)} with\n"
            f"  email:    {DEMO_EMAIL}\n  password: {password}\n"
            f"This password is shown only now."
        )
