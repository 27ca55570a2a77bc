"""Checkers for any Playwright page, each returning what it found (an empty
list: the page passes). They return rather than assert so a journey can
collect every page's findings and report them at once; `Findings` gathers
them per step (tests/e2e/test_first_admin_walk.py)."""

import functools
import gettext
import re
from pathlib import Path

import allauth

from tests.e2e.axe import Audit

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = [
    ROOT / "locale/de/LC_MESSAGES/django.mo",
    Path(allauth.__file__).parent / "locale/de/LC_MESSAGES/django.mo",
]
# English seen on German pages before, which no msgid covers.
KNOWN_LEFTOVERS = ["method:", "via:", "sessions ended", "ceiling", "Full administrators."]
# allauth's default headings (Title Case), never ours.
ALLAUTH_HEADINGS = [
    "Two-Factor Authentication",
    "Security Keys",
    "Recovery Codes",
    "Add Security Key",
    "Authenticator App",
    "Sign In",
    "Sign Out",
]
PLACEHOLDER = re.compile(r"%(\([^)]*\))?[sdf]|\{[^}]*\}")

CLIPPED_JS = """() => {
  const out = [];
  const de = document.documentElement;
  if (de.scrollWidth > de.clientWidth + 1)
    out.push(`document scrolls sideways: ${de.scrollWidth} > ${de.clientWidth}`);
  const main = document.querySelector('main');
  if (!main) return out;
  const name = (el) => {
    const region = el.closest('[aria-label]');
    const head = el.querySelector('thead th');
    return (region && region.getAttribute('aria-label'))
      || (head && head.innerText.trim()) || 'table';
  };
  main.querySelectorAll('table').forEach((table, i) => {
    const box = table.parentElement;
    const label = `table ${i + 1} (${name(table)})`;
    if (box.scrollWidth > box.clientWidth + 1)
      out.push(`${label}: ${box.scrollWidth} px in ${box.clientWidth} px`);
    else if (table.getBoundingClientRect().right > main.getBoundingClientRect().right + 1)
      out.push(`${label}: ends past main's right edge`);
    table.querySelectorAll('th, td').forEach((cell) => {
      if (cell.scrollWidth > cell.clientWidth + 1)
        out.push(`${label}: cell "${cell.innerText.trim().slice(0, 30)}" clipped `
                 + `(${cell.scrollWidth} > ${cell.clientWidth} px)`);
    });
  });
  return out;
}"""

LAYOUT_JS = """(headings) => {
  const out = [];
  const top = document.querySelector('header.topbar');
  if (!top || !top.querySelector('.brand')) out.push('no header.topbar with the brand');
  const main = document.querySelector('main#main');
  if (!main) { out.push('no main#main'); return out; }
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const b of main.querySelectorAll('ul > li > button'))
    if (visible(b) && getComputedStyle(b.closest('li')).listStyleType !== 'none')
      out.push(`bulleted button "${b.innerText.trim()}"`);
  for (const l of main.querySelectorAll('label'))
    if (visible(l) && /:\\s*$/.test(l.innerText))
      out.push(`label ending in ':' "${l.innerText.trim()}"`);
  for (const h of main.querySelectorAll('h1, h2, h3, legend'))
    if (headings.includes(h.innerText.trim())) out.push(`allauth heading "${h.innerText.trim()}"`);
  return out;
}"""

TEXT_JS = """() => {
  const parts = [document.title];
  const main = document.querySelector('main');
  if (main) parts.push(main.innerText);
  const header = document.querySelector('header');
  if (header) parts.push(header.innerText);
  for (const el of document.querySelectorAll('[placeholder], [aria-label], [title]'))
    for (const a of ['placeholder', 'aria-label', 'title'])
      if (el.getAttribute(a)) parts.push(el.getAttribute(a));
  for (const b of document.querySelectorAll('button, input[type=submit]'))
    parts.push(b.innerText || b.value || '');
  return parts.join('\\n');
}"""


def _words(text: str) -> str:
    return " ".join(text.split())


@functools.cache
def english_phrases() -> tuple[str, ...]:
    """Every English msgid (or, around its placeholders, each fragment) of at
    least two words whose German differs: none may show on a German page."""
    phrases = set()
    for path in CATALOGUES:
        with open(path, "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog
        for key, german in catalog.items():
            msgid = key[0] if isinstance(key, tuple) else key
            if not msgid or "<" in msgid:
                continue
            msgid = msgid.split("\x04")[-1]  # drop a context
            for fragment in PLACEHOLDER.split(msgid):
                fragment = _words(fragment or "").strip(" .,:;()")
                if len(fragment.split()) >= 2 and fragment not in _words(german):
                    phrases.add(fragment)
    return tuple(sorted(phrases))


def no_clipped_table(page) -> list[str]:
    return page.evaluate(CLIPPED_JS)


def in_product_layout(page) -> list[str]:
    return page.evaluate(LAYOUT_JS, ALLAUTH_HEADINGS)


def no_english_on_german(page) -> list[str]:
    text = _words(page.evaluate(TEXT_JS))
    found = [f'English "{p}"' for p in english_phrases() if p in text]
    found += [f'English leftover "{p}"' for p in KNOWN_LEFTOVERS if p in text]
    return found


def axe(page) -> list[str]:
    audit = Audit(page)
    audit.check(page.url)
    return audit.found


class Findings:
    """What the checkers found, page by page; `check` runs them all."""

    def __init__(self, page, german: bool):
        self.page = page
        self.german = german
        self.by_checker: dict[str, list[str]] = {}

    def check(self, step: str):
        checkers = {"clipped": no_clipped_table, "layout": in_product_layout, "axe": axe}
        if self.german:
            checkers["english"] = no_english_on_german
        # A step that submitted a form may still be navigating: read the page
        # it lands on, not the one being left (null documentElement).
        self.page.wait_for_load_state("load")
        path = self.page.url.split("/", 3)[-1]
        for name, checker in checkers.items():
            for finding in checker(self.page):
                self.by_checker.setdefault(name, []).append(f"{step} /{path}: {finding}")

    def report(self) -> str:
        return "\n".join(
            f"[{name}] {line}" for name, lines in self.by_checker.items() for line in lines
        )
