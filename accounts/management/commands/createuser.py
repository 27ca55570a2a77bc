"""`manage.py createuser`: the developer's door to a new Back Office account.

A password never travels in argv (it would sit in shell history and `ps`):
it is typed at a prompt, piped with --password-stdin, or left unset.
"""

import argparse
import getpass
import sys

from django.core.management.base import CommandError

from accounts.audit import Actor
from accounts.inputs import clean_email, clean_name
from accounts.selectors import groups_by_names, user_get_by_email
from accounts.services import AccountError, user_create
from iam import commands as base

PROMPTS = 3  # tries at the password prompt before giving up


def _without_values(error):
    """argparse echoes unknown arguments; one of them may be a password typed
    after a mistyped flag. Name the flags, never the values."""

    def quiet(message: str):
        prefix = "unrecognized arguments:"
        if message.startswith(prefix):
            words = message[len(prefix) :].split()
            shown = " ".join(w.split("=")[0] if w.startswith("-") else "…" for w in words)
            message = (
                f"{prefix} {shown} (values not shown). Passwords never go on the command "
                "line: type it at the prompt, or use --password-stdin or --no-password."
            )
        error(message)

    return quiet


class Command(base.Command):
    help = "Create a Back Office user. Prompts for the password unless told otherwise."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # No abbreviations: `--password X` must not pass for --password-stdin
        # (and a password must never be in argv at all).
        parser = super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)
        parser.error = _without_values(parser.error)
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="the login address")
        parser.add_argument("--first-name", required=True, help="first name")
        parser.add_argument("--last-name", required=True, help="last name")
        parser.add_argument(
            "--group", action="append", default=[], help="group name; repeat for several"
        )
        parser.add_argument("--inactive", action="store_true", help="create the account blocked")
        # Caught to say why, without echoing what followed it.
        parser.add_argument("--password", nargs="?", const="", help=argparse.SUPPRESS)
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
        if opts["password"] is not None:
            raise CommandError(
                "Passwords never go on the command line (shell history, ps): "
                "type it at the prompt, or use --password-stdin or --no-password."
            )
        values = [opts["email"], opts["first_name"], opts["last_name"], *opts["group"]]
        if any("\x00" in v for v in values):
            raise CommandError("Arguments must not contain NUL characters.")
        # Every input is checked before a password is asked for.
        try:
            email = clean_email(opts["email"])
            clean_name(opts["first_name"], "First name")
            clean_name(opts["last_name"], "Last name")
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        try:
            groups = groups_by_names(opts["group"])
        except LookupError as exc:
            raise CommandError(f"Unknown group: {exc}.") from None
        if user_get_by_email(email) is not None:
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
                by=Actor.system(label="cli"),
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
        for _ in range(PROMPTS):
            try:
                first = getpass.getpass("Password: ")
                second = getpass.getpass("Password (again): ")
            except (EOFError, KeyboardInterrupt):
                raise CommandError("Aborted.") from None
            if not first:
                self.stderr.write("The password must not be empty. Try again.")
            elif first != second:
                self.stderr.write("The two passwords do not match. Try again.")
            else:
                return first
        raise CommandError(f"No matching password after {PROMPTS} tries.")
