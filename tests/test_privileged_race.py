"""Races of privileged access on PostgreSQL (issue 23, "Done when"):

- two approvers approve the same waiting request at once: exactly one
  approval, one membership or activation, one audit event; the other is
  told it was already decided (the access lock and the status re-read
  under it);
- a grant expires during a request: a root member whose time-bound
  membership ends while their write waits for the access lock is refused
  (their permissions are read under the lock, accounts.delegation.bound_of).
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.audit import Actor
from accounts.delegation import LOCK_KEY, managers_remain
from accounts.errors import AccountError
from accounts.models import AccessRequest, AuditEvent, Group, Membership
from accounts.services import privileged
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import browser_of, user_form

ROUNDS = 8

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need a server database (CI runs it)"
    ),
]


def _together(*calls):
    """Run the calls at once (a barrier releases them); results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i):
        try:
            barrier.wait()
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the assertions read it
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def shop(seed_groups):
    role = RoleFactory(name="auditor")
    RuleFactory(role=role, pattern="backoffice:audit:*")
    ops = GroupFactory(name="ops", roles=[role], eligible_only=True, activation_approval=True)
    guarded = GroupFactory(name="guarded", roles=[role], grant_approval=True)
    approvers = [UserFactory(email=f"approver{n}@shop.example", groups=["root"]) for n in range(2)]
    return {"ops": ops, "guarded": guarded, "approvers": approvers}


def _request(kind, shop, round_):
    person = UserFactory(email=f"person{round_}-{kind}@shop.example")
    if kind == "activation":
        Membership.objects.create(user=person, group=shop["ops"])
        return privileged.access_activate(
            user=person,
            group=shop["ops"],
            justification="race",
            hours=1,
            mfa_at=time.time(),
            by=Actor(user=person, channel="web"),
        )
    return privileged.grant_request(
        user=person,
        group=shop["guarded"],
        ends_at=None,
        source=Membership.MANUAL,
        by=Actor(user=UserFactory(groups=["root"]), channel="web"),
        writer=None,
    )


@pytest.mark.parametrize("kind", ["activation", "grant"])
def test_two_approvers_at_once_make_one_approval(shop, kind):
    for round_ in range(ROUNDS):
        request = _request(kind, shop, round_)
        calls = [
            lambda a=a, pk=request.pk: privileged.access_request_approve(
                request=AccessRequest.objects.get(pk=pk), by=Actor(user=a, channel="web")
            )
            for a in shop["approvers"]
        ]
        results = _together(*calls)
        approved = [r for r in results if isinstance(r, AccessRequest)]
        refused = [r for r in results if isinstance(r, AccountError)]
        assert len(approved) == 1 and len(refused) == 1, f"round {round_}: {results}"
        assert "already decided" in str(refused[0])
        events = AuditEvent.objects.filter(target_id=str(request.user_id))
        assert events.filter(action="access.approved").count() == 1, f"round {round_}"
        membership = Membership.objects.get(user_id=request.user_id)
        request.refresh_from_db()
        if kind == "activation":
            assert events.filter(action="access.activated").count() == 1
            assert request.status == "active" and membership.active_until is not None
        else:
            assert request.status == "approved" and membership.ends_at is None
        assert request.decided_by_id == approved[0].decided_by_id


def _hold_the_lock(seconds: float, held: threading.Event):
    """Another access write, holding the lock for `seconds`."""

    def run():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                held.set()
                time.sleep(seconds)
                cursor.execute("COMMIT")
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("ends_in", [1.0, None])
def test_a_grant_that_ends_while_the_write_waits_for_the_lock_gives_nothing(seed_groups, ends_in):
    """The admin is root until `ends_in` s from now (None: standing). Their
    save starts while root is still theirs, waits behind another write for
    2 s, and reaches the lock after their membership ended: refused, nothing
    written. A standing root member saves the same form."""
    UserFactory(email="keeper@shop.example", groups=["root"])  # root stays reachable
    admin = UserFactory(email="temp-admin@shop.example", groups=["root"])
    helpers = GroupFactory(name="helpers")
    target = UserFactory(email="target@shop.example")
    browser = browser_of(admin)
    if ends_in is not None:
        Membership.objects.filter(user=admin).update(
            ends_at=timezone.now() + timedelta(seconds=ends_in)
        )
    assert browser.get(f"/users/{target.pk}/").status_code == 200  # root now
    held = threading.Event()
    holder = _hold_the_lock(2.0, held)
    assert held.wait(10)
    response = browser.post(f"/users/{target.pk}/", user_form(target, groups=[helpers.pk]))
    holder.join(30)
    given = Group.objects.filter(memberships__user=target, name="helpers").exists()
    if ends_in is None:
        assert response.status_code == 302 and given
        return
    assert not given, "a write went through on a membership that had ended"
    assert response.status_code in (200, 403)
    refused = AuditEvent.objects.get(action="access.grant_refused")
    assert refused.actor_label == "temp-admin@shop.example"
    assert managers_remain()
