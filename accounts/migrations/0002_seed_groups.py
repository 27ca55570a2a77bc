"""Seed the two groups every installation starts with.

- `root`: role `administrator`, which allows everything (`*:*:*`).
- `backoffice-users`: no roles; the default group of SSO-provisioned users,
  who see the dashboard only until an admin gives them more.

The descriptions stay English here: accounts.seeds shows these exact texts
in the reader's language.
"""

from django.db import migrations


def seed(apps, schema_editor):
    Group = apps.get_model("accounts", "Group")
    Role = apps.get_model("accounts", "Role")
    Rule = apps.get_model("accounts", "Rule")
    admin, _ = Role.objects.get_or_create(
        name="administrator", defaults={"description": "Every screen and action."}
    )
    Rule.objects.get_or_create(role=admin, effect="allow", pattern="*:*:*")
    root, _ = Group.objects.get_or_create(
        name="root", defaults={"description": "Full administrators."}
    )
    root.roles.add(admin)
    Group.objects.get_or_create(
        name="backoffice-users",
        defaults={"description": "Back Office users without admin rights."},
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
