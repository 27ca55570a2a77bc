"""Privileged access through single sign-on (issue 23, "every door keeps the
bound"), through real logins at the in-process OpenID provider: a ROLE_MAP
onto an eligible-only group gives eligibility only, onto a four-eyes group
one grant request (not a membership), asked once however often the person
logs in, and withdrawn when the provider drops the role."""

import pytest
from django.contrib.auth.hashers import make_password

from accounts.models import AccessRequest, AuditEvent
from accounts.services import privileged
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
from tests.support.sso import ADA, configure, sso_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(db):
    return UserFactory(email="ada@shop.example", password=make_password(None))


def _login(client, fake, roles):
    assert sso_login(client, fake, {**ADA, "roles": roles})["Location"] == "/"
    client.post("/logout/")


def test_a_role_onto_an_eligible_only_group_gives_eligibility_only(
    client, fake, settings, roots, ada
):
    dba = group_giving("dba", eligible_only=True)
    configure(settings, fake, role_map='{"dba": ["dba"]}')
    _login(client, fake, ["dba"])
    assert membership(ada, dba).source == "sso:fake"
    assert not holds(ada, AUDIT_VIEW)
    activate(ada, dba)
    assert holds(ada, AUDIT_VIEW)


def test_a_role_onto_a_four_eyes_group_asks_once_however_often_one_logs_in(
    client, fake, settings, roots, ada
):
    auditors = group_giving("auditors", grant_approval=True)
    configure(settings, fake, role_map='{"audit": ["auditors"]}')
    for _ in range(3):
        _login(client, fake, ["audit"])
    assert membership(ada, auditors) is None
    assert not holds(ada, AUDIT_VIEW)
    request = pending(ada, auditors).get()
    assert request.source == "sso:fake"
    assert AccessRequest.objects.filter(user=ada, group=auditors).count() == 1
    asked = AuditEvent.objects.filter(action="access.requested", target_id=str(ada.pk))
    assert asked.count() == 1
    # Approved by a second admin: the membership is the provider's, and the
    # next login keeps it (the role is still asserted).
    privileged.access_request_approve(request=request, by=person(roots[0]))
    _login(client, fake, ["audit"])
    assert membership(ada, auditors).source == "sso:fake"
    assert holds(ada, AUDIT_VIEW)
    # The role goes: so does the membership.
    _login(client, fake, [])
    assert membership(ada, auditors) is None


def test_the_role_dropped_withdraws_the_waiting_request(client, fake, settings, roots, ada):
    auditors = group_giving("auditors", grant_approval=True)
    configure(settings, fake, role_map='{"audit": ["auditors"]}')
    _login(client, fake, ["audit"])
    request = pending(ada, auditors).get()
    _login(client, fake, [])
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.CANCELLED
    assert membership(ada, auditors) is None


def test_a_denial_is_not_asked_again_at_every_login(client, fake, settings, roots, ada):
    auditors = group_giving("auditors", grant_approval=True)
    configure(settings, fake, role_map='{"audit": ["auditors"]}')
    _login(client, fake, ["audit"])
    privileged.access_request_deny(request=pending(ada, auditors).get(), by=person(roots[0]))
    _login(client, fake, ["audit"])
    assert not pending(ada, auditors).exists()
    assert membership(ada, auditors) is None
