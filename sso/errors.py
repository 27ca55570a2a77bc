class SSOError(Exception):
    """A failed single sign-on. `message` is safe to show the person; `reason`
    is a short machine-readable code for the audit trail."""

    def __init__(self, message: str, reason: str = "error", detail: str = ""):
        super().__init__(message)
        self.message = message
        self.reason = reason
        # What the provider said about it (error_description), for operators
        # only: made printable, never shown to the person.
        self.detail = printable(detail, 200)


def failed(
    provider_name: str, message: str, reason: str, detail: str = "", params: dict | None = None
) -> SSOError:
    """Every SSO failure reads the same way: "Log in with <NAME> failed: …".
    `params` fill the message's %(name)s places after it is translated."""
    from django.utils.translation import gettext as _

    text = _("Log in with %(name)s failed: %(reason)s") % {
        "name": provider_name,
        "reason": _(message) % params if params else _(message),
    }
    return SSOError(text, reason, detail)


def printable(value, limit: int = 80) -> str:
    """A provider's value made safe for a log line or an audit reason: control
    characters (CR, LF, ESC, U+2028, …) become "?", so an anonymous caller of
    the callback cannot forge log lines, and the length is bounded."""
    text = value if isinstance(value, str) else str(value)
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
