"""Confirmation links racing, on PostgreSQL, through HTTP: the same link
followed twice at once applies once; two accounts confirming the same new
address at once end with exactly one of them holding it."""

import re

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from accounts.models import AuditEvent, User
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.races import race

ROUNDS = 8

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need a server database (CI runs it)"
    ),
]


def _ask(admin: Client, user: User, email: str) -> str:
    """Ask for `email` on `user`'s edit page; the path of the link mailed to it."""
    user.refresh_from_db()
    mail.outbox.clear()
    form = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": email,
        "status": "active",
        "language": "",
    }
    assert admin.post(f"/users/{user.pk}/", form).status_code == 302
    (message,) = [m for m in mail.outbox if m.to == [email]]
    return re.search(r"http://testserver(/email/confirm/[^/\s]+/)", message.body)[1]


CONFIRM = "/email/confirm/"


def _opened(link: str) -> Client:
    """A browser that opened the mailed link (it keeps the token in its session)."""
    browser = Client()
    assert browser.get(link)["Location"] == CONFIRM
    return browser


@pytest.fixture
def admin(seed_groups):
    root = UserFactory(email="root@shop.example", groups=["root"])
    http = Client()
    assert login(http, root.email, PASSWORD).status_code == 302
    return http


def test_one_link_followed_twice_at_once_applies_once(admin):
    ada = UserFactory(email="ada0@shop.example")
    for round_ in range(ROUNDS):
        link = _ask(admin, ada, f"ada{round_ + 1}@shop.example")
        first, second = _opened(link), _opened(link)
        statuses = race(lambda a=first: a.post(CONFIRM), lambda b=second: b.post(CONFIRM))
        assert sorted(statuses) == [200, 400], f"round {round_}: {statuses}"
        assert User.objects.get(pk=ada.pk).email == f"ada{round_ + 1}@shop.example"
    assert AuditEvent.objects.filter(action="user.email_changed").count() == ROUNDS


def test_two_accounts_confirming_one_address_at_once_end_with_one_holder(admin):
    ada = UserFactory(email="ada@shop.example")
    bob = UserFactory(email="bob@shop.example")
    for round_ in range(ROUNDS):
        shared = f"shared{round_}@shop.example"
        first, second = _opened(_ask(admin, ada, shared)), _opened(_ask(admin, bob, shared))
        before = dict(User.objects.values_list("pk", "email"))
        statuses = race(lambda a=first: a.post(CONFIRM), lambda b=second: b.post(CONFIRM))
        assert sorted(statuses) == [200, 400], f"round {round_}: {statuses}"
        assert User.objects.filter(email=shared).count() == 1
        # The loser keeps its address.
        loser = ada if statuses[1] == 200 else bob
        assert User.objects.get(pk=loser.pk).email == before[loser.pk]
