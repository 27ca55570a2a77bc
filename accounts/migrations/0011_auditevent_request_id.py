"""The request id of each audit event (iam.logs, accounts.audit).

Rolling upgrades run servers of the previous release against this schema
while the new ones start: their INSERTs do not name the column, so it has a
database default ("", one value for "no id", the column stays NOT NULL)
rather than a default Django alone knows. Adding such a column is a
catalogue change on PostgreSQL 11+, no table rewrite. The index (only of
rows that have an id: the audit screen's and the API's filter) is built
CONCURRENTLY on PostgreSQL, so audit writes, i.e. logins, go on meanwhile;
hence this migration is not atomic.
"""

from django.db import migrations, models

INDEX = models.Index(
    condition=models.Q(("request_id", ""), _negated=True),
    fields=["request_id"],
    name="auditevent_request_id",
)


def add_index(apps, schema_editor):
    model = apps.get_model("accounts", "AuditEvent")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(model, INDEX, concurrently=True)
    else:
        schema_editor.add_index(model, INDEX)


def remove_index(apps, schema_editor):
    model = apps.get_model("accounts", "AuditEvent")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(model, INDEX, concurrently=True)
    else:
        schema_editor.remove_index(model, INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0010_user_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="request_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="auditevent", index=INDEX)],
            database_operations=[migrations.RunPython(add_index, remove_index)],
        ),
    ]
