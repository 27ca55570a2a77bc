"""Privileged access through the JSON API (issue 23, "every door keeps the
bound"), with tokens from the token endpoint: memberships with ends, within
the grant bound; four-eyes groups wait for a second admin and the answer
says so; /me shows eligibilities read-only; the API neither activates nor
approves; a service account copies only what its holder holds now."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.test import Client as Http
from django.utils import timezone

from accounts.errors import AccessRefused
from accounts.models import AccessRequest, Membership, User
from accounts.services import privileged
from api.models import Client
from tests.api_support import account_token, bearer, make_client
from tests.factories import UserFactory
from tests.support.people import admin_with
from tests.support.privileged import (
    AUDIT_VIEW,
    activate,
    group_giving,
    holds,
    membership,
    pending,
    person,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def http():
    return Http()


def send(http, token, method, path, body=None):
    if body is None:
        return getattr(http, method)(f"/api/v1/{path}", **bearer(token))
    return getattr(http, method)(
        f"/api/v1/{path}", json.dumps(body), content_type="application/json", **bearer(token)
    )


def _iso(when):
    return when.isoformat()


def test_create_and_update_with_ends_and_the_answer_shows_them(http, roots):
    helpdesk = group_giving("helpdesk")
    token = account_token(http, roots[0])
    ends = timezone.now() + timedelta(days=3)
    body = {
        "email": "jo@shop.example",
        "first_name": "Jo",
        "last_name": "B",
        "memberships": [{"group": "helpdesk", "ends_at": _iso(ends)}],
    }
    created = send(http, token, "post", "users", body)
    assert created.status_code == 201, created.content
    jo = User.objects.get(email="jo@shop.example")
    assert membership(jo, helpdesk).ends_at == ends
    answer = created.json()
    assert answer["groups"] == ["helpdesk"] and answer["pending_grants"] == []
    (shown,) = answer["memberships"]
    assert shown["group"] == "helpdesk" and shown["effective"] and not shown["eligible"]
    assert shown["ends_at"].startswith(ends.strftime("%Y-%m-%dT%H:%M:%S"))
    # `memberships` is the whole list: null takes the end away.
    response = send(
        http, token, "patch", f"users/{jo.pk}", {"memberships": [{"group": "helpdesk"}]}
    )
    assert response.status_code == 200, response.content
    assert membership(jo, helpdesk).ends_at is None
    # `groups` alone keeps the ends as they are (backward compatible).
    Membership.objects.filter(user=jo).update(ends_at=ends)
    response = send(http, token, "patch", f"users/{jo.pk}", {"groups": ["helpdesk"]})
    assert response.status_code == 200, response.content
    assert membership(jo, helpdesk).ends_at == ends


@pytest.mark.parametrize(
    "body,field",
    [
        (
            {"memberships": [{"group": "helpdesk", "ends_at": "2001-01-01T00:00:00Z"}]},
            "memberships",
        ),
        ({"memberships": [{"group": "helpdesk", "ends_at": "tomorrow"}]}, "memberships"),
        ({"memberships": [{"group": "nope"}]}, "memberships"),
        ({"memberships": [{"group": "helpdesk"}, {"group": "helpdesk"}]}, "memberships"),
        ({"memberships": [{"group": "helpdesk"}], "groups": ["helpdesk"]}, "memberships"),
    ],
)
def test_bad_memberships_are_a_400_and_change_nothing(http, roots, body, field):
    group_giving("helpdesk")
    jo = UserFactory(email="jo@shop.example")
    token = account_token(http, roots[0])
    response = send(http, token, "patch", f"users/{jo.pk}", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not Membership.objects.filter(user=jo).exists()


def test_a_narrow_admin_cannot_give_a_time_bound_membership_beyond_their_bound(http, roots):
    group_giving("auditors")  # gives audit:view, which the editor does not hold
    editor = admin_with(
        "backoffice:users:view", "backoffice:users:edit", "backoffice:users:create", name="ed"
    )
    jo = UserFactory(email="jo@shop.example")
    token = account_token(http, editor)
    soon = _iso(timezone.now() + timedelta(hours=1))
    response = send(
        http,
        token,
        "patch",
        f"users/{jo.pk}",
        {"memberships": [{"group": "auditors", "ends_at": soon}]},
    )
    assert response.status_code == 403, response.content
    assert not Membership.objects.filter(user=jo).exists()
    body = {
        "email": "mo@shop.example",
        "first_name": "M",
        "last_name": "O",
        "memberships": [{"group": "auditors", "ends_at": soon}],
    }
    assert send(http, token, "post", "users", body).status_code == 403
    assert not User.objects.filter(email="mo@shop.example").exists()


def test_the_api_cannot_lengthen_a_four_eyes_membership_alone(http, roots):
    auditors = group_giving("auditors", grant_approval=True)
    jo = UserFactory(email="jo@shop.example")
    ends = timezone.now() + timedelta(days=1)
    Membership.objects.create(user=jo, group=auditors, ends_at=ends)
    token = account_token(http, roots[0])
    later = timezone.now() + timedelta(days=30)
    response = send(
        http,
        token,
        "patch",
        f"users/{jo.pk}",
        {"memberships": [{"group": "auditors", "ends_at": _iso(later)}]},
    )
    assert response.status_code == 200, response.content
    assert membership(jo, auditors).ends_at == ends  # unchanged
    (waiting,) = response.json()["pending_grants"]
    assert waiting["group"] == "auditors" and waiting["kind"] == "grant"
    assert waiting["requested_by"].startswith("root1@shop.example")
    assert pending(jo, auditors).get().ends_at == later
    # Nor take it away standing ("no end"), nor give it anew to someone else.
    mo = UserFactory(email="mo@shop.example")
    response = send(http, token, "patch", f"users/{mo.pk}", {"groups": ["auditors"]})
    assert response.status_code == 200, response.content
    assert response.json()["groups"] == [] and len(response.json()["pending_grants"]) == 1
    assert membership(mo, auditors) is None and not holds(mo, AUDIT_VIEW)
    # Shortening needs no second admin: it takes effect at once.
    sooner = timezone.now() + timedelta(hours=2)
    send(http, token, "patch", f"users/{jo.pk}", {"memberships": [
        {"group": "auditors", "ends_at": _iso(sooner)}]})  # fmt: skip
    assert membership(jo, auditors).ends_at == sooner


def test_a_created_account_in_a_four_eyes_group_waits_and_the_answer_says_so(http, roots):
    auditors = group_giving("auditors", grant_approval=True)
    token = account_token(http, roots[0])
    body = {"email": "jo@shop.example", "first_name": "J", "last_name": "O", "groups": ["auditors"]}
    created = send(http, token, "post", "users", body)
    assert created.status_code == 201, created.content
    answer = created.json()
    assert answer["groups"] == [] and answer["pending_grants"][0]["group"] == "auditors"
    jo = User.objects.get(email="jo@shop.example")
    assert membership(jo, auditors) is None
    detail = send(http, token, "get", f"users/{jo.pk}").json()
    assert detail["pending_grants"] == answer["pending_grants"]


def test_me_shows_eligibilities_and_activations_read_only(http, roots):
    dba = group_giving("dba", eligible_only=True)
    ada = UserFactory(email="ada@shop.example", groups=[dba])
    token = account_token(http, ada)
    me = send(http, token, "get", "me").json()
    (shown,) = me["memberships"]
    assert shown["eligible"] and not shown["effective"] and shown["active_until"] is None
    assert AUDIT_VIEW not in me["permissions"] and me["access_requests"] == []
    request = activate(ada, dba)
    me = send(http, token, "get", "me").json()
    (shown,) = me["memberships"]
    assert shown["effective"] and shown["active_until"] is not None
    assert AUDIT_VIEW in me["permissions"]
    assert me["access_requests"][0]["id"] == request.pk
    assert me["access_requests"][0]["status"] == "active"


def test_no_api_path_activates_or_approves(http, roots):
    token = account_token(http, roots[0])
    schema = http.get("/api/v1/schema/", {"format": "json"}, **bearer(token))
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert paths and not [p for p in paths if "activat" in p or "approv" in p or "request" in p]


def test_the_services_refuse_an_api_token_actor(roots):
    """A token's actor (its account, capped, naming the client) neither
    activates nor approves: it is not a person with a fresh second factor."""
    dba = group_giving("dba", eligible_only=True, activation_approval=True)
    ada = UserFactory(email="ada@shop.example", groups=[dba])
    as_token = replace(person(ada), cap=frozenset({AUDIT_VIEW}), client="robot")
    with pytest.raises(AccessRefused):
        activate_as(ada, dba, as_token)
    request = activate(ada, dba)
    root_token = replace(person(roots[0]), cap=frozenset({"backoffice:users:edit"}), client="r")
    for decide in (privileged.access_request_approve, privileged.access_request_deny):
        with pytest.raises(AccessRefused):
            decide(request=request, by=root_token)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING


def activate_as(user, group, by):
    import time

    return privileged.access_activate(
        user=user, group=group, justification="x", hours=1, mfa_at=time.time(), by=by
    )


class TestServiceAccounts:
    """`groups_from` copies what the holder holds now, and only that."""

    def _holder(self):
        plain = group_giving("plain")
        timed = group_giving("timed", "backoffice:groups:view")
        dormant = group_giving("dormant", "backoffice:roles:view", eligible_only=True)
        four_eyes = group_giving("fouryes", "backoffice:users:view", grant_approval=True)
        asked = group_giving("asked", "backoffice:users:view")
        ends = timezone.now() + timedelta(days=2)
        holder = UserFactory(email="holder@shop.example", groups=[plain, dormant, four_eyes])
        Membership.objects.create(user=holder, group=timed, ends_at=ends)
        Membership.objects.create(
            user=holder, group=group_giving("gone", "backoffice:audit:view"),
            ends_at=timezone.now() - timedelta(seconds=1),
        )  # fmt: skip
        AccessRequest.objects.create(
            kind=AccessRequest.Kind.GRANT, user=holder, group=asked, requested_by_label="x"
        )
        return holder, ends

    def _service(self, client: Client):
        return {m.group.name: m.ends_at for m in client.account.memberships.all()}

    def test_an_operator_copies_effective_memberships_only(self, roots):
        holder, ends = self._holder()
        client, _ = make_client(groups_from=holder)
        assert self._service(client) == {"plain": None, "timed": ends, "fouryes": None}

    def test_a_person_copies_a_four_eyes_group_as_a_request(self, roots):
        holder, ends = self._holder()
        admin = roots[0]
        client, _ = make_client(groups_from=holder, by=person(admin))
        assert self._service(client) == {"plain": None, "timed": ends}
        request = AccessRequest.objects.get(user=client.account, status="pending")
        assert request.group.name == "fouryes" and request.requested_by == admin


def test_an_ended_membership_is_not_shown_though_not_yet_swept(http, roots):
    helpdesk = group_giving("helpdesk")
    jo = UserFactory(email="jo@shop.example")
    Membership.objects.create(
        user=jo, group=helpdesk, ends_at=timezone.now() - timedelta(seconds=1)
    )
    token = account_token(http, roots[0])
    detail = send(http, token, "get", f"users/{jo.pk}").json()
    assert detail["groups"] == [] and detail["memberships"] == []
    me = send(http, account_token(http, jo), "get", "me").json()
    assert me["groups"] == [] and me["memberships"] == []
