"""Issue 23 at the admin screens: time-bound memberships on the user page's
Groups tab, grants that wait for a second administrator, the group form's
privileged-access settings, and the users list's "ends within 7 days".
Everything goes through the test client, as an admin would."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.audit import Actor, AuditAction
from accounts.models import AccessRequest, AuditEvent, Group, Membership
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import admin_with, browser_of

pytestmark = pytest.mark.django_db

WAITING = "waiting for a second administrator's approval"


def local(when) -> str:
    """An end as the datetime-local input sends it (minutes)."""
    return timezone.localtime(when).strftime("%Y-%m-%dT%H:%M")


def shown(when) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M")


def groups_post(client, user, groups, **ends):
    """Save the Groups tab: `groups` checked, `ends` as {group: value}."""
    data = {"groups": [g.pk for g in groups]}
    data.update({f"end-{Group.objects.get(name=n).pk}": v for n, v in ends.items()})
    return client.post(f"/users/{user.pk}/groups/", data)


def viewers_group(name="viewers"):
    role = RoleFactory(name=f"{name}-role")
    RuleFactory(role=role, pattern="backoffice:users:view")
    return GroupFactory(name=name, roles=[role])


class TestTimeBoundMemberships:
    def test_an_end_given_on_the_groups_tab_is_stored_and_shown(self, admin, user):
        support = GroupFactory(name="support")
        end = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)
        response = groups_post(admin, user, [support], support=local(end))
        assert response.status_code == 302
        assert Membership.objects.get(user=user, group=support).ends_at == end
        html = admin.get(f"/users/{user.pk}/groups/").content.decode()
        assert f"ends {shown(end)}" in html
        event = AuditEvent.objects.filter(action=AuditAction.USER_UPDATED).latest("id")
        assert event.details["ends"] == {"support": end.isoformat()}

    def test_a_membership_without_an_end_says_so(self, admin, user):
        GroupFactory(name="support").memberships.create(user=user)
        html = admin.get(f"/users/{user.pk}/groups/").content.decode()
        assert "no end" in html

    def test_the_rights_go_at_the_end_on_the_next_request_without_a_cleanup(self, admin, user):
        viewers = viewers_group()
        soon = timezone.now() + timedelta(seconds=2)
        value = timezone.localtime(soon).strftime("%Y-%m-%dT%H:%M:%S")
        assert groups_post(admin, user, [viewers], viewers=value).status_code == 302
        subject = browser_of(user)
        assert subject.get("/users/").status_code == 200  # compiled, warm
        time.sleep(max(0.0, (soon - timezone.now()).total_seconds()) + 0.2)
        assert subject.get("/users/").status_code == 403
        # Nothing cleaned up: the membership is still there, ended.
        assert Membership.objects.filter(user=user, group=viewers).exists()
        html = admin.get(f"/users/{user.pk}/groups/").content.decode()
        assert "ended " in html

    def test_an_end_is_changed_removed_and_kept_when_untouched(self, admin, user):
        support = GroupFactory(name="support")
        stored = timezone.now() + timedelta(days=3, seconds=17)  # seconds the input never shows
        Membership.objects.create(user=user, group=support, ends_at=stored)
        # Saving the tab as shown moves nothing and writes nothing.
        events = AuditEvent.objects.count()
        assert groups_post(admin, user, [support], support=local(stored)).status_code == 302
        assert Membership.objects.get(user=user, group=support).ends_at == stored
        assert AuditEvent.objects.count() == events
        later = (stored + timedelta(days=2)).replace(second=0, microsecond=0)
        groups_post(admin, user, [support], support=local(later))
        assert Membership.objects.get(user=user, group=support).ends_at == later
        groups_post(admin, user, [support], support="")
        assert Membership.objects.get(user=user, group=support).ends_at is None

    def test_an_end_in_the_past_is_refused_and_nothing_is_written(self, admin, user):
        support = GroupFactory(name="support")
        past = timezone.now() - timedelta(hours=1)
        response = groups_post(admin, user, [support], support=local(past))
        assert response.status_code == 200
        assert "must lie in the future" in response.content.decode()
        assert not Membership.objects.filter(user=user).exists()

    def test_a_bad_end_is_a_form_error(self, admin, user):
        support = GroupFactory(name="support")
        response = groups_post(admin, user, [support], support="next tuesday")
        assert response.status_code == 200
        assert "Enter a valid date/time." in response.content.decode()
        assert not Membership.objects.filter(user=user).exists()

    def test_a_narrow_admin_cannot_give_a_group_beyond_them_with_an_end(self, user):
        editor = browser_of(admin_with("backoffice:users:*"))
        auditors = GroupFactory(name="auditors", roles=[RoleFactory()])
        RuleFactory(role=auditors.roles.get(), pattern="backoffice:audit:view")
        end = timezone.now() + timedelta(days=2)
        response = groups_post(editor, user, [auditors], auditors=local(end))
        assert response.status_code == 200
        html = response.content.decode()
        assert "give group auditors" in html or "auditors" in html.split('class="alert"')[1]
        assert not Membership.objects.filter(user=user).exists()
        assert not AccessRequest.objects.exists()


class TestFourEyes:
    def test_a_four_eyes_grant_waits_and_shows_as_pending(self, admin, user, root_user):
        payments = GroupFactory(name="payments", grant_approval=True)
        end = (timezone.now() + timedelta(days=5)).replace(second=0, microsecond=0)
        response = groups_post(admin, user, [payments], payments=local(end))
        assert response.status_code == 302
        assert not Membership.objects.filter(user=user, group=payments).exists()
        request = AccessRequest.objects.get(user=user, group=payments)
        assert request.kind == "grant" and request.status == "pending" and request.ends_at == end
        page = admin.get(response.url).content.decode()
        assert "Group payments waits for a second administrator&#x27;s approval." in page
        pending = page.split('data-testid="pending-grants"', 1)[1]
        assert "payments" in pending and WAITING in pending
        assert root_user.email in pending and shown(end) in pending

    def test_a_narrow_admin_cannot_lengthen_a_four_eyes_membership_alone(self, user):
        editor = browser_of(admin_with("backoffice:users:*"))
        payments = GroupFactory(name="payments", grant_approval=True)
        end = timezone.now() + timedelta(days=1)
        Membership.objects.create(user=user, group=payments, ends_at=end)
        later = end + timedelta(days=30)
        response = groups_post(editor, user, [payments], payments=local(later))
        assert response.status_code == 302
        assert Membership.objects.get(user=user, group=payments).ends_at == end
        request = AccessRequest.objects.get(user=user, group=payments, status="pending")
        assert request.ends_at == later.replace(second=0, microsecond=0)
        # Removing the end is lengthening too; the open request is not doubled.
        groups_post(editor, user, [payments], payments="")
        assert Membership.objects.get(user=user, group=payments).ends_at == end
        assert AccessRequest.objects.filter(user=user, group=payments).count() == 1

    def test_shortening_a_four_eyes_membership_takes_effect_at_once(self, admin, user):
        payments = GroupFactory(name="payments", grant_approval=True)
        Membership.objects.create(user=user, group=payments)
        sooner = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
        groups_post(admin, user, [payments], payments=local(sooner))
        assert Membership.objects.get(user=user, group=payments).ends_at == sooner
        assert not AccessRequest.objects.exists()


def group_post(client, group, **changes):
    data = {
        "name": group.name,
        "description": group.description,
        "roles": [r.pk for r in group.roles.all()],
        "max_activation_hours": group.max_activation_hours,
    }
    for flag in ("eligible_only", "activation_approval", "grant_approval"):
        if getattr(group, flag):
            data[flag] = "on"
    for key, value in changes.items():
        if value is False:
            data.pop(key, None)
        else:
            data[key] = value
    return client.post(f"/groups/{group.pk}/", data)


class TestGroupForm:
    def test_the_settings_round_trip_and_are_said_in_words(self, admin):
        response = admin.post(
            "/groups/add/",
            {
                "name": "break-glass",
                "eligible_only": "on",
                "max_activation_hours": "4",
                "activation_approval": "on",
                "grant_approval": "on",
            },
        )
        assert response.status_code == 302
        group = Group.objects.get(name="break-glass")
        assert group.eligible_only and group.activation_approval and group.grant_approval
        assert group.max_activation_hours == 4
        html = admin.get(f"/groups/{group.pk}/").content.decode()
        for name in ("eligible_only", "activation_approval", "grant_approval"):
            tag = html.split(f'name="{name}"', 1)[1].split(">", 1)[0]
            assert "checked" in tag, name
        assert 'name="max_activation_hours" value="4"' in html
        words = html.split('data-testid="group-policy-words"', 1)[1].split("</ul>", 1)[0]
        assert "for at most 4 hours" in words
        assert "needs another person's approval" in words
        assert "second administrator's approval" in words
        # And off again.
        response = group_post(
            admin, group, eligible_only=False, activation_approval=False, grant_approval=False
        )
        assert response.status_code == 302
        group.refresh_from_db()
        assert not (group.eligible_only or group.activation_approval or group.grant_approval)

    def test_a_new_group_gets_eight_hours(self, admin):
        admin.post("/groups/add/", {"name": "plain"})
        assert Group.objects.get(name="plain").max_activation_hours == 8
        html = admin.get("/groups/add/").content.decode()
        assert 'name="max_activation_hours" value="8"' in html

    @pytest.mark.parametrize("hours", ["0", "169", "x"])
    def test_a_bad_longest_activation_is_a_form_error(self, admin, hours):
        response = admin.post("/groups/add/", {"name": "odd", "max_activation_hours": hours})
        assert response.status_code == 200
        assert 'id="id_max_activation_hours_error"' in response.content.decode()
        assert not Group.objects.filter(name="odd").exists()

    def test_four_eyes_refuses_a_root_member_switching_roots_approval_off(self, admin):
        root = Group.objects.get(name="root")
        services.group_update(
            group=root,
            name=root.name,
            description=root.description,
            roles=list(root.roles.all()),
            policy={"grant_approval": True},
            by=Actor.system(),
        )
        root.refresh_from_db()
        last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = group_post(admin, root, grant_approval=False)
        assert response.status_code == 200
        html = response.content.decode()
        assert 'class="alert" role="alert"' in html or "field-error" in html
        root.refresh_from_db()
        assert root.grant_approval
        assert not AuditEvent.objects.filter(action=AuditAction.GROUP_UPDATED, id__gt=last).exists()

    def test_members_show_their_end_and_eligibility(self, admin):
        group = GroupFactory(name="break-glass", eligible_only=True)
        end = timezone.now() + timedelta(days=10)
        until = timezone.now() + timedelta(hours=2)
        a = UserFactory(email="a@shop.example")
        b = UserFactory(email="b@shop.example")
        Membership.objects.create(user=a, group=group, ends_at=end)
        Membership.objects.create(user=b, group=group, active_until=until)
        html = admin.get(f"/groups/{group.pk}/").content.decode()
        members = html.split('data-testid="group-members"', 1)[1].split("</ul>", 1)[0]
        first, second = members.split("a@shop.example", 1)[1].split("b@shop.example", 1)
        assert "eligible" in first and f"ends {shown(end)}" in first
        assert f"active until {shown(until)}" in second and "no end" in second


class TestUsersListEnding:
    def _people(self):
        group = GroupFactory(name="contractors")
        now = timezone.now()
        soon = UserFactory(email="soon@shop.example")
        later = UserFactory(email="later@shop.example")
        ended = UserFactory(email="ended@shop.example")
        standing = UserFactory(email="standing@shop.example")
        Membership.objects.create(user=soon, group=group, ends_at=now + timedelta(days=3))
        Membership.objects.create(user=later, group=group, ends_at=now + timedelta(days=9))
        Membership.objects.create(user=ended, group=group, ends_at=now - timedelta(hours=1))
        Membership.objects.create(user=standing, group=group)
        return group, soon

    def test_lists_only_memberships_ending_within_seven_days(self, admin):
        group, soon = self._people()
        html = admin.get("/users/?ending=on").content.decode().split("<tbody>", 1)[1]
        listed = {e for e in ("soon", "later", "ended", "standing", "root") if f"{e}@shop" in html}
        assert listed == {"soon"}
        page = admin.get("/users/?ending=on").content.decode()
        assert "checked" in page.split('name="ending"', 1)[1].split(">", 1)[0]
        everyone = admin.get("/users/").content.decode().split("<tbody>", 1)[1]
        assert all(f"{e}@shop" in everyone for e in ("soon", "later", "ended", "standing"))

    def test_combines_with_the_other_filters(self, admin):
        group, soon = self._people()
        other = GroupFactory(name="other")
        assert "soon@shop" in admin.get(f"/users/?ending=on&group={group.pk}").content.decode()
        assert "soon@shop" not in admin.get(f"/users/?ending=on&group={other.pk}").content.decode()
        assert "soon@shop" in admin.get("/users/?ending=on&q=soon&status=active").content.decode()
        assert "soon@shop" not in admin.get("/users/?ending=on&status=blocked").content.decode()

    def test_the_filter_costs_no_extra_query(self, admin, django_assert_max_num_queries):
        self._people()
        admin.get("/users/")  # warm
        with django_assert_max_num_queries(6) as plain:
            admin.get("/users/?q=shop")
        with django_assert_max_num_queries(6) as ending:
            admin.get("/users/?q=shop&ending=on")
        assert len(plain.captured_queries) == len(ending.captured_queries)
