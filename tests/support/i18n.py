"""Reading pages for English left in German, and the world of objects
every Back Office screen needs."""

import re
from html.parser import HTMLParser
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from accounts.audit import Actor
from accounts.models import Group
from reviews.services import review_start
from tests.api_support import make_client
from tests.factories import GroupFactory, RoleFactory, UserFactory

PO = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES" / "django.po"


# allauth's own pages we show (MFA, password change, re-authentication):
# their English wording, which allauth's German catalogue translates.
ALLAUTH_ENGLISH = [
    "Sign In",
    "Sign Out",
    "Confirm Access",
    "Authenticator App",
    "Recovery Codes",
    "Change Password",
    "Current Password",
    "Activate",
    "Deactivate",
    "Enter the code",
]


def joined(block: str, keyword: str) -> str | None:
    """A keyword's string in a .po block, its continuation lines joined."""
    match = re.search(rf'^{re.escape(keyword)} "(.*)"\n?((?:".*"\n?)*)', block, re.M)
    if match is None:
        return None
    return match.group(1) + "".join(re.findall(r'^"(.*)"$', match.group(2), re.M))


def catalogue() -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of every message in the German .po (the
    singular form of a plural one)."""
    entries = []
    for block in PO.read_text().split("\n\n"):
        msgid = joined(block, "msgid")
        msgstr = joined(block, "msgstr")
        if msgstr is None:
            msgstr = joined(block, "msgstr[0]")
        if msgid and msgstr is not None:
            fuzzy = bool(re.search(r"^#,.*\bfuzzy\b", block, re.M))
            entries.append((msgid, msgstr, fuzzy))
    return entries


def english_words() -> list[str]:
    """English wordings that must not appear on a German page: each msgid
    without placeholders whose German differs, plus allauth's."""
    words = [
        msgid.replace('\\"', '"')
        for msgid, msgstr, _fuzzy in catalogue()
        if msgid != msgstr and "%" not in msgid and "<" not in msgid
    ]
    return sorted(set(words + ALLAUTH_ENGLISH), key=len, reverse=True)


class ReadableText(HTMLParser):
    """What a person reads or hears: text, and the attributes that are shown
    or spoken (placeholder, aria-label, title, alt, label, button values)."""

    SPOKEN = {"placeholder", "aria-label", "title", "alt", "label"}

    def __init__(self):
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and name in self.SPOKEN:
                self.chunks.append(value.strip())

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.chunks.append(" ".join(data.split()))


def english_left(html: str, *, exempt=()) -> list[str]:
    """The English wordings found in `html`'s readable text."""
    parser = ReadableText()
    parser.feed(html)
    found = []
    for word in english_words():
        if word in exempt:
            continue
        for chunk in parser.chunks:
            # Short words only as a whole chunk ("Save", "Users"); longer ones
            # anywhere, as words (not inside a resource name such as
            # backoffice:users:delete).
            if (len(word) < 6 and chunk == word) or (
                len(word) >= 6 and re.search(rf"(?<![\w:/-]){re.escape(word)}(?![\w:/-])", chunk)
            ):
                found.append(f"{word!r} in {chunk[:120]!r}")
                break
    return found


def make_world(root_user) -> dict:
    """One of everything the Back Office lists, so every page has rows."""
    role = RoleFactory(name="viewer")
    group = GroupFactory(name="staff", roles=[role])
    other = UserFactory(email="bob@shop.example", groups=[group])
    client, _secret = make_client(groups_from=root_user, name="shop-sync")
    review = review_start(
        name="Q4 root",
        group=Group.objects.get(name="root"),
        reviewer_mode="self",
        recurrence="quarterly",
        duration_days=14,
        by=Actor(user=root_user, channel="web"),
    )
    return {"user": other, "group": group, "role": role, "client": client, "review": review}


def back_office_urls(world) -> list[str]:
    """Every GET page of the Back Office (POST-only ones are left out by
    the caller: they answer 405)."""
    from backoffice.urls import urlpatterns

    ids = {
        "user": world["user"].pk,
        "group": world["group"].pk,
        "role": world["role"].pk,
        "api-client": world["client"].pk,
        "review": world["review"].pk,
    }
    urls = []
    for pattern in urlpatterns:
        name = pattern.name
        if name is None or name in (
            "audit-export",
            "account-session-end",
            "user-identity-unlink",
            # Reports for auditors: stable English by design (README "Access reviews").
            "review-report-csv",
            "review-report-json",
        ):
            continue
        kwargs = {}
        if "<id:pk>" in str(pattern.pattern) and name.startswith("access-"):
            continue  # POST only: withdraw, end, approve, deny
        if "<id:pk>" in str(pattern.pattern):
            kind = next(k for k in ids if name.startswith(k))
            kwargs = {"pk": ids[kind]}
        urls.append(reverse(f"backoffice:{name}", kwargs=kwargs))
    return urls
