"""Privileged access on demand at the screens: "Request access", "My
requests" and "Approvals" (backoffice.views.access_requests), through the
HTTP client with real logins, TOTP codes and the services underneath."""

import pytest
from django.test import Client

from accounts.login import SESSION_SECOND_FACTOR
from accounts.models import AccessRequest, AuditEvent, Membership
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.mfa import activate_totp, totp
from tests.support.people import admin_with, browser_of

Status = AccessRequest.Status


@pytest.fixture
def elevated(db):
    """An eligible-only group giving the users and roles screens."""
    role = RoleFactory(name="elevated-role")
    RuleFactory(role=role, effect="allow", pattern="backoffice:users:*")
    RuleFactory(role=role, effect="allow", pattern="backoffice:roles:*")
    return GroupFactory(name="elevated", roles=[role], eligible_only=True, max_activation_hours=4)


def person_with_totp(group, email="ada@shop.example"):
    """An eligible member with an authenticator app, logged in with password
    and code: returns (client, person, secret)."""
    person = UserFactory(email=email, groups=[group])
    setup = browser_of(person)
    secret = activate_totp(setup)
    client = Client()
    assert login(client, person.email, PASSWORD)["Location"] == "/2fa/authenticate/"
    assert client.post("/2fa/authenticate/", {"code": totp(secret, step=-1)}).status_code == 302
    return client, person, secret


def activate(client, group, **more):
    data = {"group": group.pk, "justification": "Incident 42: fix a locked account", "hours": 2}
    return client.post("/access/request/", {**data, **more})


def age_second_factor(client, seconds=11 * 60):
    session = client.session
    record = dict(session[SESSION_SECOND_FACTOR])
    record["at"] -= seconds
    session[SESSION_SECOND_FACTOR] = record
    session.save()


class TestRequestAccess:
    def test_activation_without_approval_gives_rights_on_the_next_request(self, elevated):
        client, person, _ = person_with_totp(elevated)
        assert client.get("/users/").status_code == 403
        page = client.get("/access/request/").content.decode()
        assert "elevated" in page and "Eligible" in page and 'href="/access/request/"' in page
        response = activate(client, elevated, ticket="OPS-7")
        assert response.status_code == 302 and response["Location"] == "/access/mine/"
        assert client.get("/users/").status_code == 200
        done = AccessRequest.objects.get(user=person)
        assert done.status == Status.ACTIVE and done.ticket == "OPS-7" and done.hours == 2
        assert "Active until" in client.get("/access/request/").content.decode()

    def test_justification_required_and_hours_bounded(self, elevated):
        client, person, _ = person_with_totp(elevated)
        blank = activate(client, elevated, justification="  ")
        assert blank.status_code == 200 and "This field is required" in blank.content.decode()
        long = activate(client, elevated, hours=5)
        assert long.status_code == 200 and "4" in long.content.decode()
        assert not AccessRequest.objects.exists()
        assert client.get("/users/").status_code == 403

    def test_with_approval_it_waits(self, elevated):
        elevated.activation_approval = True
        elevated.save()
        client, person, _ = person_with_totp(elevated)
        activate(client, elevated)
        assert AccessRequest.objects.get(user=person).status == Status.PENDING
        assert client.get("/users/").status_code == 403
        assert "Waiting for approval" in client.get("/access/request/").content.decode()

    def test_stale_second_factor_is_asked_again_then_the_post_is_carried_out(self, elevated):
        client, person, secret = person_with_totp(elevated)
        age_second_factor(client)
        response = activate(client, elevated)
        assert response.status_code == 302
        assert response["Location"].startswith("/2fa/reauthenticate/?next=%2Faccess%2Frequest%2F")
        assert not AccessRequest.objects.exists()
        assert client.get("/users/").status_code == 403
        done = client.post(response["Location"], {"code": totp(secret)})
        assert done.status_code == 302 and done["Location"] == "/access/mine/"
        assert AccessRequest.objects.get(user=person).status == Status.ACTIVE
        assert client.get("/users/").status_code == 200

    def test_a_password_login_alone_is_not_a_second_factor(self, elevated):
        person = UserFactory(email="bob@shop.example", groups=[elevated])
        client = browser_of(person)  # no authenticator: password only
        response = activate(client, elevated)
        assert response.status_code == 200
        page = response.content.decode()
        assert 'data-testid="no-factor"' in page and 'href="/2fa/"' in page
        assert not AccessRequest.objects.exists()

    def test_not_eligible_people_see_no_form(self, user):
        client = browser_of(user)
        page = client.get("/access/request/").content.decode()
        assert 'data-testid="no-eligible"' in page and 'name="justification"' not in page
        assert 'href="/access/request/"' not in client.get("/").content.decode()

    def test_a_get_changes_nothing(self, elevated):
        client, person, _ = person_with_totp(elevated)
        client.get("/access/request/", {"group": elevated.pk, "justification": "x", "hours": 1})
        assert not AccessRequest.objects.exists()

    def test_csrf_is_required(self, elevated):
        client, person, _ = person_with_totp(elevated)
        strict = Client(enforce_csrf_checks=True)
        strict.cookies = client.cookies
        response = activate(strict, elevated)
        assert response.status_code == 403
        assert not AccessRequest.objects.exists()


@pytest.fixture
def approval(elevated, root_user):
    """ada asked to activate `elevated`, which needs approval."""
    elevated.activation_approval = True
    elevated.save()
    client, person, _ = person_with_totp(elevated)
    activate(client, elevated)
    return client, person, AccessRequest.objects.get(user=person)


class TestApprovals:
    def test_a_requester_cannot_approve_their_own(self, approval):
        client, person, request = approval
        # Standing rights to approve would not help either: ada is not asked.
        assert client.get("/access/approvals/").status_code == 403
        client.post(f"/access/approvals/{request.pk}/approve/")
        request.refresh_from_db()
        assert request.status == Status.PENDING

    def test_another_qualified_admin_approves(self, approval, root_user):
        client, person, request = approval
        admin = browser_of(root_user)
        page = admin.get("/access/approvals/").content.decode()
        assert f'data-testid="approval-{request.pk}"' in page
        assert "Incident 42" in page and person.email in page
        response = admin.post(f"/access/approvals/{request.pk}/approve/", {"note": "ok"})
        assert response.status_code == 302
        request.refresh_from_db()
        assert request.status == Status.ACTIVE and request.decided_by == root_user
        assert client.get("/users/").status_code == 200
        mine = client.get("/access/mine/").content.decode()
        assert root_user.email in mine and "ok" in mine
        # Decided meanwhile: the second click says so.
        again = admin.post(f"/access/approvals/{request.pk}/deny/", follow=True)
        assert "already decided" in again.content.decode()
        assert AuditEvent.objects.filter(action="access.approved").count() == 1

    def test_a_narrow_admin_neither_sees_nor_approves(self, approval):
        client, person, request = approval
        narrow = admin_with("backoffice:users:*", name="helpdesk")  # not roles: not the group
        other = browser_of(narrow)
        page = other.get("/access/approvals/").content.decode()
        assert 'data-testid="no-approvals"' in page and f"approval-{request.pk}" not in page
        refused = other.post(f"/access/approvals/{request.pk}/approve/", follow=True)
        assert refused.status_code == 200
        request.refresh_from_db()
        assert request.status == Status.PENDING
        assert client.get("/users/").status_code == 403

    def test_deny_with_a_note(self, approval, root_user):
        client, person, request = approval
        admin = browser_of(root_user)
        admin.post(f"/access/approvals/{request.pk}/deny/", {"note": "not today"})
        request.refresh_from_db()
        assert request.status == Status.DENIED and request.decision_note == "not today"
        assert client.get("/users/").status_code == 403
        assert "not today" in client.get("/access/mine/").content.decode()

    def test_a_get_decides_nothing(self, approval, root_user):
        client, person, request = approval
        admin = browser_of(root_user)
        assert admin.get(f"/access/approvals/{request.pk}/approve/").status_code == 405
        request.refresh_from_db()
        assert request.status == Status.PENDING

    def test_unknown_request_is_404(self, root_user):
        admin = browser_of(root_user)
        assert admin.post("/access/approvals/999999/approve/").status_code == 404


class TestMyRequests:
    def test_withdraw_a_pending_request(self, approval, root_user):
        client, person, request = approval
        page = client.get("/access/mine/").content.decode()
        assert "Withdraw" in page
        client.post(f"/access/mine/{request.pk}/withdraw/")
        request.refresh_from_db()
        assert request.status == Status.CANCELLED

    def test_others_cannot_withdraw_it(self, approval, root_user):
        client, person, request = approval
        assert browser_of(root_user).post(f"/access/mine/{request.pk}/withdraw/").status_code == 404
        request.refresh_from_db()
        assert request.status == Status.PENDING

    def test_end_now(self, elevated):
        client, person, _ = person_with_totp(elevated)
        activate(client, elevated)
        request = AccessRequest.objects.get(user=person)
        assert client.get("/users/").status_code == 200
        assert "End now" in client.get("/access/mine/").content.decode()
        assert client.get(f"/access/mine/{request.pk}/end/").status_code == 405
        client.post(f"/access/mine/{request.pk}/end/")
        request.refresh_from_db()
        assert request.status == Status.ENDED
        assert client.get("/users/").status_code == 403
        assert Membership.objects.filter(user=person, group=elevated).exists()  # still eligible
