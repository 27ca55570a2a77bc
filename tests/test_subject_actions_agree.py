"""The selector behind the user page's buttons agrees with the services:
for every actor and subject here, an action is offered exactly when its
service, called for real (then rolled back), accepts it."""

import pytest
from django.db import transaction

from accounts import services
from accounts.audit import Actor
from accounts.errors import AccountError
from accounts.models import User
from accounts.subject_actions import subject_actions
from tests.factories import UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db


class _Undo(Exception):
    pass


def _accepted(call, subject, actor) -> bool:
    try:
        with transaction.atomic():
            call(subject, Actor(user=actor))
            raise _Undo
    except _Undo:
        return True
    except AccountError:
        return False


SERVICES = {
    "block": lambda s, by: services.user_set_status(user=s, active=False, by=by),
    "unblock": lambda s, by: services.user_set_status(user=s, active=True, by=by),
    "delete": lambda s, by: services.user_delete(user=s, by=by),
    "reset_password": lambda s, by: services.user_send_password_link(
        user=s, invitation=False, by=by
    ),
}


def test_offered_exactly_when_the_service_accepts(root_user):
    helpdesk = admin_with("backoffice:users:*", name="helpdesk")
    editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
    plain = UserFactory(email="plain@shop.example")
    blocked = UserFactory(email="off@shop.example", status=User.Status.BLOCKED)
    robot = UserFactory(email="robot@shop.example", kind=User.Kind.SERVICE)
    checked = 0
    for actor in (root_user, helpdesk, editor):
        for pk in (root_user.pk, helpdesk.pk, plain.pk, blocked.pk, robot.pk):
            offered = subject_actions(actor, User.objects.get(pk=pk))
            for name, call in SERVICES.items():
                # Fresh: a rolled-back call leaves its object changed (or without pk).
                subject = User.objects.get(pk=pk)
                # A no-op (blocking the blocked) is not an action to offer.
                if (name == "block" and not subject.is_active) or (
                    name == "unblock" and subject.is_active
                ):
                    assert name not in offered.allowed
                    continue
                accepted = _accepted(call, subject, actor)
                assert (name in offered.allowed) == accepted, (actor.email, subject.email, name)
                checked += 1
    assert checked > 30
