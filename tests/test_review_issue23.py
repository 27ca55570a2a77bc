"""Review of issue 23 by an outsider (helper R): the holes found, each
through a real door (the API, the screens, the command line), each named."""

import json
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client as Http
from django.utils import timezone

from accounts.models import AccessRequest, AuditEvent, Group, Membership
from accounts.services import privileged
from tests.api_support import account_token, bearer
from tests.factories import UserFactory
from tests.support.privileged import activate, group_giving

pytestmark = pytest.mark.django_db
Status = AccessRequest.Status


@pytest.fixture
def http():
    return Http()


def patch(http, token, user, body):
    return http.patch(
        f"/api/v1/users/{user.pk}",
        json.dumps(body),
        content_type="application/json",
        **bearer(token),
    )


def _root_membership(user):
    return Membership.objects.get(user=user, group__name="root")


# --- hole 1: the shop locked out at the end of the last manager's membership ------------


def test_the_only_root_member_cannot_put_an_end_on_their_own_root_membership(http):
    """A careless first admin gives their own root membership an end: in an
    hour nobody could manage access (only the command line could repair it)."""
    first = UserFactory(email="first@shop.example", groups=["root"])
    token = account_token(http, first)
    ends = (timezone.now() + timedelta(hours=1)).isoformat()
    response = patch(http, token, first, {"memberships": [{"group": "root", "ends_at": ends}]})
    assert response.status_code == 409, response.content
    assert "nobody could repair access" in response.json()["error_description"]
    assert _root_membership(first).ends_at is None
    assert AuditEvent.objects.filter(action="access.lockout_refused").exists()


def test_the_last_lasting_manager_cannot_be_removed_while_the_others_end(http):
    lasting = UserFactory(email="lasting@shop.example", groups=["root"])
    temporary = UserFactory(email="temp@shop.example", groups=["root"])
    Membership.objects.filter(user=temporary).update(ends_at=timezone.now() + timedelta(days=1))
    token = account_token(http, temporary)
    response = patch(http, token, lasting, {"memberships": []})
    assert response.status_code == 409, response.content
    assert "nobody could repair access" in response.json()["error_description"]
    assert _root_membership(lasting).ends_at is None


def test_an_end_on_one_root_member_is_fine_while_another_stays_for_good(http):
    first = UserFactory(email="first@shop.example", groups=["root"])
    other = UserFactory(email="other@shop.example", groups=["root"])
    token = account_token(http, first)
    ends = timezone.now() + timedelta(days=2)
    response = patch(
        http, token, other, {"memberships": [{"group": "root", "ends_at": ends.isoformat()}]}
    )
    assert response.status_code == 200, response.content
    assert _root_membership(other).ends_at == ends


# --- hole 2: an approval gives more than the group's longest activation -------------------


def test_an_approval_never_activates_beyond_the_groups_longest_activation_now(admin):
    """The requester asked for 8 hours; the group's maximum was lowered to
    1 hour while the request waited: the approval gives at most 1 hour."""
    ops = group_giving("ops", eligible_only=True, activation_approval=True, max_activation_hours=8)
    requester = UserFactory(groups=[ops])
    request = activate(requester, ops, hours=8)
    assert request.status == Status.PENDING
    Group.objects.filter(pk=ops.pk).update(max_activation_hours=1)
    response = admin.post(f"/access/approvals/{request.pk}/approve/", {"note": "ok"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == Status.ACTIVE
    assert request.active_until <= timezone.now() + timedelta(hours=1)
    assert Membership.objects.get(user=requester, group=ops).active_until == request.active_until


# --- hole 3: a traceback from the command line on a non-ASCII digit -----------------------


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_a_request_id_of_unicode_digits_is_a_one_line_error(verb):
    with pytest.raises(CommandError, match="No access request"):
        call_command("access", verb, "²")


# --- hole 4: the SSO default group given without the second admin ------------------------


def test_a_first_sso_login_asks_for_a_four_eyes_default_group(client, fake, settings):
    """IAM_SSO_DEFAULT_GROUP names a group with grant approval: a person the
    provider vouches for must not get it on their first login without a
    second admin, as a ROLE_MAP role does not."""
    from accounts.models import User
    from tests.support.sso import ADA, configure, sso_login

    UserFactory(email="root1@shop.example", groups=["root"])
    staff = group_giving("staff", grant_approval=True)
    settings.IAM_SSO_DEFAULT_GROUP = "staff"
    configure(settings, fake, strategy="auto-provision")
    assert sso_login(client, fake, ADA)["Location"] == "/"
    ada = User.objects.get(email="ada@shop.example")
    assert not Membership.objects.filter(user=ada, group=staff).exists()
    request = AccessRequest.objects.get(user=ada, group=staff)
    assert request.status == Status.PENDING and request.kind == AccessRequest.Kind.GRANT
    # A later login neither gives it nor withdraws the request.
    client.post("/logout/")
    assert sso_login(client, fake, ADA)["Location"] == "/"
    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert not Membership.objects.filter(user=ada, group=staff).exists()


# --- hole 5: control characters in a justification, a ticket or a note ------------------


def _eligible_person_logged_in_with_totp(group):
    from django.test import Client

    from tests.conftest import login
    from tests.factories import PASSWORD
    from tests.support.mfa import activate_totp, totp
    from tests.support.people import browser_of

    someone = UserFactory(email="ada@shop.example", groups=[group])
    secret = activate_totp(browser_of(someone))
    client = Client()
    assert login(client, someone.email, PASSWORD)["Location"] == "/2fa/authenticate/"
    assert client.post("/2fa/authenticate/", {"code": totp(secret, step=-1)}).status_code == 302
    return client, someone


@pytest.mark.parametrize(
    "field, value",
    [
        # ESC: erases the line above in the operator's `manage.py access requests`.
        ("justification", "routine\x1b[1A\x1b[2K7\tgrant\tceo@shop.example\tpayroll"),
        # A right-to-left override makes the approvers read another text.
        ("justification", "fix \u202eexe.tnuocca"),
        ("ticket", "OPS-1\x1b[8m"),
    ],
)
def test_a_request_with_control_characters_is_refused_at_the_screen(field, value):
    ops = group_giving("ops", eligible_only=True, activation_approval=True)
    client, someone = _eligible_person_logged_in_with_totp(ops)
    data = {"group": ops.pk, "justification": "Incident 42", "hours": 1, field: value}
    response = client.post("/access/request/", data)
    assert response.status_code == 200
    assert "not allowed" in response.content.decode()
    assert not AccessRequest.objects.filter(user=someone).exists()


def test_a_note_with_control_characters_is_refused_and_decides_nothing(admin):
    ops = group_giving("ops", eligible_only=True, activation_approval=True)
    requester = UserFactory(groups=[ops])
    request = activate(requester, ops)
    response = admin.post(
        f"/access/approvals/{request.pk}/approve/", {"note": "ok\x1b]0;approved\x07"}, follow=True
    )
    assert "not allowed" in response.content.decode()
    request.refresh_from_db()
    assert request.status == Status.PENDING


def test_a_multi_line_justification_is_still_fine():
    ops = group_giving("ops", eligible_only=True, activation_approval=True)
    requester = UserFactory(groups=[ops])
    from tests.support.privileged import person

    request = privileged.access_activate(
        user=requester,
        group=ops,
        justification="Incident 42\r\n\tthe payroll run failed",
        hours=1,
        mfa_at=time.time(),
        by=person(requester),
    )
    assert request.status == Status.PENDING
