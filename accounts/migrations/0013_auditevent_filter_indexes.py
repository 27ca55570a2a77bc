"""Indexes that serve each audit filter in the order shown (created_at, id),
for an audit trail of ten million events (benchmarks/audit_scale.py).

They replace the single-column indexes of created_at, action and
target_label, which the new ones lead with. The new ones are built
CONCURRENTLY on PostgreSQL, so audit writes (logins) go on while a large
table is indexed; hence this migration is not atomic. The old ones are
dropped afterwards (a short lock each). Three are PostgreSQL's alone and
not in the model's state (see AuditEvent.Meta): the text filters' indexes
in the pattern operator classes, for `=` and `LIKE 'X%'` alike. Servers of
the previous release run unchanged against either set of indexes.
"""

from django.db import migrations, models

INDEXES = [
    models.Index(fields=["created_at", "id"], name="auditevent_time"),
    models.Index(
        condition=models.Q(("outcome", "failure")),
        fields=["created_at", "id"],
        name="auditevent_failure_time",
    ),
    models.Index(
        condition=models.Q(("outcome", "failure")),
        fields=["action", "created_at", "id"],
        name="auditevent_failure_action",
    ),
    models.Index(fields=["channel", "created_at", "id"], name="auditevent_channel_time"),
    models.Index(
        fields=["target_type", "target_id", "created_at", "id"], name="auditevent_about_time"
    ),
]
# PostgreSQL only: name → what it indexes. upper(x) is what Django's
# iexact and istartswith compare on PostgreSQL.
PATTERN_INDEXES = {
    "auditevent_action_time": "action varchar_pattern_ops, created_at, id",
    "auditevent_actor_time": "upper(actor_label::text) text_pattern_ops, created_at, id",
    "auditevent_target_time": "upper(target_label::text) text_pattern_ops, created_at, id",
}


def add_indexes(apps, schema_editor):
    model = apps.get_model("accounts", "AuditEvent")
    if schema_editor.connection.vendor != "postgresql":
        for index in INDEXES:
            schema_editor.add_index(model, index)
        return
    for index in INDEXES:
        # A run interrupted earlier may have left it INVALID: build it anew.
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index.name}"')
        schema_editor.add_index(model, index, concurrently=True)
    for name, columns in PATTERN_INDEXES.items():
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY "{name}" ON "accounts_auditevent" ({columns})'
        )


def remove_indexes(apps, schema_editor):
    model = apps.get_model("accounts", "AuditEvent")
    if schema_editor.connection.vendor != "postgresql":
        for index in INDEXES:
            schema_editor.remove_index(model, index)
        return
    for index in INDEXES:
        schema_editor.remove_index(model, index, concurrently=True)
    for name in PATTERN_INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0012_privileged_access"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="auditevent", index=index) for index in INDEXES
            ],
            database_operations=[migrations.RunPython(add_indexes, remove_indexes)],
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="created_at",
            field=models.DateTimeField(auto_now_add=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="target_label",
            field=models.CharField(blank=True, max_length=254),
        ),
    ]
