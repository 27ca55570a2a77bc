"""Writes about accounts, groups and roles: one function per action.

Each checks its rules, changes the data in one transaction and writes its
audit event with what changed (never a password). A refusal raises
AccountError with a message fit for a form or the command line, and changes
nothing. Who acts, and from where, is an `accounts.audit.Actor`; writes that
can change who may do what run in `accounts.delegation.access_write`.

The functions live by entity (users, emails: a change of address, sessions,
passwords, mfa, groups, roles, access_model: the whole model from a file);
their names are gathered here, so callers write `services.user_update(...)`.
"""

from accounts.errors import AccessRefused, AccountError
from accounts.services.access_model import access_model_apply, access_model_snapshot
from accounts.services.common import ROOT_GROUP
from accounts.services.emails import (
    LinkRefused,
    email_change_for_link,
    user_email_change_cancel,
    user_email_change_confirm,
)
from accounts.services.groups import (
    configured_group_names,
    group_create,
    group_delete,
    group_update,
)
from accounts.services.mfa import user_mfa_reset
from accounts.services.passwords import (
    password_changed_by_user,
    password_reset_completed,
    user_send_password_link,
)
from accounts.services.roles import role_create, role_delete, role_update
from accounts.services.sessions import (
    user_other_sessions_end,
    user_session_end,
    user_sessions_end,
    user_sessions_end_some,
)
from accounts.services.users import (
    user_create,
    user_delete,
    user_set_language,
    user_set_status,
    user_update,
)

__all__ = [
    "ROOT_GROUP",
    "AccessRefused",
    "AccountError",
    "LinkRefused",
    "access_model_apply",
    "access_model_snapshot",
    "email_change_for_link",
    "configured_group_names",
    "group_create",
    "group_delete",
    "group_update",
    "password_changed_by_user",
    "password_reset_completed",
    "role_create",
    "role_delete",
    "role_update",
    "user_create",
    "user_set_language",
    "user_delete",
    "user_email_change_cancel",
    "user_email_change_confirm",
    "user_mfa_reset",
    "user_other_sessions_end",
    "user_send_password_link",
    "user_session_end",
    "user_sessions_end",
    "user_sessions_end_some",
    "user_set_status",
    "user_update",
]
