"""Compile the translations (locale/*/LC_MESSAGES/*.po) to .mo with nothing
but Python, so `make run` needs no GNU gettext. Django's `compilemessages`
(which calls msgfmt) still works for those who have it; tests/test_i18n.py
checks that both give the same translations.

    python -m iam.catalogues      # from the repository root
"""

import ast
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _entries(text: str):
    """(msgctxt, msgid, msgid_plural, [msgstr…], fuzzy) for each entry."""
    entry, field, fuzzy = {}, None, False
    for raw in text.splitlines() + [""]:
        line = raw.strip()
        if not line or (line.startswith("#") and entry and field):
            if "msgid" in entry:
                yield entry, fuzzy
            entry, field, fuzzy = {}, None, False
            if not line:
                continue
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            entry[field] += ast.literal_eval(line)
            continue
        keyword, _, value = line.partition(" ")
        field = keyword
        entry[field] = ast.literal_eval(value)


def compile_po(po: Path, mo: Path) -> int:
    """Write `mo` from `po`; fuzzy and untranslated entries are left out, as
    msgfmt does. Returns the number of messages written."""
    messages = {}
    for entry, fuzzy in _entries(po.read_text(encoding="utf-8")):
        msgid = entry["msgid"]
        if "msgid_plural" in entry:
            forms = [entry[k] for k in sorted(k for k in entry if k.startswith("msgstr["))]
            key, value = f"{msgid}\0{entry['msgid_plural']}", "\0".join(forms)
            translated = all(forms)
        else:
            key, value = msgid, entry.get("msgstr", "")
            translated = bool(value)
        if "msgctxt" in entry:
            key = f"{entry['msgctxt']}\x04{key}"
        if (fuzzy and msgid) or not translated:
            continue
        messages[key.encode()] = value.encode()
    keys = sorted(messages)
    ids = b"".join(k + b"\0" for k in keys)
    strs = b"".join(messages[k] + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)  # header, then the two offset tables
    id_offsets, str_offsets, at = [], [], 0
    for k in keys:
        id_offsets += [len(k), start + at]
        at += len(k) + 1
    at = 0
    for k in keys:
        str_offsets += [len(messages[k]), start + len(ids) + at]
        at += len(messages[k]) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    table = struct.pack(f"{len(id_offsets)}i", *id_offsets)
    table += struct.pack(f"{len(str_offsets)}i", *str_offsets)
    mo.write_bytes(header + table + ids + strs)
    return len(keys)


def main() -> int:
    for po in sorted((ROOT / "locale").glob("*/LC_MESSAGES/*.po")):
        count = compile_po(po, po.with_suffix(".mo"))
        print(f"{po.relative_to(ROOT)}: {count} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
