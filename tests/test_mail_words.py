"""Every mail the product sends, in English and German: it greets the
reader by name and capitalises after the greeting, names the product
("Back Office", settings.IAM_PRODUCT_NAME), never "Hello from <host>!",
and its German has no stray quote after the date.

Sent through the real queue (accounts.mail; tasks run at once in tests)."""

from types import SimpleNamespace

import pytest
from django.core import mail
from django.utils import timezone

from accounts import mail as mails
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BY = SimpleNamespace(site="http://localhost:18201")
NOTICE = {"ip": "192.0.2.7", "user_agent": "Firefox"}

# Notifications allauth sends through AccountAdapter.send_mail.
NOTIFICATIONS = [
    "account/email/password_changed",
    "account/email/password_reset",
    "account/email/password_set",
    "mfa/email/totp_activated",
    "mfa/email/totp_deactivated",
    "mfa/email/recovery_codes_generated",
    "mfa/email/webauthn_added",
    "mfa/email/webauthn_removed",
]
# German joins the name into compounds ("Back-Office-Konto").
PRODUCT = {"en": "Back Office", "de": "Back-Office"}
GREETING = {"en": "Hello Grace,\n\n", "de": "Guten Tag Grace,\n\n"}
TITLE_CASE = ("Password Changed", "Password Reset", "Authenticator App", "Security Key", "Codes")


def grace(language):
    return UserFactory(first_name="Grace", email="grace@shop.example", language=language)


def sent_notification(template, user):
    context = {"user": user, **NOTICE, "timestamp": timezone.now()}
    mails.queue_template_mail(by=BY, template=template, to=user.email, context=context)
    return mail.outbox[-1]


def sent_link(kind, user):
    mails.queue_password_link(by=BY, user=user, kind=kind)
    return mail.outbox[-1]


def sent_email_change(template, user):
    context = {
        "user": user,
        "requested_by": "admin@shop.example",
        "new_email": "grace.new@shop.example",
        "old_email": user.email,
        "confirm_url": "http://localhost:18201/x/",
    }
    mails.queue_template_mail(by=BY, template=template, to=user.email, context=context)
    return mail.outbox[-1]


def assert_worded(message, language):
    body = message.body
    assert body.startswith(GREETING[language]), body[:80]
    first = body[len(GREETING[language])]
    assert first.isupper(), body[:120]
    assert "Hello from" not in body and "localhost:18201!" not in body
    assert message.subject.startswith("[Back Office] ")
    assert not any(words in message.subject for words in TITLE_CASE), message.subject
    for line in body.splitlines():
        assert not line.rstrip().endswith('"'), line


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("template", NOTIFICATIONS)
def test_notifications_greet_and_name_the_product(template, language):
    message = sent_notification(template, grace(language))
    assert_worded(message, language)
    thanks = {"en": "Thank you for using Back Office!", "de": "Vielen Dank, dass Sie Back Office"}
    assert thanks[language] in message.body
    date = {"en": "- Date: ", "de": "- Datum: "}
    assert date[language] in message.body


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("kind", ["invitation", "password_reset"])
def test_link_mails_greet_and_name_the_product(kind, language):
    message = sent_link(kind, grace(language))
    assert_worded(message, language)
    assert PRODUCT[language] in message.body


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize(
    "template", ["account/email/email_change_notice", "account/email/email_change_confirm"]
)
def test_email_change_mails_greet_and_name_the_product(template, language):
    message = sent_email_change(template, grace(language))
    assert_worded(message, language)
    assert PRODUCT[language] in message.body


def test_a_reader_without_a_first_name_is_greeted_without_a_blank():
    user = UserFactory(first_name="", language="en")
    message = sent_link("invitation", user)
    assert message.body.startswith("Hello,\n\nAn administrator")


def test_mfa_mails_use_the_glossary_in_german():
    message = sent_notification("mfa/email/recovery_codes_generated", grace("de"))
    assert "Wiederherstellungscodes" in message.subject + message.body
    assert "Wiederherstellungs-Codes" not in message.body
    assert "Zwei-Faktor-Authentifizierung" in message.body
