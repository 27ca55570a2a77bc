"""The refusals services raise: their message is shown to people as it is."""


class AccountError(Exception):
    """A request that cannot be carried out; the message is shown to people.
    `field` names the input it is about ("email", "first_name", "password"),
    so a form can show it there."""

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field


class AccessRefused(AccountError):
    """A write beyond the actor's own rights, or one that would leave nobody
    able to repair access. `accounts.delegation.access_write` audits it after
    the transaction has been rolled back."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        resources=(),
        action=None,  # an accounts.audit.AuditAction; None: a grant refused
    ):
        super().__init__(message)
        self.reason = reason
        self.resources = sorted(resources)
        self.action = action
