"""The refusals services raise: their message is shown to people as it is;
their `code` is for machines (SCIM, the API, scripts), which map it to a
status without reading the message."""

from __future__ import annotations

# Every code a refusal of accounts/ carries, and what it means. The doors map
# them (CODE_STATUS is the HTTP status that fits each); a new code is added
# here first.
CODES = {
    "invalid": "the input is not acceptable (a field says which)",
    "email_taken": "another account has this address",
    "name_taken": "another group or role has this name",
    "not_found": "what the request is about no longer exists",
    "conflict": "the stored state forbids it for now (a group still has members...)",
    "configured": "the configuration names it (a built-in or mapped group)",
    "right": "the actor lacks the right the action needs",
    "grant_bound": "it would give or take away more than the actor holds",
    "rank": "the account reaches more than the actor holds",
    "last_manager": "nobody would be left able to manage access",
    "self": "the actor would act against their own account or rights",
    "four_eyes": "a second person must approve it (or asked for it: not the same one)",
    "mfa": "a second factor proven within the last minutes is needed",
    "not_eligible": "the person is not (or no longer) eligible for that group",
}
CODE_STATUS = {
    "invalid": 400,
    "email_taken": 409,
    "name_taken": 409,
    "not_found": 404,
    "conflict": 409,
    "configured": 409,
    "right": 403,
    "grant_bound": 403,
    "rank": 403,
    "last_manager": 409,
    "self": 409,
    "four_eyes": 403,
    "mfa": 403,
    "not_eligible": 409,
}


class AccountError(Exception):
    """A request that cannot be carried out; the message is shown to people.
    `field` names the input it is about ("email", "first_name", "password"),
    so a form can show it there. `code` (one of CODES) says what kind of
    refusal it is, for the doors that answer machines; without one it is
    "invalid", the request as sent cannot be done."""

    default_code = "invalid"

    def __init__(self, message: str = "", *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.field = field
        self.code = code or self.default_code


class AccessRefused(AccountError):
    """A write beyond the actor's own rights, or one that would leave nobody
    able to repair access: its code is the rule that refused ("right",
    "grant_bound", "rank", "last_manager"; `reason` says the same).
    `accounts.delegation.access_write` audits it after the transaction has
    been rolled back."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        resources=(),
        action=None,  # an accounts.audit.AuditAction; None: a grant refused
    ):
        super().__init__(message, code=reason)
        self.reason = reason
        self.resources = sorted(resources)
        self.action = action
