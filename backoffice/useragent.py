"""A browser's User-Agent header as a person reads it: "Chrome on Linux".

Not a full parser (no versions, no devices): the first product that matches
in the order below, because every Chromium-based browser also says "Chrome"
and "Safari", and Chrome says "Safari" too."""

import re

from django.utils.translation import gettext as _

BROWSERS = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(Chrome|CriOS|HeadlessChrome|Chromium)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("curl", re.compile(r"^curl/")),
    ("Python", re.compile(r"^python-(requests|httpx|urllib)", re.I)),
)
SYSTEMS = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(iPhone|iPad|iPod)\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
)


def describe(user_agent: str | None) -> str:
    """ "Chrome on Linux", "Firefox", "Unknown browser on Windows", or
    "Unknown" for an empty header."""
    ua = (user_agent or "").strip()
    if not ua:
        return _("Unknown")
    browser = next((name for name, pattern in BROWSERS if pattern.search(ua)), None)
    system = next((name for name, pattern in SYSTEMS if pattern.search(ua)), None)
    # Product names stay as they are; only the words between are translated.
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    if browser:
        return browser
    if system:
        return _("Unknown browser on %(system)s") % {"system": system}
    return _("Unknown")
