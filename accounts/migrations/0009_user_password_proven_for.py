"""User.password_proven_for: the address whose mailbox chose the usable
password (sso.services: only a password chosen at the account's current
address proves an SSO link).

Existing accounts: the address of the latest completed reset by mailed link
that the audit trail shows (its event names the account by the address it
had then; an address changed since makes the proof void). Every other
password (an initial one from the users screen or createuser, or one only
changed in a session since) proves nothing."""

from django.db import migrations, models


def from_audit_trail(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    latest = {}
    rows = AuditEvent.objects.filter(action="password.reset.completed", target_type="user")
    for target_id, label in rows.order_by("id").values_list("target_id", "target_label"):
        if str(target_id).isdigit():
            latest[int(target_id)] = label
    for pk, address in latest.items():
        User.objects.filter(pk=pk).exclude(password__startswith="!").update(
            password_proven_for=address
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_email_change"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="password_proven_for",
            field=models.EmailField(blank=True, editable=False, max_length=254),
        ),
        migrations.RunPython(from_audit_trail, migrations.RunPython.noop),
    ]
