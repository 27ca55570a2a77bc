"""`manage.py access export/apply`: the access model as a reviewed YAML file.

Through the command (call_command in this database; a separate process on
fresh SQLite databases for the round trip and the exit codes)."""

import os
import shutil
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from accounts.models import AuditEvent, Group, Membership, Role, Rule, User
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.servers import migrated_sqlite

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ["backoffice:users:*", "backoffice:groups:*", "backoffice:roles:*"]

SEEDS = """\
version: 1
roles:
- name: administrator
  description: Every screen and action.
  rules:
  - allow *:*:*
groups:
- name: backoffice-users
  description: Back Office users without admin rights.
  roles: []
- name: root
  description: Full administrators.
  roles:
  - administrator
"""


def export(*args) -> str:
    out = StringIO()
    call_command("access", "export", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def apply(tmp_path, text, *flags) -> tuple[str, str]:
    path = tmp_path / "access.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("access", "apply", str(path), *flags, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def state() -> tuple:
    """Everything apply could touch, and the trail."""
    return (
        export(),
        sorted(Membership.objects.values_list("user_id", "group_id", "source")),
        sorted(User.objects.values_list("pk", "access_stamp")),
        AuditEvent.objects.count(),
    )


def with_support(extra_rules="", extra_groups=""):
    return (
        SEEDS
        + f"""\
- name: support
  description: First-line support.
  roles:
  - helpdesk
{extra_groups}"""
    ).replace(
        "groups:\n",
        f"""\
- name: helpdesk
  description: Finds people.
  rules:
  - allow backoffice:users:view
  - deny backoffice:users:delete
{extra_rules}groups:
""",
        1,
    )


# --- export -------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_is_the_seeded_model_in_a_stable_order():
    text = export()
    data = yaml.safe_load(text)
    assert text.startswith("# The access model")
    assert data["version"] == 1
    assert [g["name"] for g in data["groups"]] == ["backoffice-users", "root"]
    assert data["roles"] == [
        {
            "name": "administrator",
            "description": "Every screen and action.",
            "rules": ["allow *:*:*"],
        }
    ]
    # The test settings switch the MFA policy off; the SSO default group is the seed.
    assert data["references"]["mfa_required_groups"] == []
    assert data["references"]["sso_default_group"] == "backoffice-users"
    assert export() == text


@pytest.mark.django_db
def test_export_writes_the_stored_description_and_the_references(settings, tmp_path):
    """A German reader's export holds the seed's stored English; the SSO and
    SCIM maps and the MFA groups are shown, sorted."""
    settings.IAM_MFA_REQUIRED_GROUPS = ["support", "root"]
    settings.IAM_SSO_PROVIDERS = {
        "kc": {
            "id": "kc",
            "kind": "oidc",
            "issuer": "https://sso.example",
            "client_id": "backoffice",
            "role_map": '{"z-admin": ["root"], "a-support": ["support", "backoffice-users"]}',
        }
    }
    GroupFactory(name="support")
    call_command(
        "scimtoken",
        "create",
        "--name",
        "entra",
        "--group-map",
        '{"Helpdesk": ["support"]}',
        "--max-group",
        "support",
        stdout=StringIO(),
    )
    with translation.override("de"):
        assert Group.objects.get(name="root").description != "Full administrators."
        call_command("access", "export", str(tmp_path / "out.yaml"), stderr=StringIO())
    data = yaml.safe_load((tmp_path / "out.yaml").read_text(encoding="utf-8"))
    assert {g["name"]: g["description"] for g in data["groups"]}["root"] == "Full administrators."
    assert data["references"] == {
        "mfa_required_groups": ["root", "support"],
        "sso_default_group": "backoffice-users",
        "sso_role_maps": {
            "kc": {"a-support": ["backoffice-users", "support"], "z-admin": ["root"]}
        },
        "scim_clients": {
            "entra": {"group_map": {"Helpdesk": ["support"]}, "max_group": ["support"]}
        },
    }


# --- apply ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_apply_creates_changes_and_audits_it_as_one_change(tmp_path, root_user):
    before = AuditEvent.objects.count()
    out, _err = apply(tmp_path, with_support())
    assert out.splitlines() == [
        "+ role helpdesk: allow backoffice:users:view, deny backoffice:users:delete",
        "+ group support: roles helpdesk",
        "Applied: 2 created, 0 changed, 0 removed.",
    ]
    support = Group.objects.get(name="support")
    assert [r.name for r in support.roles.all()] == ["helpdesk"]
    assert set(Rule.objects.filter(role__name="helpdesk").values_list("effect", "pattern")) == {
        ("allow", "backoffice:users:view"),
        ("deny", "backoffice:users:delete"),
    }
    applied = AuditEvent.objects.get(action="access.applied")
    assert (applied.actor_label, applied.channel, applied.outcome) == ("cli", "cli", "success")
    assert applied.target_label == "access.yaml"
    assert applied.details == {
        "file": "access.yaml",
        "groups": {"added": ["support"]},
        "roles": {"added": ["helpdesk"]},
    }
    # Each object keeps its own history too, in the same transaction, and
    # one request id ties them to the change.
    assert AuditEvent.objects.count() == before + 3
    ids = set(AuditEvent.objects.order_by("-id")[:3].values_list("request_id", flat=True))
    assert len(ids) == 1 and ids != {""}

    changed = with_support("  - allow backoffice:audit:view\n").replace(
        "First-line support.", "Second-line support."
    )
    out, _err = apply(tmp_path, changed)
    assert out.splitlines() == [
        "~ role helpdesk: rules +allow backoffice:audit:view",
        "~ group support: description 'First-line support.' -> 'Second-line support.'",
        "Applied: 0 created, 2 changed, 0 removed.",
    ]
    latest = AuditEvent.objects.filter(action="access.applied").first()
    assert latest.details == {
        "file": "access.yaml",
        "groups": {"changed": ["support"]},
        "roles": {"changed": ["helpdesk"]},
    }


def test_the_audit_screen_reads_the_change_in_german(tmp_path, admin):
    apply(tmp_path, with_support())
    with translation.override("en"):  # the request's German stays with the request
        page = admin.get("/audit/?action=access.applied", HTTP_ACCEPT_LANGUAGE="de")
    rows = page.content.decode().split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert "Zugriffsmodell aus einer Datei angewendet" in rows
    assert "Datei: access.yaml" in rows
    assert "support" in rows and "helpdesk" in rows


@pytest.mark.django_db
def test_a_second_apply_says_no_changes_and_writes_nothing(tmp_path, root_user):
    apply(tmp_path, with_support())
    before = state()
    out, err = apply(tmp_path, with_support())
    assert out.strip() == "No changes."
    assert err == ""
    assert state() == before
    # An export applied is no change either, in German too (seeded descriptions
    # compare as stored, not as translated).
    text = export()
    with translation.override("de"):
        out, _err = apply(tmp_path, text)
    assert out.strip() == "No changes."
    assert state() == before


@pytest.mark.django_db
def test_dry_run_shows_the_diff_and_changes_nothing(tmp_path, root_user):
    GroupFactory(name="legacy")
    before = state()
    out, _err = apply(tmp_path, with_support(), "--dry-run", "--prune")
    assert out.splitlines() == [
        "+ role helpdesk: allow backoffice:users:view, deny backoffice:users:delete",
        "+ group support: roles helpdesk",
        "- group legacy",
        "Dry run: 2 created, 0 changed, 1 removed; nothing was applied.",
    ]
    assert state() == before
    assert not Group.objects.filter(name__in=["support"]).exists()


@pytest.mark.django_db
def test_what_the_file_does_not_name_is_kept_unless_pruned(tmp_path, root_user):
    legacy_role = RoleFactory(name="legacy-role")
    RuleFactory(role=legacy_role, pattern="backoffice:audit:view")
    GroupFactory(name="legacy", roles=[legacy_role])
    out, _err = apply(tmp_path, with_support())
    assert "  group legacy: not in the file, kept (--prune deletes it)" in out.splitlines()
    assert "  role legacy-role: not in the file, kept (--prune deletes it)" in out.splitlines()
    assert Group.objects.filter(name="legacy").exists()

    out, _err = apply(tmp_path, with_support(), "--prune")
    assert out.splitlines() == [
        "- group legacy",
        "- role legacy-role",
        "Applied: 0 created, 0 changed, 2 removed.",
    ]
    assert not Group.objects.filter(name="legacy").exists()
    assert not Role.objects.filter(name="legacy-role").exists()
    assert AuditEvent.objects.filter(action="group.deleted", target_label="legacy").exists()


@pytest.mark.django_db
def test_prune_never_removes_a_group_with_members_or_a_built_in_one(tmp_path, root_user):
    """Memberships are people's: a group that still has members is refused,
    and with it the whole file."""
    staffed = GroupFactory(name="staffed")
    UserFactory(groups=[staffed])
    before = state()
    with pytest.raises(CommandError, match="staffed still has 1 member"):
        apply(tmp_path, with_support(), "--prune")
    assert state()[:3] == before[:3]
    assert not Group.objects.filter(name="support").exists()
    # A file without root may not prune it (nor backoffice-users).
    with pytest.raises(CommandError, match="is built in and cannot be deleted"):
        apply(tmp_path, "version: 1\nroles: []\ngroups: []\n", "--prune")
    assert Group.objects.filter(name="root").exists()


@pytest.mark.django_db
def test_names_match_whatever_their_case_and_rename(tmp_path, root_user):
    GroupFactory(name="Support")
    out, _err = apply(tmp_path, with_support())
    assert (
        "~ group support: name Support -> support; description '' -> 'First-line support.'; "
        "roles +helpdesk"
    ) in out
    assert list(Group.objects.filter(name__iexact="support").values_list("name", flat=True)) == [
        "support"
    ]
    # A role renamed (its case) is still the group's role: the group is no change.
    out, _err = apply(tmp_path, with_support().replace("helpdesk", "Helpdesk"))
    assert out.splitlines() == [
        "~ role Helpdesk: name helpdesk -> Helpdesk",
        "Applied: 0 created, 1 changed, 0 removed.",
    ]


@pytest.mark.django_db
def test_a_group_may_name_a_stored_role_unless_pruning(tmp_path, root_user):
    RuleFactory(role=RoleFactory(name="auditor"), pattern="backoffice:audit:*")
    text = SEEDS + "- name: auditors\n  roles: [auditor]\n"
    out, _err = apply(tmp_path, text)
    assert "+ group auditors: roles auditor" in out
    Group.objects.get(name="auditors").delete()
    with pytest.raises(
        CommandError,
        match=r"line 16: group auditors: unknown role 'auditor' \(it is not in the file, and --p",
    ):
        apply(tmp_path, text, "--prune")


# --- what apply refuses, applying nothing ------------------------------------------------


@pytest.mark.django_db
def test_a_file_that_would_lock_everyone_out_is_refused_whole(tmp_path):
    """The only manager holds it through group admins; the file takes groups
    management from its role (and adds support): nothing is applied."""
    managers = RoleFactory(name="managers")
    for pattern in MANAGE:
        RuleFactory(role=managers, pattern=pattern)
    UserFactory(groups=[GroupFactory(name="admins", roles=[managers])])
    text = with_support(
        "- name: managers\n  rules:\n  - allow backoffice:users:*\n  - allow backoffice:roles:*\n",
        "- name: admins\n  roles: [managers]\n",
    )
    before = state()
    with pytest.raises(CommandError, match="no active user able to manage users, groups and roles"):
        apply(tmp_path, text)
    assert state()[:3] == before[:3]
    refused = AuditEvent.objects.get(action="access.lockout_refused")
    assert (refused.outcome, refused.channel) == ("failure", "cli")
    assert not AuditEvent.objects.filter(action__in=["access.applied", "group.created"]).exists()
    # The dry run meets the same refusal, and leaves no trace at all.
    count = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="no active user able"):
        apply(tmp_path, text, "--dry-run")
    assert AuditEvent.objects.count() == count
    # Keeping groups management, the same file passes.
    out, _err = apply(
        tmp_path, text.replace("roles:*\n", "roles:*\n  - allow backoffice:groups:*\n")
    )
    assert "+ group support: roles helpdesk" in out


@pytest.mark.parametrize(
    "weaker",
    [
        pytest.param(lambda t: t.replace("  - administrator\n", ""), id="root-loses-its-role"),
        pytest.param(
            lambda t: t.replace("  - allow *:*:*\n", "  - allow *:*:*\n  - deny *:*:delete\n"),
            id="a-deny-rule",
        ),
        pytest.param(
            lambda t: t.replace("  - allow *:*:*\n", "  - allow backoffice:*:*\n"),
            id="enumerated-instead-of-everything",
        ),
    ],
)
@pytest.mark.django_db
def test_a_file_cannot_weaken_root(tmp_path, weaker):
    """Even while another manager remains (so the invariant alone would let it pass)."""
    UserFactory(groups=["root"])
    managers = RoleFactory(name="managers")
    for pattern in MANAGE:
        RuleFactory(role=managers, pattern=pattern)
    UserFactory(groups=[GroupFactory(name="admins", roles=[managers])])
    before = state()
    with pytest.raises(CommandError, match="would weaken the built-in group root"):
        apply(tmp_path, weaker(SEEDS))
    assert state() == before


@pytest.mark.django_db
def test_everything_for_another_group_is_the_operators_to_give(tmp_path, root_user):
    """The command line is the operator: it may make a second all-powerful group."""
    text = SEEDS + "- name: breakglass\n  roles: [administrator]\n"
    out, _err = apply(tmp_path, text)
    assert "+ group breakglass: roles administrator" in out


def line_of(text: str, snippet: str) -> int:
    """The 1-based line of the last line holding `snippet`."""
    return max(i for i, line in enumerate(text.splitlines(), start=1) if snippet in line)


# (id, file, the line the error must name (found by this text) or None, message)
BAD = [
    (
        "unknown-resource",
        with_support("  - allow backoffice:user:view\n"),
        "backoffice:user:view",
        "role helpdesk: 'backoffice:user:view' is an unknown resource (it matches none that "
        "exists); did you mean backoffice:users:view?",
    ),
    (
        "malformed-pattern",
        with_support("  - allow users\n"),
        "allow users",
        "role helpdesk: 'users' is not area:screen:action",
    ),
    (
        "bad-effect",
        with_support("  - grant backoffice:users:view\n"),
        "grant",
        "role helpdesk: write a rule as 'allow PATTERN' or 'deny PATTERN'",
    ),
    (
        "unknown-role",
        with_support().replace("  - helpdesk\n", "  - helpdessk\n"),
        "helpdessk",
        "group support: unknown role 'helpdessk'",
    ),
    (
        "not-yaml",
        SEEDS.replace("  roles: []", "  roles: [unclosed"),
        "- name: root",
        "not valid YAML",
    ),
    (
        "duplicate-group",
        SEEDS + "- name: ROOT\n",
        "ROOT",
        "group 'ROOT' is given twice (first on line 11)",
    ),
    (
        "duplicate-rule",
        with_support("  - allow backoffice:users:view\n"),
        "allow backoffice:users:view",
        "role helpdesk: rule 'allow backoffice:users:view' is given twice (first on line 10)",
    ),
    (
        "duplicate-key",
        SEEDS.replace("  roles: []", "  roles: []\n  roles: [administrator]"),
        "roles: [administrator]",
        "a group: 'roles' is given twice",
    ),
    (
        "unknown-key",
        SEEDS.replace("  roles: []", "  members: [ada]"),
        "members",
        "a group: unknown key 'members' (expected name, description, roles, eligible_only, "
        "max_activation_hours, activation_approval, grant_approval)",
    ),
    ("wrong-shape", "- root\n- administrator\n", "- root", "the file must be a mapping"),
    (
        "rules-not-a-list",
        SEEDS.replace("  - allow *:*:*", "    allow: '*:*:*'"),
        "allow:",
        "role administrator: rules must be a list",
    ),
    ("name-not-text", SEEDS + "- name: 2024\n", "2024", "a group's name must be text (quote it)"),
    (
        "name-with-control",
        SEEDS + '- name: "a\\u202eb"\n',
        "u202e",
        "Name must not contain control or formatting characters.",
    ),
    ("no-name", SEEDS + "- description: nameless\n", "nameless", "a group: 'name' is missing"),
    (
        "alias",
        SEEDS.replace("roles: []", "roles: &r []") + "- name: x\n  roles: *r\n",
        "&r",
        "anchors and aliases (&, *) are not supported: write each entry out",
    ),
    ("version", "version: 2\n", "version", "version must be 1"),
    ("deep", "references:\n  a: " + "[" * 5000 + "]" * 5000 + "\n", "a: [", "nested too deeply"),
    ("empty", "", None, "the file is empty: expected roles: and groups:"),
    (
        "python-tag",
        "version: 1\ngroups:\n- name: !!python/object:os.system x\n",
        "python",
        "a group's name must be text (quote it)",
    ),
]


@pytest.mark.parametrize("text,where,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
@pytest.mark.django_db
def test_a_bad_file_is_one_line_naming_its_line_and_changes_nothing(
    tmp_path, root_user, text, where, message
):
    before = state()
    with pytest.raises(CommandError) as refused:
        apply(tmp_path, text)
    line = f"line {line_of(text, where)}: " if where else ""
    assert str(refused.value).startswith(f"{tmp_path / 'access.yaml'}: {line}{message}")
    assert "\n" not in str(refused.value)
    assert state() == before


@pytest.mark.django_db
def test_a_missing_or_binary_file_is_one_line(tmp_path):
    with pytest.raises(CommandError, match=r"nothere.yaml: no such file\.$"):
        call_command("access", "apply", str(tmp_path / "nothere.yaml"))
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00groups")
    with pytest.raises(CommandError, match=r"bin.yaml: not UTF-8 text\.$"):
        call_command("access", "apply", str(tmp_path / "bin.yaml"))
    with pytest.raises(CommandError, match="cannot read it"):
        call_command("access", "apply", str(tmp_path))


@pytest.mark.django_db
def test_a_group_the_configuration_names_but_nobody_made_is_a_warning(tmp_path, settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["ops"]
    _out, err = apply(tmp_path, SEEDS)
    assert (
        err.strip() == "Warning: group ops is named in IAM_MFA_REQUIRED_GROUPS, but does not exist."
    )


# --- the real command line, on fresh databases ------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """One migrated SQLite file; each test copies it (a fresh install)."""
    db = tmp_path_factory.mktemp("access") / "template.sqlite3"
    migrated_sqlite(db)
    return db


def _env(db: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(DATABASE_URL=f"sqlite:///{db}", DJANGO_SETTINGS_MODULE="iam.settings")
    return env


def fresh(migrated, tmp_path, name) -> dict:
    db = tmp_path / f"{name}.sqlite3"
    shutil.copy(migrated, db)
    return _env(db)


def cli(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", "access", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_round_trip_through_a_fresh_database_and_exit_codes(migrated, tmp_path, settings):
    """Export → apply on a fresh install (another process, another database)
    → export is the same file, byte for byte; a bad file exits 1 with one
    line on stderr."""
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]  # as the other process has it
    call_command("access", "apply", "deploy/access.yaml", stdout=StringIO())
    apply(tmp_path, with_support("  - allow backoffice:api-clients:view\n"))
    sales = RoleFactory(name="Vertrieb Süd", description="Sieht Konten, löscht keine.")
    RuleFactory(role=sales, pattern="backoffice:users:*")
    RuleFactory(role=sales, effect="deny", pattern="backoffice:users:delete")
    GroupFactory(name="Außendienst", roles=[sales])
    with translation.override("de"):
        call_command("access", "export", str(tmp_path / "exported.yaml"), stderr=StringIO())
    exported = (tmp_path / "exported.yaml").read_text(encoding="utf-8")
    assert "Vertrieb Süd" in exported and "Full administrators." in exported

    env = fresh(migrated, tmp_path, "fresh")
    done = cli(env, "apply", str(tmp_path / "exported.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "Applied: 6 created, 0 changed, 0 removed."
    again = cli(env, "export")
    assert again.returncode == 0, again.stderr
    assert again.stdout == exported

    (tmp_path / "bad.yaml").write_text("groups:\n- name: x\n  roles: [nobody]\n")
    bad = cli(env, "apply", str(tmp_path / "bad.yaml"))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"CommandError: {tmp_path / 'bad.yaml'}: line 3: group x: unknown role 'nobody'"
    ]


def test_the_demo_and_the_stack_start_from_deploy_access_yaml(migrated, tmp_path):
    """make run and the compose stack's migrate service apply it after
    migrating; it holds the groups the compose Keycloak's ROLE_MAP targets."""
    import json

    makefile = (ROOT / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert run.index("migrate") < run.index("access apply deploy/access.yaml")
    assert run.index("access apply deploy/access.yaml") < run.index("demoadmin")
    stack = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = " ".join(stack["services"]["migrate"]["command"])
    assert "migrate --noinput && python manage.py access apply deploy/access.yaml &&" in command
    assert "deploy/access.yaml" in (ROOT / "Dockerfile").read_text()
    role_map = json.loads(stack["x-app-env"]["IAM_SSO_KEYCLOAK_ROLE_MAP"])
    demo = yaml.safe_load((ROOT / "deploy" / "access.yaml").read_text())
    targets = {group for groups in role_map.values() for group in groups}
    assert targets <= {g["name"] for g in demo["groups"]}

    env = fresh(migrated, tmp_path, "demo")
    # The compose stack's identity-provider settings, ROLE_MAP included.
    env.update({k: v for k, v in stack["x-app-env"].items() if k.startswith("IAM_SSO_")})
    first = cli(env, "apply", "deploy/access.yaml")
    assert first.returncode == 0, first.stderr
    assert "Warning" not in first.stderr
    second = cli(env, "apply", "deploy/access.yaml")
    assert second.stdout.strip() == "No changes."


def test_every_option_has_help():
    """`manage.py access apply --help` is the operator's manual."""
    import argparse

    from django.core.management import load_command_class

    parser = load_command_class("accounts", "access").create_parser("manage.py", "access")
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subs[0].choices) == {"export", "apply", "requests", "approve", "deny"}
    for name, sub in subs[0].choices.items():
        ours = [a for a in sub._actions if a.dest != "help"]
        assert (ours or name == "requests") and all(a.help for a in ours), sub.prog
    apply = subs[0].choices["apply"]
    assert {"--dry-run", "--prune"} <= {o for a in apply._actions for o in a.option_strings}
