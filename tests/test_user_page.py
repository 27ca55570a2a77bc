"""The user page: one header, tabs by URL, and only the actions the
services would allow (each refusal: the button is absent, and a POST sent
anyway is refused all the same)."""

import pytest
from django.core import mail

from accounts.models import Group, User
from tests.factories import GroupFactory, UserFactory
from tests.support.people import admin_with, browser_of

pytestmark = pytest.mark.django_db

BLOCK = "Block…"
DELETE = "Delete…"
RESET = "Send password reset email"


def header(client, subject) -> str:
    """The user page's header (the tabs' shared top), as HTML."""
    html = client.get(f"/users/{subject.pk}/").content.decode()
    return html.split('data-testid="user-head"', 1)[1].split("</section>", 1)[0]


def status_of(user) -> str:
    return User.objects.get(pk=user.pk).status


class TestTabs:
    def test_each_tab_has_its_url_and_says_which_is_shown(self, admin, user):
        for tab in ("", "groups/", "security/", "sessions/", "events/"):
            response = admin.get(f"/users/{user.pk}/{tab}")
            html = response.content.decode()
            assert response.status_code == 200, tab
            assert '<nav class="tabs" aria-label="User">' in html
            assert f'href="/users/{user.pk}/{tab}" aria-current="page"' in html
            assert html.count('aria-current="page"') == 1

    def test_the_old_address_leads_to_the_details_tab(self, admin, user):
        response = admin.get(f"/users/{user.pk}/view/")
        assert response.status_code == 302 and response.url == f"/users/{user.pk}/"

    def test_events_only_for_audit_readers(self, user):
        viewer = browser_of(admin_with("backoffice:users:view"))
        html = viewer.get(f"/users/{user.pk}/security/").content.decode()
        assert f"/users/{user.pk}/events/" not in html
        assert viewer.get(f"/users/{user.pk}/events/").status_code == 403

    def test_events_tab_links_to_the_filtered_audit_log(self, admin, user):
        html = admin.get(f"/users/{user.pk}/events/").content.decode()
        assert 'class="audit-table"' in html
        assert "/audit/?target=ada%40shop.example" in html


class TestGroupsTab:
    def test_the_picker_saves_through_the_service(self, admin, user):
        support = GroupFactory(name="support")
        response = admin.post(f"/users/{user.pk}/groups/", {"groups": [support.pk]})
        assert response.status_code == 302
        assert list(user.groups.values_list("name", flat=True)) == ["support"]

    def test_a_group_beyond_the_actor_is_disabled_with_the_reason(self, user):
        editor = browser_of(admin_with("backoffice:users:*"))
        html = editor.get(f"/users/{user.pk}/groups/").content.decode()
        root = Group.objects.get(name="root")
        option = html.split(f'value="{root.pk}"', 1)[1].split(">", 1)[0]
        assert "disabled" in option

    def test_a_viewer_sees_the_groups_without_a_form(self, user):
        GroupFactory(name="support").memberships.create(user=user)
        viewer = browser_of(admin_with("backoffice:users:view"))
        html = viewer.get(f"/users/{user.pk}/groups/").content.decode()
        assert "support" in html and 'name="groups"' not in html
        refused = viewer.post(f"/users/{user.pk}/groups/", {"groups": []})
        assert refused.status_code == 403
        assert list(user.groups.values_list("name", flat=True)) == ["support"]


class TestOnlyWhatTheServicesAllow:
    def test_root_is_offered_every_action_on_a_plain_account(self, admin, user):
        head = header(admin, user)
        assert BLOCK in head and DELETE in head and RESET in head

    def test_self_no_block_no_delete_and_posting_is_refused(self, admin, root_user):
        head = header(admin, root_user)
        assert BLOCK not in head and DELETE not in head
        said = admin.post(f"/users/{root_user.pk}/block/", follow=True).content.decode()
        assert "You cannot block your own account." in said
        admin.post(f"/users/{root_user.pk}/delete/")
        assert status_of(root_user) == User.Status.ACTIVE

    def test_own_status_is_shown_not_offered_with_the_reason(self, admin, root_user):
        html = admin.get(f"/users/{root_user.pk}/").content.decode()
        blocked = html.split('value="blocked"', 1)[1].split(">", 1)[0]
        assert "disabled" in blocked
        assert "You cannot block your own account." in html
        form = {"first_name": "G", "last_name": "H", "email": root_user.email}
        admin.post(f"/users/{root_user.pk}/", {**form, "status": "blocked", "language": ""})
        assert status_of(root_user) == User.Status.ACTIVE

    def test_the_last_root_cannot_be_blocked_or_deleted(self, admin, root_user):
        # The only root is the actor: the one path to leaving no root is oneself.
        assert User.objects.filter(groups__name="root").count() == 1
        head = header(admin, root_user)
        assert BLOCK not in head and DELETE not in head
        admin.post(f"/users/{root_user.pk}/delete/")
        assert User.objects.filter(pk=root_user.pk).exists()

    def test_outranked_subject_offers_nothing_and_posting_is_refused(self, root_user):
        editor = browser_of(admin_with("backoffice:users:*"))
        head = header(editor, root_user)
        assert BLOCK not in head and DELETE not in head and RESET not in head
        details = editor.get(f"/users/{root_user.pk}/").content.decode()
        assert 'data-testid="rank-notice"' in details and 'name="first_name"' not in details
        said = editor.post(f"/users/{root_user.pk}/block/", follow=True).content.decode()
        assert "holds permissions you do not" in said
        assert status_of(root_user) == User.Status.ACTIVE

    def test_missing_right_hides_the_action_and_posting_is_403(self, user):
        editor = browser_of(admin_with("backoffice:users:view", "backoffice:users:edit"))
        head = header(editor, user)
        assert BLOCK not in head and DELETE not in head and RESET not in head
        assert editor.post(f"/users/{user.pk}/block/").status_code == 403
        assert status_of(user) == User.Status.ACTIVE

    def test_a_service_account_gets_no_password_reset(self, admin):
        service = UserFactory(email="svc@api-clients.example", kind=User.Kind.SERVICE)
        head = header(admin, service)
        assert RESET not in head and BLOCK in head
        said = admin.post(f"/users/{service.pk}/password-reset/", follow=True).content.decode()
        assert "is a service account" in said
        assert not [m for m in mail.outbox if service.email in m.to]

    def test_a_blocked_account_offers_unblock_not_block(self, admin, user):
        user.status = User.Status.BLOCKED
        user.save()
        head = header(admin, user)
        assert ">Unblock<" in head and BLOCK not in head and RESET not in head

    def test_reset_two_factor_only_when_there_is_some(self, admin, user):
        assert "Reset two-factor authentication…" not in header(admin, user)
