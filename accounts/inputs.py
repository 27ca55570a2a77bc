"""What people type: email addresses and names, the same rules at every door
(forms, `createuser`, SSO, password reset, login throttles).

One spelling per address. `normalize_email` is the only comparison key:
trimmed, ASCII letters lower-cased, a non-ASCII domain in its IDNA (punycode)
form, every other code point as it is. It never folds Unicode onto ASCII
(`str.lower()` and even NFC turn the Kelvin sign U+212A into `k`; NFKC turns
fullwidth letters into ASCII), so a look-alike address can never match
another account at login, over SSO or in a reset.
`clean_email` is stricter, for addresses being entered: it also refuses any
address that case folding or compatibility normalisation would change (such
an address could pass for another one), control characters, and lengths
beyond what mail allows.
"""

from __future__ import annotations

import contextlib
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from accounts.errors import AccountError

MAX_EMAIL = 254  # RFC 5321's path limit, less the angle brackets
MAX_LOCAL = 64
MAX_NAME = 150
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Joiners that scripts such as Persian and emoji sequences need; every other
# format character (bidi overrides and isolates, zero-width spaces…) can make
# a name read differently from what it is.
_ALLOWED_FORMAT = {"\u200c", "\u200d"}


class InvalidInput(AccountError):
    """The message says what is wrong, fit for a form or the command line."""


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _idna_label(label: str) -> str:
    """A domain label as DNS knows it, without nameprep's folding."""
    if label.isascii():
        return label
    return "xn--" + label.encode("punycode").decode("ascii")


def normalize_email(value) -> str:
    """The comparison key of an address (never raises; "" for non-text)."""
    if not isinstance(value, str):
        return ""
    text = _ascii_lower(value.strip())
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    # A label punycode cannot encode matches nothing stored: keep it as it is.
    with contextlib.suppress(UnicodeError):
        domain = ".".join(_idna_label(label) for label in domain.split("."))
    return f"{local}@{domain}"


def has_control(text: str) -> bool:
    """Control characters (CR, LF, ESC…), line and paragraph separators, or
    format characters other than the joiners (bidi overrides and isolates,
    zero-width spaces): they can forge a log line or make text read as
    something else. One rule for names, labels and addresses."""
    return any(
        unicodedata.category(c) in ("Cc", "Zl", "Zp")
        or (unicodedata.category(c) == "Cf" and c not in _ALLOWED_FORMAT)
        for c in text
    )


def clean_email(value) -> str:
    """An address being entered, in its canonical form; InvalidInput otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(_("An email address is required."))
    if has_control(text):
        raise InvalidInput(
            _("The email address must not contain control or formatting characters.")
        )
    if not text.isascii():
        # Only letters that neither case folding nor compatibility
        # normalisation would change: anything else could pass for another
        # address (ＡDA@…, \u212aate@…, straße/strasse).
        skeleton = unicodedata.normalize("NFKC", text).casefold()
        if skeleton != _ascii_lower(text):
            raise InvalidInput(
                _(
                    "The email address contains characters that could be mistaken for others "
                    "(capital or compatibility forms of non-ASCII letters); write it in plain "
                    "lower-case letters."
                )
            )
    email = normalize_email(text)
    local = email.rpartition("@")[0]
    if len(email) > MAX_EMAIL or len(local) > MAX_LOCAL:
        raise InvalidInput(
            _("The email address is too long (at most %(max)d characters, %(local)d before the @).")
            % {"max": MAX_EMAIL, "local": MAX_LOCAL}
        )
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(
            _("'%(value)s' is not a valid email address.") % {"value": text[:80]}
        ) from None
    return email


def clean_name(value, label: str) -> str:
    """A first or last name: required, at most 150 characters, no control or
    bidi formatting characters (they can make a name in the audit trail or an
    admin screen read as something else)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(_("%(label)s is required.") % {"label": _(label)})
    if has_control(text):
        raise InvalidInput(
            _("%(label)s must not contain control or formatting characters.") % {"label": _(label)}
        )
    if len(text) > MAX_NAME:
        raise InvalidInput(
            _("%(label)s must be at most %(max)d characters.")
            % {"label": _(label), "max": MAX_NAME}
        )
    return text
