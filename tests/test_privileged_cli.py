"""Privileged access at the command line (issue 23): `access export/apply`
carry the groups' settings; `access requests/approve/deny` are the
break-glass when every root member is eligible-only with approval and so
nobody else could approve the last manager's activation."""

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from accounts.models import AccessRequest, AuditEvent, Group, Membership
from accounts.services import privileged
from tests.factories import UserFactory
from tests.support.privileged import activate, group_giving, holds

pytestmark = pytest.mark.django_db
POLICY = {
    "eligible_only": True,
    "max_activation_hours": 4,
    "activation_approval": True,
    "grant_approval": True,
}


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def export() -> dict:
    return yaml.safe_load(run("access", "export"))


def group_in(model: dict, name: str) -> dict:
    return next(g for g in model["groups"] if g["name"] == name)


def apply(tmp_path, model: dict, *flags) -> str:
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(model), encoding="utf-8")
    return run("access", "apply", str(path), *flags)


def test_the_settings_round_trip_idempotent_and_in_the_diff(tmp_path, root_user):
    group_giving("dba")
    model = export()
    assert not set(POLICY) & set(group_in(model, "dba"))  # defaults are not written
    group_in(model, "dba").update(POLICY)
    out = apply(tmp_path, model, "--dry-run")
    assert "eligible_only False -> True" in out and "grant_approval False -> True" in out
    assert not Group.objects.get(name="dba").eligible_only
    out = apply(tmp_path, model)
    assert "max_activation_hours 8 -> 4" in out
    dba = Group.objects.get(name="dba")
    assert {k: getattr(dba, k) for k in POLICY} == POLICY
    assert {k: group_in(export(), "dba")[k] for k in POLICY} == POLICY
    assert "No changes." in apply(tmp_path, export())
    changed = AuditEvent.objects.filter(action="group.updated", target_label="dba").latest("id")
    assert changed.details  # the group's own event, as the screens write it


def test_a_new_group_carries_its_settings_and_the_operator_may_loosen(tmp_path, root_user):
    model = export()
    model["groups"].append({"name": "auditors", "roles": [], **POLICY})
    assert "+ group auditors" in apply(tmp_path, model)
    assert Group.objects.get(name="auditors").grant_approval
    # The file leaves them out: defaults, which loosens (the operator may).
    for key in POLICY:
        group_in(model, "auditors").pop(key)
    apply(tmp_path, model)
    auditors = Group.objects.get(name="auditors")
    assert not auditors.grant_approval and not auditors.eligible_only


def test_memberships_are_never_touched_by_apply(tmp_path, root_user):
    model = export()
    group_in(model, "root").update(eligible_only=True)
    apply(tmp_path, model)
    assert Membership.objects.filter(user=root_user, group__name="root").exists()
    assert not holds(root_user, "backoffice:users:view")  # eligible now: activate first


@pytest.mark.parametrize(
    "key,value,says",
    [
        ("eligible_only", "yes please", "eligible_only must be true or false"),
        ("grant_approval", 1, "grant_approval must be true or false"),
        ("max_activation_hours", "8", "max_activation_hours must be a whole number of hours"),
        ("max_activation_hours", 0, "max_activation_hours must be between 1 and 168"),
        ("max_activation_hours", 169, "max_activation_hours must be between 1 and 168"),
        ("max_activation_hours", 1.5, "must be a whole number of hours"),
    ],
)
def test_a_bad_setting_is_one_line_with_file_and_line_and_changes_nothing(
    tmp_path, root_user, key, value, says
):
    group_giving("dba")
    model = export()
    group_in(model, "dba")[key] = value
    with pytest.raises(CommandError) as refused:
        apply(tmp_path, model)
    message = str(refused.value)
    assert "\n" not in message and "access.yaml: line " in message and says in message
    assert not Group.objects.get(name="dba").eligible_only


@pytest.fixture
def lone_root(db):
    """A shop run with nobody holding root at rest: its one root member is
    eligible only, and an activation needs someone else's approval."""
    Group.objects.filter(name="root").update(eligible_only=True, activation_approval=True)
    return UserFactory(email="only@shop.example", groups=["root"])


def test_the_operator_approves_the_last_managers_activation(lone_root):
    request = activate(lone_root, Group.objects.get(name="root"))
    assert request.status == AccessRequest.Status.PENDING
    assert privileged.approvers(request) == []  # nobody else could
    listed = run("access", "requests")
    assert f"{request.pk}\tactivation\tonly@shop.example\troot\t" in listed
    assert "incident 42" in listed
    out = run("access", "approve", str(request.pk), "--note", "break-glass, ticket 7")
    assert "approved" in out
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.ACTIVE
    assert holds(lone_root, "backoffice:users:view")
    approved = AuditEvent.objects.get(action="access.approved")
    assert approved.details["note"] == "break-glass, ticket 7"
    assert approved.actor_id is None
    assert "No requests wait" in run("access", "requests")
    with pytest.raises(CommandError) as refused:
        run("access", "approve", str(request.pk))
    assert "already decided" in str(refused.value) and "\n" not in str(refused.value)


def test_the_operator_denies_and_bad_ids_are_one_line(lone_root):
    request = activate(lone_root, Group.objects.get(name="root"))
    assert "denied" in run("access", "deny", str(request.pk), "--note", "not today")
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.DENIED
    assert not holds(lone_root, "backoffice:users:view")
    for bad in ("999999", "abc", "1" * 40, "-1"):
        with pytest.raises(CommandError) as refused:
            run("access", "approve", bad)
        assert "No access request" in str(refused.value)
