"""The few signal hooks we keep, and why.

- Compiled access rules must be forgotten on *every* write path to groups,
  roles, rules and memberships (screens, shell, migrations), so cache
  invalidation hangs on model signals rather than on each service.
- allauth finishes a password reset inside its own view; its `password_reset`
  signal is the door it gives us to end the user's other sessions.
"""

from allauth.account.signals import password_reset
from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts import access
from accounts.models import Group, Membership, Role, Rule, User


def _invalidate(**_kwargs):
    access.invalidate_now_and_on_commit()


def _on_password_reset(sender, request, user, **_kwargs):
    from accounts.services import password_reset_completed

    password_reset_completed(request=request, user=user)


def connect() -> None:
    for model in (Group, Role, Rule, Membership):
        post_save.connect(_invalidate, sender=model, dispatch_uid=f"acl-save-{model.__name__}")
        post_delete.connect(_invalidate, sender=model, dispatch_uid=f"acl-del-{model.__name__}")
    for through in (Group.roles.through, User.groups.through):
        m2m_changed.connect(_invalidate, sender=through, dispatch_uid=f"acl-m2m-{through.__name__}")
    password_reset.connect(_on_password_reset, dispatch_uid="iam-password-reset")
