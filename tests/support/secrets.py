"""No secret the suite used may appear in any log line the suite wrote.

`LogSecretCheck` keeps every log record that reaches the root logger,
formatted as production's JSON formatter formats it (iam.logs), and a
registry of the secrets the run used: passwords (everything a password
hasher hashed: set or typed, client secrets included), API tokens and
codes, SCIM tokens, password-reset and address-change keys, TOTP secrets,
the fake identity provider's secret, codes and tokens. Generators are
spied on (their results recorded, nothing else changed) by `spy_on_generators`;
fixtures add what they make themselves with `remember`. tests/conftest.py
runs one check for the whole session and fails the run at its end when a
secret was logged; tests/test_logs.py proves a planted secret is caught.

Cheap: a record costs one json.dumps; the search is done once, at the end,
one substring search per secret over the distinct texts (what a record
says, not the time or ids the formatter adds).
"""

from __future__ import annotations

import json
import logging

from iam.logs import JsonFormatter

# Shorter values (a 6-digit code, "x") would match by chance.
MIN_LENGTH = 8


class LogSecretCheck(logging.Handler):
    """Keeps what each record says (its message, traceback and actor, as
    the JSON formatter writes them), once per distinct text."""

    # The fields of a line that come from outside: the rest (time, level,
    # route, ids) are the formatter's own.
    SAID = ("message", "exception", "actor", "path")

    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.formatter = JsonFormatter()
        self.records = 0
        self.texts: dict[str, None] = {}  # insertion-ordered set
        self.secrets: set[str] = set()

    def remember(self, value) -> None:
        if isinstance(value, bytes):
            value = value.decode(errors="ignore")
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            self.secrets.add(value)

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        try:
            fields = self.formatter.fields(record)
            json.dumps(fields, ensure_ascii=False, default=str)  # as production writes it
            text = "\n".join(str(fields[k]) for k in self.SAID if fields.get(k))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is checked raw
            text = repr(record.__dict__)
        self.texts[text] = None

    def install(self) -> None:
        logging.getLogger().addHandler(self)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)

    def leaks(self) -> list[tuple[str, str]]:
        """(secret, first text that holds it), for each secret found."""
        whole = "\n\0".join(self.texts)
        found = []
        for secret in sorted(self.secrets):
            if secret in whole:
                found.append((secret, next(t for t in self.texts if secret in t)))
        return found

    def report(self) -> str:
        return "\n".join(
            f"secret {secret[:4]}… (length {len(secret)}) logged in: {text[:400]!r}"
            for secret, text in self.leaks()
        )


# The run's check (tests/conftest.py installs it).
SESSION: LogSecretCheck | None = None


def remember(*values) -> None:
    """For support code that makes a secret itself (the fake provider's
    codes and tokens): remembered by the run's check, if one runs."""
    if SESSION is not None:
        for value in values:
            SESSION.remember(value)


def _record(check: LogSecretCheck, owner, name: str, *, arg: int | None = None) -> None:
    """Wrap `owner.name` so its result (its first item, for a tuple) or its
    positional argument `arg` is remembered; it behaves exactly as before."""
    original = getattr(owner, name)

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        if arg is None:
            check.remember(result[0] if isinstance(result, tuple) else result)
        elif len(args) > arg:
            check.remember(args[arg])
        return result

    spy.__wrapped__ = original
    setattr(owner, name, spy)


def spy_on_generators(check: LogSecretCheck) -> None:
    """Every secret the code under test makes or hashes, remembered."""
    import oauthlib.common
    from allauth.mfa.totp.internal import auth as totp
    from django.contrib.auth.hashers import get_hashers
    from django.contrib.auth.tokens import PasswordResetTokenGenerator

    import accounts.tokens
    import api.services
    import scim.services

    # A password, a typed one too, and an API client's secret: whatever a
    # hasher encodes (argument 1 of encode(self, password, salt, ...)).
    encoders = {next(c for c in type(h).__mro__ if "encode" in vars(c)) for h in get_hashers()}
    for hasher in encoders:
        _record(check, hasher, "encode", arg=1)
    _record(check, oauthlib.common, "generate_token")  # access/refresh tokens, codes
    _record(check, api.services, "generate_client_secret")
    _record(check, scim.services, "new_token")  # (token, key, hash): the token
    _record(check, PasswordResetTokenGenerator, "make_token")
    for name, cls in vars(accounts.tokens).items():
        if isinstance(cls, type) and "make" in vars(cls) and not name.startswith("_"):
            _record(check, cls, "make")  # an address change's link
    _record(check, totp, "generate_totp_secret")
