"""Issue 21's screens attacked by a narrow or careless admin (review).

Each test posts through HTTP as someone who should be refused, or feeds
odd input, and checks that nothing changed and no 500 came back."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from accounts.audit import Actor, AuditAction, audit
from accounts.models import Group, Role, User
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import admin_with, browser_of

pytestmark = pytest.mark.django_db


def _groups_of(user):
    return sorted(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def _rules_of(role):
    return sorted(Role.objects.get(pk=role.pk).rules.values_list("effect", "pattern"))


# --- the Groups tab ---------------------------------------------------------


def test_groups_tab_post_needs_edit(root_user):
    viewer = admin_with("backoffice:users:view", name="viewers")
    plain = UserFactory(email="plain@shop.example")
    url = reverse("backoffice:user-groups", args=[plain.pk])
    root = Group.objects.get(name="root")
    response = browser_of(viewer).post(url, {"groups": [root.pk]})
    assert response.status_code == 403
    assert _groups_of(plain) == []


def test_groups_tab_gives_no_group_beyond_the_actor(root_user):
    editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
    plain = UserFactory(email="plain@shop.example")
    url = reverse("backoffice:user-groups", args=[plain.pk])
    root = Group.objects.get(name="root")
    browser_of(editor).post(url, {"groups": [root.pk]})
    assert _groups_of(plain) == []
    # Oneself, too.
    browser_of(editor).post(
        reverse("backoffice:user-groups", args=[editor.pk]), {"groups": [root.pk]}
    )
    assert _groups_of(editor) == ["editors"]


def test_groups_tab_leaves_an_outranking_account_alone(root_user):
    editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
    url = reverse("backoffice:user-groups", args=[root_user.pk])
    page = browser_of(editor).get(url)
    assert b'type="submit"' not in page.content.split(b'data-testid="user-groups"')[1]
    browser_of(editor).post(url, {"groups": []})
    assert _groups_of(root_user) == ["root"]


def test_groups_tab_posts_need_csrf(root_user):
    plain = UserFactory(email="plain@shop.example")
    client = Client(enforce_csrf_checks=True)
    client.post(reverse("account_login"), {"login": root_user.email, "password": PASSWORD})
    for name in ("user-groups", "user-edit", "user-unblock", "user-password-reset"):
        response = client.post(reverse(f"backoffice:{name}", args=[plain.pk]), {})
        assert response.status_code == 403, name


def test_groups_tab_keeps_a_locked_group_it_does_not_show_as_changeable(root_user):
    """A group whose role only denies what the actor lacks is locked (its
    scope is beyond), yet its member is not above the actor: saving the
    tab without touching that group keeps it."""
    editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
    role = RoleFactory(name="no-roles")
    RuleFactory(role=role, effect="deny", pattern="backoffice:roles:*")
    locked = GroupFactory(name="no-roles", roles=[role])
    other = GroupFactory(name="plain-group")
    member = UserFactory(email="member@shop.example", groups=[locked])
    client = browser_of(editor)
    url = reverse("backoffice:user-groups", args=[member.pk])
    page = client.get(url).content.decode()
    assert f'type="hidden" name="groups" value="{locked.pk}"' in page
    client.post(url, {"groups": [locked.pk, other.pk]})
    assert _groups_of(member) == ["no-roles", "plain-group"]


# --- the role grid ------------------------------------------------------------


def _role_form(role, **cells):
    data = {"name": role.name, "description": role.description, "rules": ""}
    data.update(cells)
    return data


@pytest.fixture
def role_admin(root_user):
    return admin_with(
        "backoffice:roles:*", "backoffice:users:view", "backoffice:users:edit", name="role-admins"
    )


def test_grid_forged_cell_beyond_the_actor_is_refused(role_admin):
    role = RoleFactory(name="helpers")
    RuleFactory(role=role, effect="allow", pattern="backoffice:users:view")
    url = reverse("backoffice:role-edit", args=[role.pk])
    client = browser_of(role_admin)
    for forged in (
        {"cell-users-view": "allow", "cell-users-delete": "allow"},
        {"cell-users-view": "allow", "rules": "allow backoffice:users:*"},
        {"cell-users-view": "allow", "rules": "allow backoffice:*:delete"},
    ):
        response = client.post(url, _role_form(role, **forged))
        assert response.status_code == 200, forged
        assert _rules_of(role) == [("allow", "backoffice:users:view")]


@pytest.mark.parametrize(
    "cells",
    [
        {"cell-users-view": "ALLOW"},
        {"cell-users-view": "allow\x00"},
        {"cell-nothing-here": "allow", "cell-users-view": "allow"},
        {"cell-users-view": "allow", "rules": "allow backoffice:users:view\x00"},
        {"cell-users-view": "allow", "rules": "allow\tbackoffice:users:edit # x"},
    ],
)
def test_grid_odd_cells_are_a_form_error_not_a_500(role_admin, cells):
    role = RoleFactory(name="helpers")
    RuleFactory(role=role, effect="allow", pattern="backoffice:users:view")
    response = browser_of(role_admin).post(
        reverse("backoffice:role-edit", args=[role.pk]), _role_form(role, **cells)
    )
    assert response.status_code in (200, 302)
    assert ("allow", "backoffice:users:view") in _rules_of(role)


def test_grid_keeps_wildcards_and_mixed_rules_as_they_were(root_user):
    role_admin = admin_with("backoffice:roles:*", "backoffice:users:*", name="wide")
    role = RoleFactory(name="helpers")
    stored = [
        ("allow", "backoffice:users:*"),
        ("deny", "backoffice:users:edit"),
        ("allow", "backoffice:roles:view"),
        ("deny", "backoffice:roles:view"),
    ]
    for effect, pattern in stored:
        RuleFactory(role=role, effect=effect, pattern=pattern)
    client = browser_of(role_admin)
    url = reverse("backoffice:role-edit", args=[role.pk])
    page = client.get(url)
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    response = client.post(url, data)
    assert response.status_code == 302
    assert _rules_of(role) == sorted(stored)


# --- the audit log --------------------------------------------------------------


def _event(**fields):
    audit(AuditAction.USER_UPDATED, by=Actor.system(), **fields)


@pytest.mark.parametrize(
    "query",
    [
        {"since": "9999-12-31"},
        {"since": "0001-01-01"},
        {"until": "2026-02-30"},
        {"action": "\x00"},
        {"actor": "x" * 10_000},
        {"outcome": "hacked"},
        {"channel": ["screen", "api"]},
        {"page": "99999999999999999999999"},
        {"page": "-1"},
        {"target": "%_\\"},
    ],
)
def test_audit_odd_filters_are_not_a_500(admin, query):
    assert admin.get(reverse("backoffice:audit"), query).status_code in (200, 400)
    assert admin.get(reverse("backoffice:audit-export"), query).status_code in (200, 400)


def test_audit_export_needs_export(root_user):
    viewer = admin_with("backoffice:audit:view", name="auditors")
    assert browser_of(viewer).get(reverse("backoffice:audit-export")).status_code == 403


@pytest.mark.parametrize("language", ["en", "de"])
def test_audit_export_defuses_formulas(admin, root_user, language):
    User.objects.filter(pk=root_user.pk).update(language=language)
    evil = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", "=1;=2", '=1,"=2"']
    for text in evil:
        audit(AuditAction.USER_UPDATED, by=Actor.system(), target_label=text, target_id=text)
    response = admin.get(reverse("backoffice:audit-export"))
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff") == (language == "de")
    delimiter = ";" if language == "de" else ","
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff")), delimiter=delimiter))
    cells = [cell for row in rows[1:] for cell in row]
    assert len(rows) > len(evil)
    for cell in cells:
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell


def test_groups_tab_does_not_undo_a_block_made_meanwhile(root_user, monkeypatch):
    """The tab changes groups only: a block that lands between the page's
    read and the service's write stays (the save used to write back the
    status it had read, unblocking the account in the actor's name)."""
    from accounts import services

    helpdesk = admin_with("backoffice:users:*", name="helpdesk")
    other = GroupFactory(name="plain-group")
    plain = UserFactory(email="plain@shop.example")
    real = services.user_update

    def blocked_meanwhile(**kwargs):
        services.user_set_status(
            user=User.objects.get(pk=plain.pk), active=False, by=Actor.system()
        )
        return real(**kwargs)

    monkeypatch.setattr(services, "user_update", blocked_meanwhile)
    browser_of(helpdesk).post(
        reverse("backoffice:user-groups", args=[plain.pk]), {"groups": [other.pk]}
    )
    stored = User.objects.get(pk=plain.pk)
    assert stored.status == User.Status.BLOCKED
    assert _groups_of(plain) == ["plain-group"]


def test_groups_tab_does_not_judge_a_stored_name_again(root_user):
    """A name stored under an older rule (or by a provisioning door) does
    not stop a change of groups: the tab does not touch it."""
    editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
    other = GroupFactory(name="plain-group")
    legacy = UserFactory(email="legacy@shop.example")
    User.objects.filter(pk=legacy.pk).update(first_name="Ada\u202e", last_name="")
    client = browser_of(editor)
    response = client.post(
        reverse("backoffice:user-groups", args=[legacy.pk]), {"groups": [other.pk]}, follow=True
    )
    assert _groups_of(legacy) == ["plain-group"], [str(m) for m in response.context["messages"]]
    stored = User.objects.get(pk=legacy.pk)
    assert (stored.first_name, stored.last_name) == ("Ada\u202e", "")


@pytest.mark.parametrize("with_right", [False, True])
def test_offered_actions_refuse_in_the_services_words(root_user, with_right):
    """The page's reason for not offering Reset two-factor authentication is
    the service's own refusal (in German, too), not older words of its own."""
    from django.db import transaction
    from django.utils import translation

    from accounts import services
    from accounts.errors import AccountError
    from accounts.subject_actions import subject_actions

    rights = ("backoffice:users:reset-mfa",) if with_right else ()
    actor = admin_with("backoffice:users:view", *rights, name="helpers")
    plain = UserFactory(email="plain@shop.example")
    with translation.override("de"):
        said = subject_actions(actor, plain).refused["reset_mfa"]
        with pytest.raises(AccountError) as refusal, transaction.atomic():
            services.user_mfa_reset(user=plain, by=Actor(user=actor))
    assert said == str(refusal.value)


def test_grid_cannot_touch_a_role_beyond_the_actor(role_admin):
    role = RoleFactory(name="wide")
    RuleFactory(role=role, effect="allow", pattern="backoffice:users:*")
    url = reverse("backoffice:role-edit", args=[role.pk])
    client = browser_of(role_admin)
    for data in (
        _role_form(role, **{"cell-users-view": "allow"}),
        _role_form(role, rules="allow backoffice:users:*\nallow backoffice:roles:view"),
        {"name": "renamed", "rules": ""},
    ):
        client.post(url, data)
        assert _rules_of(role) == [("allow", "backoffice:users:*")]
        assert Role.objects.get(pk=role.pk).name == "wide"


def test_grid_creates_no_role_beyond_the_actor(role_admin):
    client = browser_of(role_admin)
    url = reverse("backoffice:role-create")
    for data in (
        {"name": "x1", "cell-users-delete": "allow"},
        {"name": "x2", "cell-users-view": "deny", "rules": "deny backoffice:audit:*"},
        {"name": "x3", "rules": "allow backoffice:*:*"},
    ):
        response = client.post(url, data)
        assert response.status_code == 200
        assert not Role.objects.filter(name=data["name"]).exists()


def test_grid_deny_cell_beside_a_text_allow_is_kept(root_user):
    """A cell and a text rule on the same resource (deny in the grid, allow
    in the text) are both stored: the deny is not swallowed by the text."""
    actor = admin_with("backoffice:roles:*", "backoffice:users:*", name="wide")
    client = browser_of(actor)
    data = {"name": "mixed", "cell-users-delete": "deny", "rules": "allow backoffice:users:*"}
    assert client.post(reverse("backoffice:role-create"), data).status_code == 302
    role = Role.objects.get(name="mixed")
    rules = [("allow", "backoffice:users:*"), ("deny", "backoffice:users:delete")]
    assert _rules_of(role) == rules
    page = client.get(reverse("backoffice:role-edit", args=[role.pk]))
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    assert client.post(reverse("backoffice:role-edit", args=[role.pk]), data).status_code == 302
    assert _rules_of(role) == rules


@pytest.mark.parametrize("groups", [["abc"], ["99999999"], ["1\x00"], ["-1"], [""]])
def test_groups_tab_odd_values_change_nothing(admin, groups):
    plain = UserFactory(email="plain@shop.example", groups=["root"])
    url = reverse("backoffice:user-groups", args=[plain.pk])
    response = admin.post(url, {"groups": groups})
    assert response.status_code == 302
    assert _groups_of(plain) == ["root"]
    assert admin.post(reverse("backoffice:user-groups", args=[10**17])).status_code == 404


def test_seeded_description_is_audited_as_stored_not_as_read(admin, root_user):
    """A German reader's edit of a seeded description records the stored
    English before it (the audit log is read in every language), and typing
    the seed's English is no change at all."""
    from accounts.models import AuditEvent

    User.objects.filter(pk=root_user.pk).update(language="de")
    group = Group.objects.get(name="root")
    url = reverse("backoffice:group-edit", args=[group.pk])
    roles = [r.pk for r in group.roles.all()]
    admin.post(url, {"name": "root", "description": "Full administrators.", "roles": roles})
    assert not AuditEvent.objects.filter(action="group.updated").exists()
    admin.post(url, {"name": "root", "description": "Shop admins.", "roles": roles})
    event = AuditEvent.objects.get(action="group.updated")
    assert event.details["description"] == ["Full administrators.", "Shop admins."]
