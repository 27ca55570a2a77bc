"""Every main table fits the content column at 1,280 and 1,920 px, in English and
German, with long realistic values: no sideways scroll, no cell cut off
(tests/e2e/fit.py measures it in the browser)."""

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import AuditEvent
from tests.api_support import make_client
from tests.conftest import login
from tests.e2e.fit import measure, misfits
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.passkeys import HOST, add_key
from tests.webauthn_soft import SoftPasskey

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 1920)
LOCALES = ("en-US", "de-DE")
LONG_DE = (
    "Mitarbeiterinnen und Mitarbeiter der Kundenbetreuung Nordrhein-Westfalen mit "
    "Lesezugriff auf Benutzerkonten, Gruppenzugehörigkeiten und Protokolleinträge"
)


def _seed(root):
    """Long names, long German descriptions, many groups: what a real install grows."""
    roles = []
    for n in range(6):
        role = RoleFactory(
            name=f"kundenbetreuung-nordrhein-westfalen-lesezugriff-{n}", description=LONG_DE
        )
        RuleFactory(role=role, pattern="backoffice:users:view")
        RuleFactory(role=role, pattern="backoffice:audit:view")
        roles.append(role)
    groups = [
        GroupFactory(
            name=f"Kundenbetreuung Nordrhein-Westfalen Außendienst Team {n}",
            description=LONG_DE,
            roles=roles,
        )
        for n in range(8)
    ]
    person = UserFactory(
        email="maximiliane.mustermann-schnarrenberger@kundenbetreuung-nordrhein-westfalen.example",
        first_name="Maximiliane Theodora",
        last_name="Mustermann-Schnarrenberger",
        groups=groups,
    )
    for n in range(6):
        UserFactory(
            email=f"bartholomaeus.leutheusser-{n}@vertrieb-und-kundenbetreuung.example",
            first_name="Bartholomäus",
            last_name=f"Leutheusser-Schnarrenberger {n}",
            groups=groups[:3],
        )
    for n in range(3):
        make_client(
            groups_from=root,
            name=f"Warenwirtschaft Synchronisation Nordrhein-Westfalen {n}",
            scopes=("read", "write"),
        )
    for _ in range(10):
        AuditEvent.objects.create(
            actor=root,
            actor_label=root.email,
            channel="web",
            action="user.update",
            target_type="user",
            target_id=str(person.pk),
            target_label=person.email,
            ip="2001:db8:85a3::8a2e:370:7334",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0",
            details={"changed": ["first_name", "last_name", "groups"], "note": LONG_DE},
        )
    return person


@pytest.fixture
def world(live_server, root_user):
    """Root with two passkeys (long names) as its second factor, logged in by the
    test client; the browser gets that session's cookie."""
    root_user.first_name = "Maximiliane Theodora"
    root_user.save()
    person = _seed(root_user)
    client = Client(HTTP_HOST=HOST)
    assert login(client, root_user.email, PASSWORD).status_code == 302
    for name in ("YubiKey 5C NFC am Schlüsselbund im Büro", "Passkey im Passwortmanager"):
        add_key(client, SoftPasskey(), name=name)
    client.get("/")  # a few sessions and audit rows of its own
    return {"person": person, "cookie": client.cookies[settings.SESSION_COOKIE_NAME].value}


PAGES = [
    "/users/",
    "/groups/",
    "/roles/",
    "/api-clients/",
    "/account/sessions/",
    "/audit/",
    "/2fa/webauthn/",
    "user:events",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_table_fits(live_server, browser, world, path):
    if path.startswith("user:"):  # a tab of the user page
        path = f"/users/{world['person'].pk}/{path.split(':')[1]}/"
    problems, widths = [], []
    for locale in LOCALES:
        context = browser.new_context(locale=locale)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": world["cookie"],
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        try:
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                response = page.goto(f"{live_server.url}{path}")
                assert response.status == 200, (locale, path, response.status)
                assert page.locator("main table").count() >= 1, (locale, path)
                m = measure(page)
                widths.append(
                    (locale, width, [(t["tableWidth"], t["boxWidth"]) for t in m["tables"]])
                )
                problems += [f"{locale} {width}px: {p}" for p in misfits(page)]
        finally:
            context.close()
    print(path, widths)
    assert not problems, "\n".join(problems)
