"""The first-time admin's path, one function a step, shared by the walk test
and the screenshots. Selectors avoid wording (ids, names, types) so the same
steps run in English and German; the steps the merge reshapes (the role
picker, the user's tabs) are one function each, to swap in one place."""

import csv
import io

from accounts.models import Group, Role, User
from backoffice.forms import cell_name
from tests.e2e.webauthn import virtual_authenticator
from tests.support.mfa import totp

ADMIN_EMAIL = "admin@example.com"  # as `manage.py demoadmin`


def submit(page, field="#id_name"):
    """The submit button of the form holding `field` (a page has other forms)."""
    page.locator(f"main form:has({field}) button[type=submit]").first.click()


def log_in(page, base, email, password):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def set_up_app(page, base) -> str:
    """The forced set-up after the first login: the authenticator app."""
    page.wait_for_url(f"{base}/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").text_content()
    page.fill("input[name=code]", totp(secret, step=1))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    return secret


def virtual_key(page):
    """A laptop's key (tests/e2e/webauthn.py)."""
    virtual_authenticator(page)


def add_key(page, base, name="Work laptop"):
    page.goto(f"{base}/2fa/webauthn/add/")
    page.fill("input[name=name]", name)
    page.click("#mfa_webauthn_add")
    page.wait_for_url(lambda url: "/2fa/webauthn/add/" not in url)


def create_user(page, base, email, first, last) -> User:
    page.goto(f"{base}/users/add/")
    page.fill("#id_first_name", first)
    page.fill("#id_last_name", last)
    page.fill("#id_email", email)
    submit(page, "#id_email")
    page.wait_for_url(lambda url: not url.endswith("/users/add/"))
    return User.objects.get(email=email)


def create_group(page, base, name, description) -> Group:
    page.goto(f"{base}/groups/add/")
    page.fill("#id_name", name)
    page.fill("#id_description", description)
    submit(page)
    page.wait_for_url(lambda url: not url.endswith("/groups/add/"))
    return Group.objects.get(name=name)


def create_role(page, base, name, description, rules) -> Role:
    """Rules picked in the grid of screens x actions: `allow backoffice:users:view`
    is the cell `cell-users-view` set to "allow"."""
    page.goto(f"{base}/roles/add/")
    page.fill("#id_name", name)
    page.fill("#id_description", description)
    for rule in rules:
        effect, resource = rule.split()
        page.select_option(f"select[name={cell_name(resource)}]", effect)
    submit(page)
    page.wait_for_url(lambda url: not url.endswith("/roles/add/"))
    return Role.objects.get(name=name)


def check_option(page, name):
    """A checkbox of a grant list (groups of a user, roles of a group)."""
    page.locator("main label", has_text=name).locator("input[type=checkbox]").check()


def give_role_to_group(page, base, role, group):
    page.goto(f"{base}/groups/{group.pk}/")
    check_option(page, role.name)
    submit(page)
    page.wait_for_load_state()


def give_group_to_user(page, base, group, user):
    page.goto(f"{base}/users/{user.pk}/")
    check_option(page, group.name)
    submit(page, "#id_email")
    page.wait_for_load_state()


def user_tabs(page, base, user) -> list[str]:
    """Opens the user's page from the list, then each of its tabs by its link
    in the tab bar; returns the addresses seen."""
    page.goto(f"{base}/users/")
    page.locator(f"main a[href='/users/{user.pk}/']").first.click()
    page.wait_for_url(f"{base}/users/{user.pk}/")
    tabs = page.locator("nav.tabs a, main nav a[aria-current], main nav[aria-label] a")
    return [
        f"{base}{href}"
        for href in dict.fromkeys(tabs.evaluate_all("as => as.map(a => a.getAttribute('href'))"))
    ]


def block(page, base, user):
    """From the user's page: its "Block…" action, then the confirmation."""
    page.goto(f"{base}/users/{user.pk}/")
    page.locator(f"main a[href='/users/{user.pk}/block/']").click()
    page.wait_for_url(f"{base}/users/{user.pk}/block/")
    page.locator("main form[method=post] button[type=submit]").click()
    page.wait_for_load_state()


def audit_filtered(page, base, action):
    page.goto(f"{base}/audit/")
    page.select_option("select[name=action]", action)
    page.locator("main form:has(select[name=action]) button[type=submit]").first.click()
    page.wait_for_url(lambda url: f"action={action}" in url)


def export_csv(page, delimiter=",") -> list[list[str]]:
    """The export link of the audit page as it stands (filters kept)."""
    with page.expect_download() as info:
        page.locator("main a[href*='/audit/export.csv']").click()
    with open(info.value.path(), encoding="utf-8-sig", newline="") as f:
        text = f.read()
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def create_api_client(page, base, name) -> str:
    """Through the screens; returns the secret page's secret."""
    page.goto(f"{base}/api-clients/add/")
    page.fill("#id_name", name)
    page.check("input[name=grant][value=client_credentials]")
    submit(page)
    return page.get_by_test_id("client-secret").inner_text()
