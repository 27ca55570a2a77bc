"""English and German: every page in German, the user's language over the
browser's, the login page's switcher, mails in the recipient's language and
a catalogue with nothing left untranslated.

The "no English left" check is built from the catalogue itself: every
English msgid whose German differs must not show on a German page, so a
string marked but not translated fails here, and so does a page that uses
an English wording already translated elsewhere without marking it."""

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.template import loader
from django.utils import translation

from accounts.audit import LABELS, AuditAction
from accounts.models import AuditEvent, User
from accounts.throttle import wait_text
from iam.catalogues import compile_po
from tests.api_support import make_client
from tests.conftest import login
from tests.factories import PASSWORD
from tests.support.i18n import (
    PO,
    ReadableText,
    back_office_urls,
    catalogue,
    english_left,
    make_world,
)
from tests.support.mfa import activate_totp, totp

pytestmark = pytest.mark.django_db


INFORMAL = re.compile(r"\b(du|dich|dir|dein\w*|gib)\b", re.I)


def informal_left(html: str) -> list[str]:
    """German that says "du" (allauth's catalogue does, here and there)."""
    parser = ReadableText()
    parser.feed(html)
    return [chunk for chunk in parser.chunks if INFORMAL.search(chunk)]


def assert_german(response, *, exempt=()):
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    html = response.content.decode()
    assert '<html lang="de">' in html
    left = english_left(html, exempt=exempt)
    assert not left, f"{response.wsgi_request.path}: English left: {left}"
    informal = informal_left(html)
    assert not informal, f"{response.wsgi_request.path}: not formal: {informal}"


@pytest.fixture(autouse=True)
def _english_afterwards():
    """A German request leaves German active in this thread (Django activates
    per request, never deactivates): the next test starts in English."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


# --- the pages ---------------------------------------------------------------------------


@pytest.fixture
def world(root_user):
    return make_world(root_user)


@pytest.fixture
def german_browser(client, root_user):
    login(client, root_user.email, PASSWORD)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
    return client


@pytest.fixture
def german_user(client, root_user):
    """A German account whose browser asks for English: the account wins."""
    User.objects.filter(pk=root_user.pk).update(language="de")
    login(client, root_user.email, PASSWORD)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en-US,en;q=0.9"
    return client


@pytest.mark.parametrize("who", ["german_browser", "german_user"])
def test_every_back_office_page_is_german(request, who, world):
    client = request.getfixturevalue(who)
    shown = 0
    for url in back_office_urls(world):
        response = client.get(url, follow=True)  # an old address redirects
        if response.status_code == 405:  # POST only
            continue
        assert_german(response)
        shown += 1
    assert shown >= 15  # the screens are all there, not skipped


def test_pages_with_messages_and_errors_are_german(german_browser, world):
    user = world["user"]
    saved = german_browser.post(
        f"/users/{user.pk}/",
        {
            "first_name": "Bob",
            "last_name": "Baker",
            "email": user.email,
            "status": "active",
            "groups": [world["group"].pk],
            "language": "",
        },
        follow=True,
    )
    assert_german(saved)
    assert f"Benutzer {user.email} gespeichert." in saved.content.decode()
    invalid = german_browser.post("/users/add/", {"email": "nope", "password_mode": "password"})
    assert invalid.status_code == 200
    assert_german(invalid)
    assert "Geben Sie eine gültige E-Mail-Adresse ein." in invalid.content.decode()
    refused = german_browser.post(f"/groups/{world['group'].pk}/delete/", follow=True)
    assert_german(refused)
    assert "Die Gruppe staff hat noch 1 Mitglied(er)" in refused.content.decode()
    self_block = german_browser.post(f"/users/{german_browser.session['_auth_user_id']}/block/")
    assert_german(german_browser.get(self_block["Location"]))
    filtered = german_browser.get("/audit/?since=1999-01-01")
    assert_german(filtered)
    assert "Geben Sie einen Tag zwischen" in filtered.content.decode()


def test_pages_before_login_are_german(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9,en;q=0.5"
    for url in ("/login/", "/password/reset/", "/password/reset/done/", "/logout/"):
        assert_german(client.get(url, follow=True))
    assert_german(client.get("/password/reset/key/1-nope/", follow=True))
    failed = client.post("/login/", {"login": "ada@shop.example", "password": "wrong"})
    assert_german(failed)


def test_allauth_pages_we_show_are_german(german_browser):
    for url in ("/2fa/totp/activate/", "/password/change/", "/reauthenticate/"):
        assert_german(german_browser.get(url))
    activate_totp(german_browser)
    for url in ("/2fa/totp/replace/", "/2fa/recovery-codes/", "/2fa/totp/deactivate/"):
        assert_german(german_browser.get(url))


def test_mfa_login_step_is_german(client, root_user):
    login(client, root_user.email, PASSWORD)
    secret = activate_totp(client)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
    client.post("/logout/")
    step = login(client, root_user.email, PASSWORD)
    assert step.status_code == 302
    assert_german(client.get(step["Location"]))
    done = client.post(step["Location"], {"code": totp(secret)})
    assert done.status_code == 302


def test_error_pages_are_german(client, user):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
    assert client.get("/no-such-page/").status_code == 404
    assert not english_left(client.get("/no-such-page/").content.decode())
    login(client, user.email, PASSWORD)
    forbidden = client.get("/users/")
    assert forbidden.status_code == 403
    assert "Nicht erlaubt" in forbidden.content.decode()
    assert not english_left(forbidden.content.decode())
    with translation.override("de"):
        pages = {
            "429.html": {"wait": wait_text(120)},
            "500.html": {},
            "503.html": {"what": "database"},
        }
        for template, context in pages.items():
            html = loader.render_to_string(template, context)
            assert '<html lang="de">' in html or "429" in template
            assert not english_left(html), template
        assert "2 Minuten" in loader.render_to_string("429.html", {"wait": wait_text(120)})


def test_the_english_check_can_fail():
    """The detector itself: an English button on a German page is caught."""
    assert english_left('<html lang="de"><button>Save</button></html>')
    assert english_left('<input placeholder="Search email or name">')
    assert not english_left("<p>Speichern</p><p>Single Sign-on</p>")


# --- who decides the language ------------------------------------------------------------


def test_english_stays_english(client, root_user):
    login(client, root_user.email, PASSWORD)
    html = client.get("/users/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in html and ">Users</h1>" in html


def test_the_users_language_wins_over_the_browser(client, root_user):
    login(client, root_user.email, PASSWORD)
    assert ">Benutzer</h1>" in client.get("/users/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    User.objects.filter(pk=root_user.pk).update(language="en")
    html = client.get("/users/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert ">Users</h1>" in html
    User.objects.filter(pk=root_user.pk).update(language="de")
    response = client.get("/users/", HTTP_ACCEPT_LANGUAGE="en")
    assert ">Benutzer</h1>" in response.content.decode()
    assert response["Content-Language"] == "de"


def test_the_switcher_sets_the_language_cookie_with_csrf(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    page = strict.get("/login/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert 'action="/i18n/setlang/"' in html and 'value="de"' in html
    forged = strict.post("/i18n/setlang/", {"language": "de", "next": "/login/"})
    assert forged.status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    switched = strict.post(
        "/i18n/setlang/", {"language": "de", "next": "/login/", "csrfmiddlewaretoken": token}
    )
    assert switched.status_code == 302 and switched["Location"] == "/login/"
    assert strict.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"
    assert strict.cookies[settings.LANGUAGE_COOKIE_NAME]["httponly"]
    # The cookie now wins over the browser's English.
    assert ">Anmelden</h1>" in strict.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    # An off-site next is not followed.
    away = strict.post(
        "/i18n/setlang/",
        {"language": "en", "next": "https://evil.example/", "csrfmiddlewaretoken": token},
    )
    assert away["Location"] == "/"


def test_my_account_sets_my_language(client, user):
    login(client, user.email, PASSWORD)
    saved = client.post("/account/language/", {"language": "de"}, follow=True)
    assert "Ihre Sprache ist gespeichert." in saved.content.decode()
    user.refresh_from_db()
    assert user.language == "de"
    event = AuditEvent.objects.get(action="user.updated", target_id=str(user.pk))
    assert event.actor == user and event.details == {"language": ["", "de"]}
    assert client.post("/account/language/", {"language": "xx"}).status_code == 302
    user.refresh_from_db()
    assert user.language == "de"  # an unknown language changes nothing
    client.post("/account/language/", {"language": ""})
    user.refresh_from_db()
    assert user.language == ""
    assert client.get("/account/language/").status_code == 405


def test_admin_sets_a_users_language_audited(client, root_user, user):
    login(client, root_user.email, PASSWORD)
    form = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "status": "active",
        "language": "de",
    }
    assert client.post(f"/users/{user.pk}/", form).status_code == 302
    user.refresh_from_db()
    assert user.language == "de"
    event = AuditEvent.objects.filter(action="user.updated", target_id=str(user.pk)).first()
    assert event.details == {"language": ["", "de"]}
    bad = client.post(f"/users/{user.pk}/", {**form, "language": "fr"})
    assert bad.status_code == 200 and "fr" not in dict(settings.LANGUAGES)
    user.refresh_from_db()
    assert user.language == "de"


def test_admin_creates_a_german_user_whose_invitation_is_german(client, root_user):
    login(client, root_user.email, PASSWORD)
    response = client.post(
        "/users/add/",
        {
            "first_name": "Karl",
            "last_name": "Krause",
            "email": "karl@shop.example",
            "status": "active",
            "language": "de",
            "password_mode": "invite",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302
    assert User.objects.get(email="karl@shop.example").language == "de"
    (message,) = mail.outbox
    assert "Ihr Back-Office-Konto ist bereit" in message.subject
    assert "Guten Tag Karl," in message.body and "Legen Sie hier Ihr Passwort fest:" in message.body


def test_a_reset_mail_to_a_german_user_is_german(client, user):
    User.objects.filter(pk=user.pk).update(language="de")
    client.post("/password/reset/", {"email": user.email}, HTTP_ACCEPT_LANGUAGE="en")
    (message,) = mail.outbox
    assert message.subject.endswith("Setzen Sie Ihr Back-Office-Passwort zurück")
    assert "Jemand (hoffentlich Sie) hat angefordert" in message.body
    assert not english_left(message.body.replace("\n", "<br>"))


def test_a_reset_mail_follows_the_browser_when_the_user_chose_none(client, user):
    client.post("/password/reset/", {"email": user.email}, HTTP_ACCEPT_LANGUAGE="de")
    client.post("/password/reset/", {"email": user.email}, HTTP_ACCEPT_LANGUAGE="en")
    german, english = mail.outbox
    assert "Setzen Sie Ihr Back-Office-Passwort zurück" in german.subject
    assert english.subject.endswith("Reset your Back Office password")


def test_dates_in_the_users_locale(client, root_user):
    login(client, root_user.email, PASSWORD)
    day = root_user.created_at
    english = client.get("/users/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    german = client.get("/users/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert f"{day:%Y-%m-%d}" in english
    assert f"{day:%d.%m.%Y}" in german and f"<td>{day:%Y-%m-%d}</td>" not in german
    # A date filter is ISO in the form whatever the language.
    audit = client.get("/audit/?since=2026-01-02", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert 'value="2026-01-02"' in audit


def test_audit_actions_keep_their_codes_and_have_labels(client, root_user):
    assert set(LABELS) == set(AuditAction)
    with translation.override("de"):
        german = {str(label) for label in LABELS.values()}
    with translation.override("en"):
        english = {str(label) for label in LABELS.values()}
    assert len(german) == len(AuditAction) and not german & english
    login(client, root_user.email, PASSWORD)
    html = client.get("/audit/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "<code>login.succeeded</code>" in html and "Angemeldet" in html


# --- the catalogue -----------------------------------------------------------------------


def test_catalogue_is_complete_and_compiles():
    entries = catalogue()
    assert len(entries) > 300
    assert not [msgid for msgid, _s, fuzzy in entries if fuzzy], "fuzzy entries"
    assert not [msgid for msgid, msgstr, _f in entries if not msgstr], "untranslated entries"
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.fail("msgfmt is missing: apt-get install gettext")
    result = subprocess.run(
        [msgfmt, "--check", "-o", "/dev/null", str(PO)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_catalogue_is_formal():
    """Formal German: "Sie", never "du"."""
    assert not [s for _id, s, _f in catalogue() if INFORMAL.search(s)]


def test_allauth_messages_we_show_are_formal(client, user):
    """Where allauth's German says "du", ours says "Sie" (iam/formal_german.py)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
    login(client, user.email, PASSWORD)
    out = client.post("/logout/", follow=True)
    assert "Sie haben sich abgemeldet." in out.content.decode()
    assert not informal_left(out.content.decode())
    login(client, user.email, PASSWORD)
    mismatch = client.post(
        "/password/change/",
        {"oldpassword": "wrong", "password1": "a b c d e f g h", "password2": "other x y z w"},
    )
    html = mismatch.content.decode()
    assert "Bitte geben Sie Ihr aktuelles Passwort ein." in html
    assert not informal_left(html)


def test_every_template_string_is_in_the_catalogue():
    """makemessages would add nothing: every marked string is translated."""
    with translation.override("de"):
        assert translation.gettext("Log in") == "Anmelden"
        assert translation.gettext("Users") == "Benutzer"
        assert translation.gettext("Two-factor authentication") == "Zwei-Faktor-Authentifizierung"


def test_the_consent_page_is_german(german_browser):
    client, _secret = make_client(
        "authorization_code",
        redirect_uris=["http://127.0.0.1:9/callback"],
        scopes=["read", "write", "backoffice:users:view"],
        name="shop-app",
    )
    page = german_browser.get(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": "http://127.0.0.1:9/callback",
            "scope": "read write backoffice:users:view",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "state": "s",
        },
    )
    assert_german(page)
    html = page.content.decode()
    assert "shop-app autorisieren?" in html and "Nur backoffice:users:view" in html


def test_only_an_admin_who_may_edit_and_outranks_sets_a_language(root_user, user):
    """The language is an account field like the names: users:edit, and rank."""
    from accounts import services
    from accounts.audit import Actor
    from tests.support.people import admin_with

    blocker = admin_with("backoffice:users:view", "backoffice:users:block", name="blockers")
    editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")

    def set_language(actor, target, language):
        services.user_update(
            user=target,
            email=target.email,
            first_name=target.first_name,
            last_name=target.last_name,
            groups=list(target.groups.all()),
            active=target.is_active,
            by=Actor(user=actor),
            language=language,
        )

    with pytest.raises(services.AccessRefused, match="backoffice:users:edit"):
        set_language(blocker, user, "de")
    with pytest.raises(services.AccessRefused, match="holds permissions you do not"):
        set_language(editor, root_user, "de")
    with pytest.raises(services.AccountError, match="Unknown language"):
        set_language(editor, user, "xx")
    assert User.objects.filter(language="de").count() == 0
    set_language(editor, user, "de")
    user.refresh_from_db()
    assert user.language == "de"
    refused = AuditEvent.objects.filter(action="access.grant_refused").count()
    assert refused == 2


# Text in templates that is not for translation: the product's name, CSS
# class blocks, and protocol terms shown as they are.
NOT_WORDS = {"Back Office", "· Back Office", "UTC", "client_id", "client_secret"}


def unmarked_text(source: str) -> list[str]:
    """The readable text of a template outside {% translate %} and
    {% blocktranslate %}: what a person would read in English whatever
    their language."""
    text = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", "", source, flags=re.S)
    text = re.sub(r"{#.*?#}", "", text, flags=re.S)
    # A script's body is code or data (allauth's JSON of element ids), not read.
    text = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S)
    text = re.sub(r"{%\s*block (main|body)_class\s*%}.*?{%\s*endblock\s*%}", "", text)
    text = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", "", text, flags=re.S)
    text = re.sub(r"{%.*?%}", "  ", text, flags=re.S)
    text = re.sub(r"{{.*?}}", "  ", text, flags=re.S)
    shown = re.findall(r'(?:placeholder|aria-label|title|alt|label)="([^"]*)"', text)
    text = re.sub(r"<[^>]*>", "  ", text, flags=re.S)
    chunks = [c.strip() for c in re.split(r"\s{2,}|\n", text)] + shown
    return [c for c in chunks if re.search(r"[A-Za-z]{2,}", c) and c not in NOT_WORDS]


def test_every_template_string_is_marked():
    """A static check beside the rendered one: no template holds English
    text outside a translation tag (templates/ and the apps' templates)."""
    base = Path(settings.BASE_DIR)
    roots = [base / "templates", *base.glob("*/templates")]
    files = [p for root in roots for p in root.rglob("*") if p.suffix in (".html", ".txt")]
    assert len(files) > 35
    unmarked = {str(p.relative_to(base)): unmarked_text(p.read_text()) for p in files}
    assert not {path: left for path, left in unmarked.items() if left}
    assert unmarked_text("<h1>Users</h1>{% translate 'Save' %}") == ["Users"]
    assert unmarked_text('<input placeholder="Search">') == ["Search"]
    assert unmarked_text('<script type="application/json">{"ids": {"a": "b"}}</script>') == []


def test_a_failed_single_sign_on_is_said_in_german(client, settings):
    """The provider's refusal reasons are translated too (sso: gettext_noop
    at each refusal, translated when the message is made)."""
    from tests.oidc_fake import FakeIdP

    idp = FakeIdP()
    try:
        settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
        forged = client.get("/sso/fake/callback/?code=abc&state=forged")
        assert forged["Location"] == "/login/"
        page = client.get("/login/")
        assert_german(page)
        assert "fehlgeschlagen: Dieser Anmeldelink ist hier nicht gültig" in page.content.decode()
    finally:
        idp.close()


def test_security_key_pages_are_german(root_user):
    """Passkeys and security keys: our list and removal pages, allauth's
    add and rename pages, the login page's passkey button."""
    from django.test import Client

    from tests.support.passkeys import HOST, add_key
    from tests.webauthn_soft import SoftPasskey

    client = Client(HTTP_HOST=HOST, HTTP_ACCEPT_LANGUAGE="de")
    assert_german(client.get("/login/"))
    assert "Mit einem Passkey anmelden" in client.get("/login/").content.decode()
    login(client, root_user.email, PASSWORD)
    key = add_key(client, SoftPasskey())
    for url in (
        "/2fa/webauthn/",
        "/2fa/webauthn/add/",
        f"/2fa/webauthn/keys/{key.pk}/edit/",
        f"/2fa/webauthn/keys/{key.pk}/remove/",
        "/account/",
    ):
        assert_german(client.get(url))
    keys = client.get("/2fa/webauthn/").content.decode()
    assert "Sicherheitsschlüssel und Passkeys" in keys and "Umbenennen" in keys
    audit = client.get("/audit/?action=mfa.webauthn.added").content.decode()
    assert "Sicherheitsschlüssel oder Passkey hinzugefügt" in audit


def test_single_logout_pages_are_german(client, settings):
    """Our page between the logout here and the provider's, the provider's
    front-channel iframe and the login page's "logged out there too"."""
    from django.core import signing

    from sso import logout
    from tests.oidc_fake import FakeIdP

    idp = FakeIdP()
    try:
        settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config(frontchannel="true")}
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
        token = logout._fernet().encrypt(f"{idp.issuer}/logout?state=s".encode()).decode()
        page = client.get("/sso/fake/logout/", {"to": token})
        assert_german(page)
        assert "Jetzt werden Sie auch bei Ihrem Identitätsanbieter abgemeldet" in (
            page.content.decode()
        )
        frame = client.get("/sso/fake/frontchannel-logout/")
        assert_german(frame)
        state = signing.dumps("fake", salt=logout.STATE_SALT)
        back = client.get("/login/", {"state": state})
        assert_german(back)
        assert "Sie wurden abgemeldet, auch bei Fake IdP." in back.content.decode()
    finally:
        idp.close()


def test_the_accessibility_pages_are_german(german_browser, user):
    """The read-only user page with a session and events, the confirm
    questions, the 405 page, the refused search and the groups' notes."""
    from django.test import Client

    from accounts.models import Group

    chrome_linux = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    )
    login(Client(HTTP_USER_AGENT=chrome_linux), user.email, PASSWORD)
    for tab in ("", "groups/", "security/"):
        assert_german(german_browser.get(f"/users/{user.pk}/{tab}"))
    sessions = german_browser.get(f"/users/{user.pk}/sessions/")
    assert_german(sessions)
    assert "Chrome unter Linux" in sessions.content.decode()
    events = german_browser.get(f"/users/{user.pk}/events/")
    assert_german(events)
    assert "Letzte Ereignisse" in events.content.decode()
    block = german_browser.get(f"/users/{user.pk}/block/")
    assert_german(block)
    assert f"{user.email} sperren?" in block.content.decode()
    reset = german_browser.get(f"/users/{user.pk}/mfa-reset/")
    assert_german(reset)
    assert "Die Zwei-Faktor-Authentifizierung von" in reset.content.decode()
    refused = german_browser.get("/users/", {"q": "x" * 101})
    assert_german(refused)
    assert "Eine Suche darf höchstens 100 Zeichen lang sein." in refused.content.decode()
    not_a_page = german_browser.get("/account/language/")
    assert not_a_page.status_code == 405
    assert "Keine Seite" in not_a_page.content.decode()
    assert not english_left(not_a_page.content.decode())
    built_in = german_browser.get(f"/groups/{Group.objects.get(name='root').pk}/")
    assert_german(built_in)
    assert "ist fest eingebaut und kann nicht gelöscht werden" in built_in.content.decode()


def test_the_scim_actions_are_labelled_in_german(german_browser):
    from accounts.audit import audit

    for action in AuditAction:
        if action.value.startswith("scim."):
            audit(action, target_label="ada@shop.example")
    page = german_browser.get("/audit/?action=scim.user_created")
    assert_german(page)
    assert "Benutzer durch Provisionierung (SCIM) angelegt" in page.content.decode()


def test_the_python_compiler_gives_msgfmts_translations(tmp_path):
    """`make install` compiles the catalogue with iam.catalogues (no gettext
    needed); every message must come out as GNU msgfmt makes it."""
    ours, theirs = tmp_path / "ours.mo", tmp_path / "msgfmt.mo"
    compile_po(PO, ours)
    subprocess.run([shutil.which("msgfmt") or "msgfmt", "-o", str(theirs), str(PO)], check=True)
    with ours.open("rb") as a, theirs.open("rb") as b:
        mine, gnu = gettext.GNUTranslations(a), gettext.GNUTranslations(b)
    messages = {k: v for k, v in gnu._catalog.items() if k != ""}  # "": msgfmt trims the header
    assert len(messages) > 300
    assert {k: v for k, v in mine._catalog.items() if k != ""} == messages
    assert mine.plural(2) == gnu.plural(2) and mine.charset() == gnu.charset() == "UTF-8"
