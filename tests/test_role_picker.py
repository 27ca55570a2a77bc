"""The role editor's picker: a grid of screens × actions, the actor's bound
shown (and kept by the service), wildcard rules kept, typos answered with
one suggestion."""

import re

from accounts.models import AuditEvent, Role
from tests.factories import RoleFactory, RuleFactory
from tests.support.people import admin_with, browser_of


def rules_of(role):
    return set(role.rules.values_list("effect", "pattern"))


def post_role(client, url="/roles/add/", **fields):
    return client.post(url, {"name": "helpdesk", "description": "", "rules": "", **fields})


class TestGrid:
    def test_a_role_is_created_from_cells(self, admin):
        response = post_role(admin, **{"cell-users-view": "allow", "cell-users-delete": "deny"})
        assert response.status_code == 302
        role = Role.objects.get(name="helpdesk")
        assert rules_of(role) == {
            ("allow", "backoffice:users:view"),
            ("deny", "backoffice:users:delete"),
        }
        event = AuditEvent.objects.filter(action="role.created").latest("pk")
        assert "allow backoffice:users:view" in event.details["rules"]

    def test_cells_have_names_people_can_hear(self, admin):
        html = admin.get("/roles/add/").content.decode()
        assert 'aria-label="Users: Delete"' in html
        assert 'aria-label="Audit log: Export"' in html
        assert "cell-audit-delete" not in html  # no cell where no resource exists
        admin.post("/i18n/setlang/", {"language": "de", "next": "/"})
        assert 'aria-label="Benutzer: Löschen"' in admin.get("/roles/add/").content.decode()

    def test_deny_in_a_cell_wins_over_a_wildcard_allow(self, admin):
        response = post_role(
            admin, rules="allow backoffice:users:*", **{"cell-users-delete": "deny"}
        )
        assert response.status_code == 302
        role = Role.objects.get(name="helpdesk")
        assert ("deny", "backoffice:users:delete") in rules_of(role)
        page = admin.get(f"/roles/{role.pk}/").content.decode()
        assert "by allow backoffice:users:*" in page
        # The exact rule is in the grid, selected; the text holds only the wildcard.
        select = re.search(r'<select name="cell-users-delete".*?</select>', page, re.S).group(0)
        assert '<option value="deny" selected>' in select
        assert re.search(r">\s*allow backoffice:users:\*\s*</textarea>", page)


class TestBound:
    def test_a_narrow_admin_sees_cells_beyond_them_disabled(self, db):
        narrow = admin_with("backoffice:roles:*", "backoffice:users:view", name="narrow")
        html = browser_of(narrow).get("/roles/add/").content.decode()
        delete = re.search(r'<select name="cell-users-delete"[^>]*>', html).group(0)
        view = re.search(r'<select name="cell-users-view"[^>]*>', html).group(0)
        assert "disabled" in delete and "disabled" not in view
        assert 'aria-describedby="cell-users-delete-why"' in delete
        assert 'id="cell-users-delete-why">you do not hold it<' in html

    def test_a_forged_disabled_cell_is_refused_by_the_service(self, db):
        narrow = admin_with("backoffice:roles:*", "backoffice:users:view", name="narrow")
        response = post_role(browser_of(narrow), **{"cell-users-delete": "allow"})
        assert response.status_code == 200
        assert "backoffice:users:delete" in response.content.decode()
        assert not Role.objects.filter(name="helpdesk").exists()
        assert AuditEvent.objects.filter(
            action="access.grant_refused", target_label="helpdesk"
        ).exists()


class TestWildcards:
    def test_a_wildcard_role_round_trips_unchanged(self, admin):
        role = RoleFactory(name="wide")
        RuleFactory(role=role, effect="allow", pattern="backoffice:*:*")
        RuleFactory(role=role, effect="deny", pattern="backoffice:audit:export")
        page = admin.get(f"/roles/{role.pk}/").content.decode()
        assert "by allow backoffice:*:*" in page and "by deny backoffice:audit:export" not in page
        text = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1).strip()
        assert text == "allow backoffice:*:*"
        data = {"name": "wide", "description": "", "rules": text, "cell-audit-export": "deny"}
        assert admin.post(f"/roles/{role.pk}/", data).status_code == 302
        assert rules_of(role) == {
            ("allow", "backoffice:*:*"),
            ("deny", "backoffice:audit:export"),
        }

    def test_the_seeded_root_role_shows_what_it_grants(self, admin):
        root = Role.objects.get(rules__pattern="*:*:*")
        page = admin.get(f"/roles/{root.pk}/").content.decode()
        assert page.count("by allow *:*:*") == 21


class TestTypos:
    def test_a_typo_names_the_line_and_the_nearest_resource(self, admin):
        response = post_role(admin, rules="allow backoffice:*:*\nallow backoffice:user:veiw")
        html = response.content.decode()
        assert "line 2:" in html and "did you mean backoffice:users:view?" in html
        assert "backoffice:api-clients:create" not in html
        assert not Role.objects.filter(name="helpdesk").exists()
