"""Changing an account's address, through the doors people use: the user
edit screen (one's own account included), My account, the JSON API, and the
link mailed to the new address. A person's change takes effect only when
the new address confirms it; an account that SCIM or single sign-on
manages follows its provider; the SCIM door writes the address directly.

Why (issue 20, finding 1a): an admin holding only users:edit could set
their own address to that of a future admin who has no account yet, and
that person's first SSO login would then land on the admin's account."""

import json
import logging
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, User
from tests.api_support import account_token
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.people import admin_with, browser_of, user_form

pytestmark = pytest.mark.django_db

FUTURE_ADMIN = "it-admin@shop.example"
LINK = re.compile(r"http://testserver(/email/confirm/[^/\s]+/)")
RESET_LINK = re.compile(r"http://testserver(/password/reset/key/\S+/)")


@pytest.fixture
def editor():
    """An admin holding only users:view and users:edit."""
    return admin_with(
        "backoffice:users:view", "backoffice:users:edit", email="mallory@shop.example"
    )


def mails_to(address: str) -> list:
    return [m for m in mail.outbox if m.to == [address]]


def confirm_link(address: str) -> str:
    (message,) = mails_to(address)
    return LINK.search(message.body)[1]


CONFIRM = "/email/confirm/"


def opened(link: str, http: Client | None = None) -> Client:
    """A browser that opened the mailed link: the token goes into its
    session and the browser on to the confirmation page, without it."""
    http = http or Client()
    response = http.get(link)
    assert response.status_code == 302 and response["Location"] == CONFIRM
    return http


def follow(link: str):
    """Open the link and press its button."""
    return opened(link).post(CONFIRM)


def stored(user: User) -> User:
    return User.objects.get(pk=user.pk)


def can_log_in(email: str) -> bool:
    return login(Client(), email, PASSWORD).status_code == 302


# --- the screens -------------------------------------------------------------------


class TestOwnAddress:
    def test_an_editor_cannot_make_their_own_address_take_effect_without_the_link(self, editor):
        http = browser_of(editor)
        response = http.post(f"/users/{editor.pk}/", user_form(editor, email=FUTURE_ADMIN))
        assert response.status_code == 302
        # Nothing changed yet: the old address is still the login, the new one is not.
        assert stored(editor).email == "mallory@shop.example"
        assert not User.objects.filter(email=FUTURE_ADMIN).exists()
        assert can_log_in("mallory@shop.example") and not can_log_in(FUTURE_ADMIN)
        page = http.get(response["Location"]).content.decode()
        assert (
            f"A confirmation link was sent to {FUTURE_ADMIN}; the address changes when it is "
            "followed." in page
        )
        assert 'data-testid="pending-email"' in page and FUTURE_ADMIN in page
        # One link to the new address, one notice to the old one.
        assert confirm_link(FUTURE_ADMIN).startswith("/email/confirm/")
        (notice,) = mails_to("mallory@shop.example")
        assert FUTURE_ADMIN in notice.body and "/email/confirm/" not in notice.body
        requested = AuditEvent.objects.get(action="user.email_change_requested")
        assert requested.actor == editor and requested.target_id == str(editor.pk)
        assert requested.details == {"email": ["mallory@shop.example", FUTURE_ADMIN]}
        assert not AuditEvent.objects.filter(action="user.email_changed").exists()

    def test_my_account_shows_the_pending_address_and_cancels_it(self, editor):
        http = browser_of(editor)
        http.post(f"/users/{editor.pk}/", user_form(editor, email="mallory.m@shop.example"))
        page = http.get("/account/").content.decode()
        assert 'data-testid="pending-email"' in page and "mallory.m@shop.example" in page
        assert http.get("/account/email-change/cancel/").status_code == 405
        done = http.post("/account/email-change/cancel/", follow=True)
        assert "The change of address was cancelled." in done.content.decode()
        assert "mallory.m@shop.example" not in http.get("/account/").content.decode()
        link = confirm_link("mallory.m@shop.example")
        failed = follow(link)
        assert failed.status_code == 400
        assert "This link is no longer valid" in failed.content.decode()
        assert stored(editor).email == "mallory@shop.example"
        cancelled = AuditEvent.objects.get(action="user.email_change_cancelled")
        assert cancelled.actor == editor

    def test_the_owner_follows_the_link_once_and_keeps_their_sessions(self, editor):
        http = browser_of(editor)
        http.post(f"/users/{editor.pk}/", user_form(editor, email="mallory.m@shop.example"))
        link = confirm_link("mallory.m@shop.example")
        follower = opened(link)
        page = follower.get(CONFIRM)
        assert page.status_code == 200
        html = page.content.decode()
        assert "mallory.m@shop.example" in html and "mallory@shop.example" in html
        assert stored(editor).email == "mallory@shop.example"  # a GET changes nothing
        done = follower.post(CONFIRM)
        assert done.status_code == 200
        assert "mallory.m@shop.example is now the address of this account" in done.content.decode()
        assert stored(editor).email == "mallory.m@shop.example"
        assert can_log_in("mallory.m@shop.example") and not can_log_in("mallory@shop.example")
        # The account's own sessions survive the change.
        assert http.get("/account/").status_code == 200
        changed = AuditEvent.objects.get(action="user.email_changed")
        assert changed.target_id == str(editor.pk)
        assert changed.details["email"] == ["mallory@shop.example", "mallory.m@shop.example"]
        assert changed.details["proven_by"] == "link mailed to the new address"
        assert changed.details["requested_by"] == "mallory@shop.example"
        # Once only: the same link again changes nothing and says so.
        again = follower.post(CONFIRM)
        assert again.status_code == 400
        assert "This link is no longer valid" in again.content.decode()
        assert AuditEvent.objects.filter(action="user.email_changed").count() == 1
        assert 'data-testid="pending-email"' not in http.get("/account/").content.decode()


class TestAnotherAccount:
    def test_an_editor_cannot_give_a_low_account_someone_elses_address(self, editor):
        low = UserFactory(email="low@shop.example", first_name="Lou")
        http = browser_of(editor)
        response = http.post(f"/users/{low.pk}/", user_form(low, email=FUTURE_ADMIN))
        assert response.status_code == 302
        assert stored(low).email == "low@shop.example"
        for path in (f"/users/{low.pk}/", f"/users/{low.pk}/view/"):
            page = http.get(path, follow=True).content.decode()
            assert 'data-testid="pending-email"' in page and FUTURE_ADMIN in page
        assert confirm_link(FUTURE_ADMIN)
        assert len(mails_to("low@shop.example")) == 1

    def test_root_too_changes_an_address_only_through_the_link(self, root_user):
        ada = UserFactory(email="ada@shop.example", first_name="Ada", last_name="L")
        http = browser_of(root_user)
        response = http.post(
            f"/users/{ada.pk}/",
            user_form(ada, email="ada.l@shop.example", last_name="Lovelace"),
        )
        assert response.status_code == 302
        ada = stored(ada)
        # The other fields are saved at once; the address waits for its link.
        assert (ada.last_name, ada.email) == ("Lovelace", "ada@shop.example")
        updated = AuditEvent.objects.get(action="user.updated")
        assert updated.details == {"last_name": ["L", "Lovelace"]}
        follow(confirm_link("ada.l@shop.example"))
        assert stored(ada).email == "ada.l@shop.example"

    def test_a_password_reset_link_sent_to_the_old_address_dies(self, root_user):
        ada = UserFactory(email="ada@shop.example")
        http = browser_of(root_user)
        http.post(f"/users/{ada.pk}/password-reset/")
        reset = RESET_LINK.search(mails_to("ada@shop.example")[0].body)[1]
        http.post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"))
        follow(confirm_link("ada.l@shop.example"))
        assert stored(ada).email == "ada.l@shop.example"
        response = Client().get(reset)
        assert "set-password" not in response.get("Location", "")

    def test_an_admin_cancels_a_pending_change(self, root_user):
        ada = UserFactory(email="ada@shop.example")
        http = browser_of(root_user)
        http.post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"))
        assert http.get(f"/users/{ada.pk}/email-change/cancel/").status_code == 405
        http.post(f"/users/{ada.pk}/email-change/cancel/")
        assert 'data-testid="pending-email"' not in http.get(f"/users/{ada.pk}/").content.decode()
        assert follow(confirm_link("ada.l@shop.example")).status_code == 400
        assert stored(ada).email == "ada@shop.example"

    def test_cancelling_needs_edit_and_rank(self, editor, root_user):
        other_root = UserFactory(email="root2@shop.example", groups=["root"])
        browser_of(root_user).post(
            f"/users/{other_root.pk}/", user_form(other_root, email="r2@shop.example")
        )
        refused = browser_of(editor).post(
            f"/users/{other_root.pk}/email-change/cancel/", follow=True
        )
        assert "holds permissions you do not" in refused.content.decode()
        follow(confirm_link("r2@shop.example"))
        assert stored(other_root).email == "r2@shop.example"

    def test_a_new_request_replaces_the_pending_one(self, root_user):
        ada = UserFactory(email="ada@shop.example")
        http = browser_of(root_user)
        http.post(f"/users/{ada.pk}/", user_form(ada, email="first@shop.example"))
        first = confirm_link("first@shop.example")
        http.post(f"/users/{ada.pk}/", user_form(ada, email="second@shop.example"))
        assert follow(first).status_code == 400
        assert stored(ada).email == "ada@shop.example"
        follow(confirm_link("second@shop.example"))
        assert stored(ada).email == "second@shop.example"

    def test_saving_other_fields_keeps_the_pending_change(self, root_user):
        ada = UserFactory(email="ada@shop.example", first_name="Ada")
        http = browser_of(root_user)
        http.post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"))
        http.post(f"/users/{ada.pk}/", user_form(stored(ada), first_name="Augusta"))
        assert 'data-testid="pending-email"' in http.get(f"/users/{ada.pk}/").content.decode()
        follow(confirm_link("ada.l@shop.example"))
        assert (stored(ada).first_name, stored(ada).email) == ("Augusta", "ada.l@shop.example")


class TestBadLinks:
    @pytest.fixture
    def pending(self, root_user):
        ada = UserFactory(email="ada@shop.example")
        browser_of(root_user).post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"))
        return ada, confirm_link("ada.l@shop.example")

    def _refused(self, response, text: str, ada: User) -> None:
        assert response.status_code == 400
        assert text in response.content.decode()
        assert stored(ada).email == "ada@shop.example"
        assert not AuditEvent.objects.filter(action="user.email_changed").exists()

    def test_an_expired_link(self, pending):
        from accounts.models import EmailChange

        ada, link = pending
        EmailChange.objects.update(created_at=timezone.now() - timedelta(hours=25))
        self._refused(opened(link).get(CONFIRM), "This link has expired", ada)
        self._refused(follow(link), "This link has expired", ada)

    @pytest.mark.parametrize(
        "forge",
        [
            lambda link: link[:-3] + ("A" if link[-2] != "A" else "B") + "/",
            lambda link: "/email/confirm/" + "x" * 40 + "/",
            lambda link: "/email/confirm/%00/",
        ],
    )
    def test_a_forged_link(self, pending, forge):
        ada, link = pending
        self._refused(opened(forge(link)).get(CONFIRM), "This link is not valid", ada)
        self._refused(follow(forge(link)), "This link is not valid", ada)
        self._refused(Client().post(CONFIRM), "This link is not valid", ada)

    def test_the_address_was_taken_meanwhile(self, pending):
        ada, link = pending
        UserFactory(email="Ada.L@shop.example")
        response = follow(link)
        self._refused(response, "ada.l@shop.example already belongs to another account", ada)

    def test_the_old_address_changed_meanwhile(self, pending):
        ada, link = pending
        User.objects.filter(pk=ada.pk).update(email="ada.x@shop.example")
        assert follow(link).status_code == 400
        assert stored(ada).email == "ada.x@shop.example"

    def test_a_blocked_account_is_not_changed(self, pending, root_user):
        ada, link = pending
        browser_of(root_user).post(f"/users/{ada.pk}/block/")
        self._refused(follow(link), "This link is no longer valid", ada)

    def test_the_requester_lost_the_right_meanwhile(self, editor):
        low = UserFactory(email="low@shop.example")
        browser_of(editor).post(f"/users/{low.pk}/", user_form(low, email="low2@shop.example"))
        link = confirm_link("low2@shop.example")
        editor.memberships.all().delete()
        from accounts.access import changed

        changed(User.objects.filter(pk=editor.pk))
        response = follow(link)
        assert response.status_code == 400
        assert "backoffice:users:edit" in response.content.decode()
        assert stored(low).email == "low@shop.example"

    def test_the_requester_was_deleted_meanwhile(self, editor, root_user):
        low = UserFactory(email="low@shop.example")
        browser_of(editor).post(f"/users/{low.pk}/", user_form(low, email="low2@shop.example"))
        browser_of(root_user).post(f"/users/{editor.pk}/delete/")
        response = follow(confirm_link("low2@shop.example"))
        assert response.status_code == 400
        assert "no longer has an account" in response.content.decode()
        assert stored(low).email == "low@shop.example"

    def test_no_token_in_the_logs_even_when_refused(self, pending, caplog):
        ada, link = pending
        token = link.split("/")[3]
        UserFactory(email="ada.l@shop.example")  # taken: a refusal, the token still good
        with caplog.at_level(logging.DEBUG):
            self._refused(follow(link), "already belongs to another account", ada)
        assert "Bad Request: /email/confirm/" in caplog.text
        assert token not in caplog.text

    def test_the_link_page_posts_with_csrf(self, pending):
        ada, link = pending
        strict = opened(link, Client(enforce_csrf_checks=True))
        assert strict.post(CONFIRM).status_code == 403
        assert stored(ada).email == "ada@shop.example"
        page = strict.get(CONFIRM).content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        assert strict.post(CONFIRM, {"csrfmiddlewaretoken": token}).status_code == 200
        assert stored(ada).email == "ada.l@shop.example"


# --- accounts a provider manages -------------------------------------------------------


def scim_token(name="entra") -> str:
    out = StringIO()
    call_command("scimtoken", "create", "--name", name, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def scim(token: str, method: str, path: str, body: dict):
    return getattr(Client(), method)(
        f"/scim/v2/{path}",
        data=json.dumps(body),
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


class TestManagedByAProvider:
    def test_a_scim_account_follows_its_provider(self, root_user):
        token = scim_token("entra")
        created = scim(
            token,
            "post",
            "Users",
            {"schemas": [SCIM_USER], "userName": "jo@shop.example", "externalId": "e-1",
             "name": {"givenName": "Jo", "familyName": "Bloggs"}, "active": True},
        )  # fmt: skip
        assert created.status_code == 201, created.content
        jo = User.objects.get(email="jo@shop.example")
        http = browser_of(root_user)
        response = http.post(f"/users/{jo.pk}/", user_form(jo, email="jo.b@shop.example"))
        assert response.status_code == 200
        assert "managed by the provisioning (SCIM) client entra" in response.content.decode()
        assert stored(jo).email == "jo@shop.example" and mail.outbox == []
        # The provider's own door still writes it at once: it vouches for it.
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "userName", "value": "jo.b@shop.example"}],
        }
        assert scim(token, "patch", f"Users/{jo.pk}", patch).status_code == 200
        assert stored(jo).email == "jo.b@shop.example"
        assert not AuditEvent.objects.filter(action="user.email_change_requested").exists()

    def test_an_sso_only_account_follows_its_provider(self, root_user):
        from sso.models import Identity

        sam = UserFactory(email="sam@shop.example", password="!")
        Identity.objects.create(user=sam, provider="okta", issuer="https://idp", subject="s-1")
        http = browser_of(root_user)
        response = http.post(f"/users/{sam.pk}/", user_form(sam, email="sam.x@shop.example"))
        assert response.status_code == 200
        assert "managed by the identity provider okta" in response.content.decode()
        assert stored(sam).email == "sam@shop.example" and mail.outbox == []

    def test_an_account_with_a_password_and_an_sso_link_confirms_by_link(self, root_user):
        from sso.models import Identity

        ada = UserFactory(email="ada@shop.example")
        Identity.objects.create(user=ada, provider="okta", issuer="https://idp", subject="s-2")
        http = browser_of(root_user)
        http.post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"))
        assert stored(ada).email == "ada@shop.example"
        follow(confirm_link("ada.l@shop.example"))
        assert stored(ada).email == "ada.l@shop.example"


# --- the API ---------------------------------------------------------------------------


def patch(token: str, pk: int, body: dict):
    return Client().patch(
        f"/api/v1/users/{pk}",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


class TestApi:
    def test_an_editor_cannot_change_their_own_address_without_the_link(self, editor):
        token = account_token(Client(), editor)
        response = patch(token, editor.pk, {"email": FUTURE_ADMIN})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["email"] == "mallory@shop.example"
        assert body["pending_email"] == FUTURE_ADMIN
        assert stored(editor).email == "mallory@shop.example"
        shown = (
            Client().get(f"/api/v1/users/{editor.pk}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
        )
        assert shown["pending_email"] == FUTURE_ADMIN and shown["email"] == "mallory@shop.example"
        follow(confirm_link(FUTURE_ADMIN))
        assert stored(editor).email == FUTURE_ADMIN

    def test_the_same_address_in_any_case_changes_nothing(self, editor):
        token = account_token(Client(), editor)
        response = patch(token, editor.pk, {"email": "MALLORY@shop.example"})
        assert response.status_code == 200 and response.json()["pending_email"] is None
        assert mail.outbox == []

    def test_changing_an_address_needs_edit(self):
        blocker = admin_with(
            "backoffice:users:view", "backoffice:users:block", email="blocker@shop.example"
        )
        low = UserFactory(email="low@shop.example")
        response = patch(account_token(Client(), blocker), low.pk, {"email": "low2@shop.example"})
        assert response.status_code == 403 and "backoffice:users:edit" in response.content.decode()
        assert mail.outbox == []

    def test_a_taken_or_bad_address_is_a_400_or_409(self, editor):
        low = UserFactory(email="low@shop.example")
        token = account_token(Client(), editor)
        bad = patch(token, low.pk, {"email": "not an address"})
        assert bad.status_code == 400
        taken = patch(token, low.pk, {"email": "MALLORY@shop.example"})
        assert taken.status_code in (400, 409)
        assert "already exists" in taken.json()["error_description"]
        assert mail.outbox == []

    def test_an_sso_only_account_is_a_400_naming_the_provider(self, root_user):
        from sso.models import Identity

        sam = UserFactory(email="sam@shop.example", password="!")
        Identity.objects.create(user=sam, provider="okta", issuer="https://idp", subject="s-1")
        editor = admin_with(
            "backoffice:users:view", "backoffice:users:edit", email="ed@shop.example"
        )
        response = patch(account_token(Client(), editor), sam.pk, {"email": "sam.x@shop.example"})
        assert response.status_code == 400
        assert "managed by the identity provider okta" in response.json()["error_description"]
        assert stored(sam).email == "sam@shop.example" and mail.outbox == []

    def test_the_schema_documents_pending_email(self, root_user):
        schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        text = schema.content.decode()
        assert "pending_email" in text


# --- in German ---------------------------------------------------------------------------


def test_the_mails_and_pages_speak_german(root_user):
    ada = UserFactory(email="ada@shop.example", first_name="Ada", language="de")
    http = browser_of(root_user)
    http.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
    saved = http.post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"), follow=True)
    html = saved.content.decode()
    assert "Ein Bestätigungslink wurde an ada.l@shop.example gesendet" in html
    assert "wartet auf Bestätigung" in html
    (confirm,) = mails_to("ada.l@shop.example")
    assert confirm.subject.endswith("Bestätigen Sie Ihre neue Back-Office-Adresse")
    assert "Wenn dies Ihr Konto ist" in confirm.body
    (notice,) = mails_to("ada@shop.example")
    assert "Für Ihr Back-Office-Konto wurde eine neue Adresse beantragt" in notice.subject
    german = opened(LINK.search(confirm.body)[1], Client(HTTP_ACCEPT_LANGUAGE="de"))
    assert "Neue Adresse bestätigen" in german.get(CONFIRM).content.decode()
    assert "Melden Sie sich ab jetzt damit an" in german.post(CONFIRM).content.decode()
    assert "nicht mehr gültig" in german.post(CONFIRM).content.decode()


def test_an_account_linked_to_a_provider_meanwhile_keeps_its_address(root_user):
    from sso.models import Identity

    ada = UserFactory(email="ada@shop.example")
    browser_of(root_user).post(f"/users/{ada.pk}/", user_form(ada, email="ada.l@shop.example"))
    User.objects.filter(pk=ada.pk).update(password="!")  # now SSO only
    Identity.objects.create(user=ada, provider="okta", issuer="https://idp", subject="s-3")
    response = follow(confirm_link("ada.l@shop.example"))
    assert response.status_code == 400
    assert "managed by the identity provider okta" in response.content.decode()
    assert stored(ada).email == "ada@shop.example"
