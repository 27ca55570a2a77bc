"""What the services of users, groups and roles share."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.audit import Actor, AuditAction, audit
from accounts.errors import AccountError
from accounts.inputs import clean_email, has_control
from accounts.selectors import user_get_by_email

ROOT_GROUP = "root"


def about(field: str, clean, *args):
    """`clean(*args)`, its refusal marked as being about `field`."""
    try:
        return clean(*args)
    except AccountError as exc:
        exc.field = field
        raise


def unique_email(email: str, *, exclude_pk=None) -> str:
    """An address being entered: canonical (accounts.inputs) and nobody else's."""
    email = about("email", clean_email, email)
    existing = user_get_by_email(email)
    if existing is not None and existing.pk != exclude_pk:
        raise AccountError(
            _("A user with this email already exists."), field="email", code="email_taken"
        )
    return email


def validate_password(password: str, user) -> None:
    """The password policy (settings.AUTH_PASSWORD_VALIDATORS), as a refusal."""
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages), field="password") from None


def clean_label(value: str, label: str, max_length: int = 100) -> str:
    """The name of a group or role: required, bounded, and with no control or
    bidi formatting characters (accounts.inputs.has_control), which could
    forge a line in the log or make a name read as another."""
    value = (value or "").strip()
    if not value:
        raise AccountError(_("%(label)s is required.") % {"label": _(label)})
    if has_control(value):
        raise AccountError(
            _("%(label)s must not contain control or formatting characters.") % {"label": _(label)}
        )
    if len(value) > max_length:
        raise AccountError(
            _("%(label)s must be at most %(max)d characters.")
            % {"label": _(label), "max": max_length}
        )
    return value


def reload(obj) -> None:
    """Read the stored row again under the access lock (another admin may
    have changed or deleted it since the page was loaded)."""
    try:
        obj.refresh_from_db()
    except obj.DoesNotExist:
        raise AccountError(
            _("This %(kind)s no longer exists.") % {"kind": _(obj._meta.verbose_name)},
            code="not_found",
        ) from None


def still_there(model, objs) -> None:
    """Groups or roles picked on a page may have been deleted since: say so
    (instead of a database error at commit)."""
    wanted = {obj.pk for obj in objs}
    found = set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    gone = sorted(str(obj) for obj in objs if obj.pk not in found)
    if gone:
        kind = model._meta.verbose_name
        raise AccountError(
            _("The %(kind)s %(names)s no longer exists; reload the page.")
            % {"kind": _(kind), "names": ", ".join(gone)},
            code="not_found",
        )


def changes(before: dict, after: dict) -> dict:
    """{field: [before, after]} for the fields that differ."""
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}


DELETED = {
    "user": AuditAction.USER_DELETED,
    "group": AuditAction.GROUP_DELETED,
    "role": AuditAction.ROLE_DELETED,
}


def delete_audited(obj, *, by: Actor, details=None) -> None:
    """Delete a user, group or role and record it; the event keeps the
    object's type, id and name, since the row itself is gone."""
    kind, pk, label = obj._meta.model_name, obj.pk, str(obj)
    obj.delete()
    audit(
        DELETED[kind],
        by=by,
        target_type=kind,
        target_id=pk,
        target_label=label,
        details=details,
    )
