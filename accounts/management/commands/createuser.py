"""`manage.py createuser`: the developer's door to a new Back Office account.

A password never travels in argv (it would sit in shell history and `ps`):
it is typed at a prompt, piped with --password-stdin, or left unset.
"""

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import groups_by_names, user_get_by_email
from accounts.services import AccountError, user_create


class Command(BaseCommand):
    help = "Create a Back Office user. Prompts for the password unless told otherwise."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--first-name", required=True)
        parser.add_argument("--last-name", required=True)
        parser.add_argument(
            "--group", action="append", default=[], help="group name; repeat for several"
        )
        parser.add_argument("--inactive", action="store_true", help="create the account blocked")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
        source.add_argument(
            "--no-password",
            action="store_true",
            help="no usable password (set later by a reset link, or SSO only)",
        )

    def handle(self, *args, **opts):
        values = [opts["email"], opts["first_name"], opts["last_name"], *opts["group"]]
        if any("\x00" in v for v in values):
            raise CommandError("Arguments must not contain NUL characters.")
        try:
            groups = groups_by_names(opts["group"])
        except LookupError as exc:
            raise CommandError(f"Unknown group: {exc}.") from None
        if user_get_by_email(opts["email"]) is not None:
            # Say so before asking for a password that could not be used.
            raise CommandError(f"A user with email {opts['email'].strip()} already exists.")
        password = self._password(opts)
        try:
            user = user_create(
                email=opts["email"],
                first_name=opts["first_name"],
                last_name=opts["last_name"],
                password=password,
                groups=groups,
                active=not opts["inactive"],
                via="cli",
            )
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Created user {user.email} (id {user.pk}, {user.status}).")

    def _password(self, opts):
        if opts["no_password"]:
            return None
        if opts["password_stdin"]:
            value = sys.stdin.readline().rstrip("\r\n")
            if not value:
                raise CommandError("No password on stdin.")
            if "\x00" in value:
                raise CommandError("The password must not contain NUL characters.")
            return value
        if not sys.stdin.isatty():
            raise CommandError(
                "No terminal to prompt for a password: use --password-stdin or --no-password."
            )
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("Aborted.") from None
        if first != second:
            raise CommandError("The two passwords do not match.")
        if not first:
            raise CommandError("The password must not be empty.")
        return first
