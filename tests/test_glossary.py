"""The glossary (docs/glossary.md) is the law of the product's words: no
German msgstr may use a variant it forbids, no English msgid an English one.

Parsed from the Markdown table itself, so a term added there is checked
here without touching this file."""

import re
from pathlib import Path

import allauth
import pytest
from django.conf import settings

from tests.support.i18n import catalogue, joined

GLOSSARY = Path(settings.BASE_DIR) / "docs" / "glossary.md"
ALLAUTH_PO = Path(allauth.__file__).parent / "locale" / "de" / "LC_MESSAGES" / "django.po"

# English msgids in code owned by other helpers at the time of writing
# (issue 21): each names who should change it. Remove a line once fixed.
PENDING_ENGLISH: dict[str, str] = {}


def forbidden(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def glossary() -> list[dict]:
    """The table's rows: term, german, not_de, not_en."""
    rows = []
    for line in GLOSSARY.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("English", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append(
            {
                "term": cells[0],
                "german": cells[1],
                "not_de": forbidden(cells[2]),
                "not_en": forbidden(cells[3]),
            }
        )
    return rows


def word(variant: str) -> re.Pattern:
    """A variant as a whole word (or words), case-sensitive."""
    return re.compile(rf"(?<![\w-]){re.escape(variant)}(?![\w-])")


def offences(texts, column: str) -> list[tuple[str, str]]:
    found = []
    for row in glossary():
        for variant in row[column]:
            pattern = word(variant)
            found += [(variant, text) for text in texts if pattern.search(text)]
    return found


def test_the_glossary_has_the_product_terms():
    terms = {row["term"] for row in glossary()}
    for term in (
        "two-factor authentication",
        "authenticator app",
        "recovery codes",
        "passwordless",
        "client credentials",
        "log in",
        "re-authentication",
        "actor",
        "audit log",
        "service account",
        "identity provider",
        "single sign-on",
    ):
        assert term in terms
    assert all(row["german"] for row in glossary())


@pytest.mark.parametrize(
    ("text", "variant", "hit"),
    [
        ("Verwenden Sie eine Authentifizierungs-App", "Authentifizierungs-App", True),
        ("Authenticator-App ersetzt", "Authentifizierungs-App", False),
        ("IAM_MFA_REQUIRED_GROUPS", "MFA", False),
        ("Reset MFA", "MFA", True),
        ("E-Mail", "Email", False),
    ],
)
def test_a_variant_matches_as_a_whole_word(text, variant, hit):
    assert bool(word(variant).search(text)) is hit


def test_no_german_message_uses_a_forbidden_variant():
    german = [msgstr.replace('\\"', '"') for _id, msgstr, _fuzzy in catalogue() if msgstr]
    assert offences(german, "not_de") == []


def allauth_entries() -> list[tuple[str, str]]:
    """(msgid, msgstr) of allauth's own German catalogue."""
    entries = []
    for block in ALLAUTH_PO.read_text().split("\n\n"):
        msgid, msgstr = joined(block, "msgid"), joined(block, "msgstr")
        if msgid and msgstr:
            entries.append((msgid, msgstr))
    return entries


def test_no_english_message_uses_a_forbidden_variant():
    """Our English only: allauth's msgids we translate are allauth's words
    (their German is checked above; their pages are our templates)."""
    theirs = {msgid for msgid, _str in allauth_entries()}
    english = [
        msgid.replace('\\"', '"')
        for msgid, _str, _fuzzy in catalogue()
        if msgid not in theirs and msgid.replace('\\"', '"') not in PENDING_ENGLISH
    ]
    assert offences(english, "not_en") == []


def test_allauth_german_we_do_not_override_keeps_the_glossary():
    """allauth's own German shows wherever ours has no entry for its msgid:
    it must keep the glossary too (iam/formal_german.py lists the overrides)."""
    ours = {msgid for msgid, _str, _fuzzy in catalogue()}
    german = [s.replace('\\"', '"') for m, s in allauth_entries() if m not in ours]
    assert offences(german, "not_de") == []


def test_the_dates_line_of_a_german_mail_ends_without_a_stray_quote():
    from django.utils import translation

    with translation.override("de"):
        text = translation.gettext(
            "If you do not recognize this change then please take proper security "
            "precautions immediately. The change to your account originates from:\n"
            "\n"
            "- IP address: %(ip)s\n"
            "- Browser: %(user_agent)s\n"
            "- Date: %(timestamp)s"
        )
    assert text.endswith("- Datum: %(timestamp)s")
