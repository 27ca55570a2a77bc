"""SSO link page, "I don't know its password": a change of address the
account's previous holder asked for.

A narrow admin pre-registers the future IT admin's address (an editor's
group, an initial password) and, logged in as that account, asks to move
its address to their own mailbox. At the owner's first SSO login the owner
takes the account over ("whoever held those is out") and ROLE_MAP makes it
root. The confirmation link in the squatter's mailbox must die with the
takeover: otherwise, once the account has a password again (root sends the
owner a reset link), the squatter follows it, the root account's address is
theirs, and so is its next password reset.
"""

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.sso import CLAIMS, OWNER

pytestmark = pytest.mark.django_db

SQUATTER = "mallory@evil.example"
CONFIRM_LINK = re.compile(r"http://testserver(/email/confirm/[^/\s]+/)")
RESET_LINK = re.compile(r"http://testserver(/password/reset/key/\S+/)")


def link_to(address: str, pattern) -> str:
    (message,) = [m for m in mail.outbox if m.to == [address] and pattern.search(m.body)]
    return pattern.search(message.body)[1]


def test_a_takeover_voids_the_address_change_the_previous_holder_asked_for(role_map, root_user):
    role = RoleFactory()
    for pattern in ("backoffice:users:view", "backoffice:users:edit"):
        RuleFactory(role=role, pattern=pattern)
    squatted = UserFactory(email=OWNER, groups=[GroupFactory(name="editors", roles=[role])])

    # As the squatted account, the squatter asks for their own mailbox.
    squatter = Client()
    assert login(squatter, OWNER, PASSWORD).status_code == 302
    squatter.post(
        f"/users/{squatted.pk}/",
        {"first_name": squatted.first_name, "last_name": squatted.last_name,
         "email": SQUATTER, "status": "active",
         "groups": [g.pk for g in squatted.groups.all()], "language": ""},
    )  # fmt: skip
    confirm = link_to(SQUATTER, CONFIRM_LINK)

    # The owner's first SSO login: "I don't know its password"; root by ROLE_MAP.
    owner = Client()
    assert role_map.sso_login(owner, CLAIMS)["Location"] == "/sso/link/"
    assert owner.post("/sso/link/takeover/").status_code == 302
    assert User.objects.get(pk=squatted.pk).groups.filter(name="root").exists()

    # Root sends the owner a link to choose a password; the owner does.
    root = Client()
    assert login(root, root_user.email, PASSWORD).status_code == 302
    root.post(f"/users/{squatted.pk}/password-reset/")
    reset = link_to(OWNER, RESET_LINK)
    page = owner.get(reset, follow=True)
    owner.post(
        page.redirect_chain[-1][0] if page.redirect_chain else reset,
        {"password1": "owner's passphrase 42", "password2": "owner's passphrase 42"},
    )
    assert User.objects.get(pk=squatted.pk).has_usable_password()

    # The squatter follows the old confirmation link: nothing changes.
    opened = Client()
    opened.get(confirm)
    opened.post("/email/confirm/")
    assert User.objects.get(pk=squatted.pk).email == OWNER


def test_a_password_reset_by_link_voids_the_change_the_old_password_asked_for(root_user):
    """Same rule at the other door where an account changes hands: whoever
    knew the old password asks for their mailbox; the owner resets the
    password by the mailed link; the confirmation link has died."""
    role = RoleFactory()
    for pattern in ("backoffice:users:view", "backoffice:users:edit"):
        RuleFactory(role=role, pattern=pattern)
    ada = UserFactory(email="ada@shop.example", groups=[GroupFactory(roles=[role])])
    thief = Client()
    assert login(thief, ada.email, PASSWORD).status_code == 302
    thief.post(
        f"/users/{ada.pk}/",
        {"first_name": ada.first_name, "last_name": ada.last_name, "email": SQUATTER,
         "status": "active", "groups": [g.pk for g in ada.groups.all()], "language": ""},
    )  # fmt: skip
    confirm = link_to(SQUATTER, CONFIRM_LINK)

    owner = Client()
    owner.post("/password/reset/", {"email": ada.email})
    reset = link_to(ada.email, RESET_LINK)
    page = owner.get(reset, follow=True)
    owner.post(
        page.redirect_chain[-1][0] if page.redirect_chain else reset,
        {"password1": "ada's own passphrase 42", "password2": "ada's own passphrase 42"},
    )
    assert login(Client(), ada.email, "ada's own passphrase 42").status_code == 302

    opened = Client()
    opened.get(confirm)
    opened.post("/email/confirm/")
    assert User.objects.get(pk=ada.pk).email == ada.email


def test_a_takeover_voids_the_changes_the_previous_holder_asked_for_others(role_map):
    """As the squatted account the squatter asks to move a colleague's
    address to their own mailbox; once the owner has taken the account over
    (root by ROLE_MAP), that link would be applied with root's rights."""
    role = RoleFactory()
    for pattern in ("backoffice:users:view", "backoffice:users:edit"):
        RuleFactory(role=role, pattern=pattern)
    squatted = UserFactory(email=OWNER, groups=[GroupFactory(name="editors", roles=[role])])
    colleague = UserFactory(email="colleague@shop.example")
    squatter = Client()
    assert login(squatter, OWNER, PASSWORD).status_code == 302
    squatter.post(
        f"/users/{colleague.pk}/",
        {"first_name": colleague.first_name, "last_name": colleague.last_name,
         "email": SQUATTER, "status": "active", "groups": [], "language": ""},
    )  # fmt: skip
    confirm = link_to(SQUATTER, CONFIRM_LINK)

    owner = Client()
    assert role_map.sso_login(owner, CLAIMS)["Location"] == "/sso/link/"
    assert owner.post("/sso/link/takeover/").status_code == 302
    assert User.objects.get(pk=squatted.pk).groups.filter(name="root").exists()

    opened = Client()
    opened.get(confirm)
    opened.post("/email/confirm/")
    assert User.objects.get(pk=colleague.pk).email == "colleague@shop.example"
