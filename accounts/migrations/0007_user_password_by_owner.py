"""User.password_by_owner: whether the usable password was chosen by whoever
holds the account (sso.services: only such a password proves an SSO link).

Existing accounts count as owner-chosen when the audit trail shows the
owner changing the password or setting it through a mailed link (an admin
cannot set a password after creating the account); every other password
(an initial one from the users screen or createuser) proves nothing."""

from django.db import migrations, models

OWNER_SET = ("password.changed", "password.reset.completed")


def from_audit_trail(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    ids = set(
        AuditEvent.objects.filter(action__in=OWNER_SET, target_type="user").values_list(
            "target_id", flat=True
        )
    )
    pks = [int(i) for i in ids if str(i).isdigit()]
    for start in range(0, len(pks), 500):
        User.objects.filter(pk__in=pks[start : start + 500]).exclude(
            password__startswith="!"
        ).update(password_by_owner=True)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_user_language"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="password_by_owner",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(from_audit_trail, migrations.RunPython.noop),
    ]
