"""The production server's access log, with no secret in it.

granian writes one line a request through the `granian.access` logger: its
format (GRANIAN_LOG_ACCESS_FMT) applied to a dict of the request (addr,
method, path, protocol, status, dt_ms, query_string, the headers the format
names). Its `path` is the WSGI PATH_INFO, without the query string, where
SSO codes and states travel. `RedactSecrets`, put on the access handler by
deploy/granian-log.json, blanks what is still secret:
- the key of a password-reset link, in its path (/password/reset/key/<key>/);
- the token of an address change's link (/email/confirm/<token>/), which
  confirms the change and spells both addresses;
- the query string, should the format be changed to print it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

REDACTED = "<redacted>"
# allauth's route is ^password/reset/key/<uidb36>-<key>/$, the key matching
# `.+` (a slash included): everything after /key/ goes, but for its own
# "done" page.
RESET_KEY = re.compile(r"(/password/reset/key/)(?!done/?$).+")
# iam.urls: email/confirm/<str:token>/ (the bare email/confirm/ holds none).
EMAIL_LINK = re.compile(r"(/email/confirm/)[^/]+/?")


def redact_path(path: str) -> str:
    """`path` without the key of a password-reset link or the token of an
    address change's link."""
    if "/email/confirm/" in path:
        path = EMAIL_LINK.sub(rf"\g<1>{REDACTED}/", path)
    if "/password/reset/key/" not in path:
        return path
    return RESET_KEY.sub(rf"\g<1>{REDACTED}/", path)


class RedactSecrets(logging.Filter):
    """On granian's access records: the reset key out of `path`, the query
    string out altogether. Records of any other shape pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping) and "path" in args:
            record.args = {
                **args,
                "path": redact_path(str(args["path"])),
                "query_string": REDACTED if args.get("query_string") else "",
            }
        return True


class RedactPaths(logging.Filter):
    """On Django's own request lines ("Method Not Allowed (HEAD): <path>",
    "Forbidden (CSRF cookie not set.): <path>"): the key of a link out of
    the path. A mail scanner opening an address-change link with HEAD gets
    a 405, which Django logs with the path (iam/settings.py LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_path(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
