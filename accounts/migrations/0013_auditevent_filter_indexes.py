"""Indexes that serve each audit filter in the order shown (created_at, id),
for an audit trail of ten million events (benchmarks/audit_scale.py).

They replace the single-column indexes of created_at, action and
target_label, which the new ones lead with. On PostgreSQL the new ones are
built and the old ones dropped CONCURRENTLY, so audit writes (logins) go on
while a large table is indexed, even beside a long export; hence this
migration is not atomic. Three are PostgreSQL's alone and
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


# The single-column indexes (db_index=True) the new ones replace.
OLD_COLUMNS = ("created_at", "action", "target_label")


def drop_old_indexes(apps, schema_editor):
    """DROP INDEX CONCURRENTLY on PostgreSQL: a plain DROP waits for every
    transaction reading the table (a long CSV export) while holding its
    lock request, and every audit write (every login) queues behind it."""
    connection = schema_editor.connection
    model = apps.get_model("accounts", "AuditEvent")
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    concurrently = " CONCURRENTLY" if connection.vendor == "postgresql" else ""
    for name, info in constraints.items():
        single = len(info["columns"]) == 1 and info["columns"][0] in OLD_COLUMNS
        if info["index"] and single and not (info["primary_key"] or info["unique"]):
            schema_editor.execute(
                f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}"
            )


def restore_old_indexes(apps, schema_editor):
    """The indexes of db_index=True again, with Django's names for them."""
    model = apps.get_model("accounts", "AuditEvent")
    postgres = schema_editor.connection.vendor == "postgresql"
    concurrently = {"concurrently": True} if postgres else {}
    for column in OLD_COLUMNS:
        field = model._meta.get_field(column)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], **concurrently))
        if postgres and column != "created_at":
            schema_editor.execute(
                schema_editor._create_index_sql(
                    model,
                    fields=[field],
                    suffix="_like",
                    opclasses=["varchar_pattern_ops"],
                    concurrently=True,
                )
            )


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
        migrations.SeparateDatabaseAndState(
            state_operations=[
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
            ],
            database_operations=[migrations.RunPython(drop_old_indexes, restore_old_indexes)],
        ),
    ]
