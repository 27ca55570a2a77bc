"""Who is told of privileged access, and in which language (issue 23, item 2):
each event mails the person it is for, whoever asked, and the people who
could decide it; never someone who could not approve. Each reader gets the
mail in their own language. Sent through the real queue (tasks run at once
in tests) after the write commits."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.audit import Actor
from accounts.models import AccessRequest, Membership
from accounts.services import privileged
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db

PERSON, BOSS, SECOND = "ada@shop.example", "boss@shop.example", "second@shop.example"
GREETING = {"en": "Hello Ada,\n\n", "de": "Guten Tag Ada,\n\n"}


@pytest.fixture
def people():
    """Ada (German) may activate `ops` (approval needed); boss and second
    are root; helpdesk may view and edit users but not give `ops` (it
    reaches the audit log): never an approver, never mailed."""
    role = RoleFactory(name="auditor")
    RuleFactory(role=role, pattern="backoffice:audit:*")
    ops = GroupFactory(name="ops", roles=[role], eligible_only=True, activation_approval=True)
    guarded = GroupFactory(name="guarded", roles=[role], grant_approval=True)
    ada = UserFactory(email=PERSON, first_name="Ada", language="de", groups=[ops])
    boss = UserFactory(email=BOSS, first_name="Bo", language="en", groups=["root"])
    UserFactory(email=SECOND, first_name="Sec", language="en", groups=["root"])
    admin_with("backoffice:users:*", email="helpdesk@shop.example", name="helpdesk")
    return {"ada": ada, "boss": boss, "ops": ops, "guarded": guarded}


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """Run a service call; the mails it sent, by recipient."""

    def run(call):
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = call()
        return result, {message.to[0]: message for message in mail.outbox}

    return run


def _ask(people):
    ada = people["ada"]
    return privileged.access_activate(
        user=ada,
        group=people["ops"],
        justification="Incident 42: read the audit log",
        ticket="INC-42",
        hours=2,
        mfa_at=time.time(),
        by=Actor(user=ada, channel="web"),
    )


def _by(user):
    return Actor(user=user, channel="web")


def test_a_request_and_its_approval_mail_the_person_and_the_approvers_only(people, sent):
    request, mails = sent(lambda: _ask(people))
    assert set(mails) == {PERSON, BOSS, SECOND}
    german = mails[PERSON]
    assert german.subject == "[Back Office] Zugriff auf ops für ada@shop.example angefragt"
    assert german.body.startswith(GREETING["de"] + "Eine Anfrage wartet auf Genehmigung")
    assert "Begründung: Incident 42" in german.body and "Ticket: INC-42" in german.body
    assert "„Genehmigungen“" in german.body
    assert mails[BOSS].subject == "[Back Office] Access to ops asked for ada@shop.example"
    assert mails[BOSS].body.startswith("Hello Bo,\n\nA request waits for approval")

    _, mails = sent(
        lambda: privileged.access_request_approve(request=request, by=_by(people["boss"]))
    )
    assert set(mails) == {PERSON, BOSS, SECOND}
    assert mails[PERSON].subject == "[Back Office] ops ist für ada@shop.example aktiv"
    assert mails[SECOND].subject == "[Back Office] ops is active for ada@shop.example"
    assert "until" in mails[SECOND].body

    _, mails = sent(lambda: privileged.access_deactivate(request=request, by=_by(people["ada"])))
    assert set(mails) == {PERSON, BOSS, SECOND}
    assert "vorzeitig beendet" in mails[PERSON].subject
    assert mails[BOSS].body.startswith("Hello Bo,\n\nThe activation of group ops")


def test_a_denial_mails_the_person_and_the_approvers(people, sent):
    request = _ask(people)
    _, mails = sent(
        lambda: privileged.access_request_deny(request=request, note="No", by=_by(people["boss"]))
    )
    assert set(mails) == {PERSON, BOSS, SECOND}
    assert mails[PERSON].subject == "[Back Office] Zugriff auf ops für ada@shop.example abgelehnt"
    assert "von boss@shop.example abgelehnt" in mails[PERSON].body
    assert "Notiz: No" in mails[PERSON].body


def test_an_activation_reaching_its_end_mails_everyone_concerned(people, sent):
    request = _ask(people)
    privileged.access_request_approve(request=request, by=_by(people["boss"]))
    later = timezone.now() + timedelta(hours=3)
    count, mails = sent(lambda: privileged.expire_due(now=later))
    assert count == 1
    assert set(mails) == {PERSON, BOSS, SECOND}
    assert mails[PERSON].subject == "[Back Office] ops ist für ada@shop.example abgelaufen"
    assert mails[SECOND].body.startswith("Hello Sec,\n\nThe activation of group ops")


def test_an_unanswered_request_mails_the_person(people, sent):
    request = _ask(people)
    AccessRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    count, mails = sent(lambda: privileged.expire_due())
    assert count == 1
    assert set(mails) == {PERSON}
    assert "unbeantwortet verfallen" in mails[PERSON].subject
    assert mails[PERSON].body.startswith(GREETING["de"] + "Niemand hat innerhalb von 24 Stunden")


def test_a_four_eyes_grant_mails_who_asked_the_person_and_the_other_approvers(people, sent):
    from accounts.services.users import user_update

    ada, boss, guarded = people["ada"], people["boss"], people["guarded"]
    _, mails = sent(
        lambda: user_update(
            user=ada,
            email=None,
            first_name=None,
            last_name=None,
            groups=[people["ops"], guarded],
            active=None,
            by=_by(boss),
        )
    )
    assert set(mails) == {PERSON, BOSS, SECOND}
    assert mails[SECOND].body.startswith(
        "Hello Sec,\n\nA grant waits for approval: boss@shop.example gave ada@shop.example "
        "group guarded."
    )
    request = AccessRequest.objects.get(group=guarded, status="pending")
    second = type(boss).objects.get(email=SECOND)
    _, mails = sent(lambda: privileged.access_request_approve(request=request, by=_by(second)))
    assert set(mails) == {PERSON, BOSS, SECOND}
    assert mails[BOSS].subject == "[Back Office] Access to guarded approved for ada@shop.example"
    assert "von second@shop.example genehmigt" in mails[PERSON].body


def test_a_time_bound_membership_reaching_its_end_mails_the_person(people, sent):
    Membership.objects.create(
        user=people["ada"], group=GroupFactory(name="temps"), ends_at=timezone.now()
    )
    count, mails = sent(lambda: privileged.expire_due())
    assert count == 1
    assert set(mails) == {PERSON}
    assert (
        mails[PERSON].subject
        == "[Back Office] Mitgliedschaft in temps ist für ada@shop.example abgelaufen"
    )
    assert mails[PERSON].body.startswith(GREETING["de"] + "Die Mitgliedschaft von ada@shop.example")


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_access_mail_is_worded_as_the_house_rules_say(people, sent, language):
    """Greeting, a capital after it, the product named in the subject, no
    English left in the German (the msgid's words never reach the reader)."""
    ada = people["ada"]
    ada.language = language
    ada.save(update_fields=["language"])
    request, asked = sent(lambda: _ask(people))
    _, denied = sent(
        lambda: privileged.access_request_deny(request=request, by=_by(people["boss"]))
    )
    for message in (asked[PERSON], denied[PERSON]):
        body = message.body
        assert body.startswith(GREETING[language]) and body[len(GREETING[language])].isupper()
        assert message.subject.startswith("[Back Office] ")
        if language == "de":
            assert not {"group", "request", "approval", "denied"} & set(body.lower().split())
