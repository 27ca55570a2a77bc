"""Privileged access through SCIM (issue 23, "every door keeps the bound"),
driven by real SCIM requests as Entra ID sends them: a group map onto an
eligible-only group gives eligibility only; onto a four-eyes group it asks,
once, and withdraws what it asked when the SCIM group lets the person go;
a map entry with a duration makes time-bound memberships."""

import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import access
from accounts.audit import Actor
from accounts.models import AccessRequest, AuditEvent, Membership, User
from accounts.services import privileged
from scim.models import Client as ScimClient
from tests.factories import UserFactory
from tests.support.privileged import (
    AUDIT_VIEW,
    activate,
    group_giving,
    holds,
    membership,
    pending,
    person,
)
from tests.support.scim import Scim, entra_group, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db


def _provisioned(scim: Scim, group_name: str, email="jo@shop.example"):
    """A user POSTed, then a SCIM group holding them: (user, group id)."""
    response = scim.post("Users", entra_user(email))
    assert response.status_code == 201, response.content
    user = User.objects.get(pk=response.json()["id"])
    response = scim.post("Groups", entra_group(group_name, members=[user.pk]))
    assert response.status_code == 201, response.content
    return user, response.json()["id"]


def _remove_member(scim: Scim, group_id, user):
    return scim.patch(
        f"Groups/{group_id}",
        entra_patch({"op": "Remove", "path": f'members[value eq "{user.pk}"]'}),
    )


def test_a_map_onto_an_eligible_only_group_gives_eligibility_not_rights(client, roots):
    dba = group_giving("dba", eligible_only=True)
    scim = Scim(client, make_token(group_map={"DBA": "dba"}))
    jo, _ = _provisioned(scim, "DBA")
    assert membership(jo, dba) is not None  # an eligibility
    assert not holds(jo, AUDIT_VIEW)  # nothing until activated
    activate(jo, dba)
    assert holds(jo, AUDIT_VIEW)


def test_a_map_onto_a_four_eyes_group_asks_once_and_gives_nothing(client, roots):
    auditors = group_giving("auditors", grant_approval=True)
    scim = Scim(client, make_token(group_map={"Auditors": "auditors", "Staff": []}))
    jo, group_id = _provisioned(scim, "Auditors")
    assert membership(jo, auditors) is None
    assert not holds(jo, AUDIT_VIEW)
    request = pending(jo, auditors).get()
    assert request.source == "scim:entra" and request.requested_by is None
    asked = AuditEvent.objects.filter(action="access.requested", target_id=str(jo.pk))
    assert asked.count() == 1
    # Another sync that touches jo (a second SCIM group, a rename) asks no more.
    response = scim.post("Groups", entra_group("Staff", members=[jo.pk], external_id="g-2"))
    assert response.status_code == 201, response.content
    response = scim.patch(
        f"Groups/{group_id}",
        entra_patch({"op": "Replace", "path": "displayName", "value": "Auditors"}),
    )
    assert response.status_code in (200, 204), response.content
    assert AccessRequest.objects.filter(user=jo, group=auditors).count() == 1
    assert asked.count() == 1
    # A second admin approves: the membership comes, from this client.
    privileged.access_request_approve(request=request, by=person(roots[0]))
    assert membership(jo, auditors).source == "scim:entra"
    assert holds(jo, AUDIT_VIEW)


def test_leaving_the_scim_group_withdraws_the_request_it_made(client, roots):
    auditors = group_giving("auditors", grant_approval=True)
    scim = Scim(client, make_token(group_map={"Auditors": "auditors"}))
    jo, group_id = _provisioned(scim, "Auditors")
    request = pending(jo, auditors).get()
    response = _remove_member(scim, group_id, jo)
    assert response.status_code in (200, 204), response.content
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.CANCELLED
    assert AuditEvent.objects.filter(
        action="access.request_cancelled", target_id=str(jo.pk)
    ).exists()
    assert membership(jo, auditors) is None


def test_a_denial_stands_against_the_next_sync(client, roots):
    auditors = group_giving("auditors", grant_approval=True)
    scim = Scim(client, make_token(group_map={"Auditors": "auditors", "Staff": []}))
    jo, _ = _provisioned(scim, "Auditors")
    privileged.access_request_deny(request=pending(jo, auditors).get(), by=person(roots[0]))
    response = scim.post("Groups", entra_group("Staff", members=[jo.pk], external_id="g-2"))
    assert response.status_code == 201, response.content
    assert not pending(jo, auditors).exists()


def test_a_map_with_days_makes_time_bound_memberships_that_end_on_time(client, roots):
    helpdesk = group_giving("helpdesk")
    scim = Scim(client, make_token(group_map={"Desk": {"group": "helpdesk", "days": 30}}))
    before = timezone.now()
    jo, _ = _provisioned(scim, "Desk")
    ends = membership(jo, helpdesk).ends_at
    assert before + timedelta(days=30) <= ends <= timezone.now() + timedelta(days=30)
    assert holds(jo, AUDIT_VIEW)
    # The end is part of evaluating permissions: past it, nothing, with no
    # write and no sweep after it (brought near here; days are too long).
    Membership.objects.filter(user=jo, group=helpdesk).update(
        ends_at=timezone.now() + timedelta(seconds=1)
    )
    access.changed(User.objects.filter(pk=jo.pk))
    assert holds(jo, AUDIT_VIEW)
    time.sleep(1.2)
    assert not holds(jo, AUDIT_VIEW)


def test_the_plain_map_still_works_and_the_time_bound_one_is_stored_and_listed(client, roots):
    group_giving("helpdesk")
    group_giving("dba")
    make_token("plain", group_map={"Desk": "helpdesk", "Both": ["helpdesk", "dba"]})
    make_token("timed", group_map={"Desk": {"group": ["helpdesk"], "days": 7}})
    assert ScimClient.objects.get(name="plain").group_map == {
        "Desk": ["helpdesk"],
        "Both": ["dba", "helpdesk"],
    }
    assert ScimClient.objects.get(name="timed").group_map == {
        "Desk": {"groups": ["helpdesk"], "days": 7}
    }
    from io import StringIO

    out = StringIO()
    call_command("scimtoken", "list", stdout=out)
    assert '"days": 7' in out.getvalue()


@pytest.mark.parametrize(
    "entry",
    [
        {"group": "helpdesk", "days": 0},
        {"group": "helpdesk", "days": "30"},
        {"group": "helpdesk", "days": True},
        {"group": "helpdesk", "days": 30, "hours": 1},
        {"group": "no-such-group", "days": 3},
        {"days": 3},
    ],
)
def test_a_bad_time_bound_entry_is_one_line_and_makes_no_client(db, entry):
    group_giving("helpdesk")
    with pytest.raises(CommandError) as refused:
        make_token("bad", group_map={"Desk": entry})
    assert "\n" not in str(refused.value)
    assert not ScimClient.objects.filter(name="bad").exists()


def test_scim_cannot_activate_or_approve(roots):
    """No SCIM endpoint does; the services refuse a SCIM client's actor too."""
    dba = group_giving("dba", eligible_only=True, activation_approval=True)
    jo = UserFactory(groups=[dba])
    scim_actor = Actor.bounded(label="scim:entra", ceiling=["root"])
    with pytest.raises(privileged.AccessRefused):
        privileged.access_activate(
            user=jo, group=dba, justification="x", hours=1, mfa_at=None, by=scim_actor
        )
    request = activate(jo, dba)
    with pytest.raises(privileged.AccessRefused):
        privileged.access_request_approve(request=request, by=scim_actor)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING
