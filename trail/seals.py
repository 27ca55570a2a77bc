"""A seal's bytes: its header (what its MAC covers), its packed ids and
tags, and the one check of a seal on its own (the same for a row in the
database and a seal file in an archive).

A seal is held here as a plain dict (SEAL_FIELDS plus `ids` and `tags` as
bytes, `mac`), so the database walk and the archive walk share this code.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

from trail import keys
from trail.canonical import dumps, utc_iso

HEADER = (
    "seq",
    "prev_mac",
    "first_event_id",
    "last_event_id",
    "count",
    "first_at",
    "last_at",
    "events_hash",
    "key_id",
    "created_at",
)


def pack_ids(ids: list[int]) -> bytes:
    """Little-endian uint64s, compressed (consecutive ids compress to little)."""
    return zlib.compress(struct.pack(f"<{len(ids)}Q", *ids))


def unpack_ids(blob: bytes) -> tuple[int, ...]:
    raw = zlib.decompress(bytes(blob))
    return struct.unpack(f"<{len(raw) // 8}Q", raw)


def events_hash(ids: tuple[int, ...] | list[int], tags: bytes) -> str:
    """SHA-256 over the events in order: each id and its tag."""
    digest = hashlib.sha256()
    digest.update(struct.pack(f"<{len(ids)}Q", *ids))
    digest.update(bytes(tags))
    return digest.hexdigest()


def header(seal: dict) -> bytes:
    values = {name: seal[name] for name in HEADER}
    for name in ("first_at", "last_at", "created_at"):
        if not isinstance(values[name], str):
            values[name] = utc_iso(values[name])
    return dumps(values)


def of_row(row) -> dict:
    """An AuditSeal row as a seal dict."""
    seal = {name: getattr(row, name) for name in HEADER}
    seal.update(ids=bytes(row.ids), tags=bytes(row.tags), mac=row.mac)
    return seal


def tags_of(seal: dict) -> list[bytes]:
    tags, size = seal["tags"], keys.TAG_BYTES
    return [tags[i : i + size] for i in range(0, len(tags), size)]


def seal_problem(seal: dict, *, ring: dict[str, bytes]) -> tuple[str, str] | None:
    """(kind, message) of what is wrong with the seal itself, or None.
    A seal made with a key not in `ring` is reported as that ("key"), not
    as a broken seal: the operator has the wrong key, which proves nothing."""
    name = f"seal {seal['seq']}"
    key = ring.get(str(seal["key_id"]))
    if key is None:
        return ("key", unknown_key(name, seal["key_id"]))
    if not keys.same(keys.mac(key, header(seal)), seal["mac"]):
        return ("seal", f"{name} is broken: its MAC does not match its contents (seal edited)")
    try:
        ids = unpack_ids(seal["ids"])
    except (zlib.error, struct.error):
        return ("seal", f"{name} is broken: its event list cannot be read")
    if (
        len(ids) != seal["count"]
        or len(seal["tags"]) != seal["count"] * keys.TAG_BYTES
        or not ids
        or ids[0] != seal["first_event_id"]
        or ids[-1] != seal["last_event_id"]
        or list(ids) != sorted(set(ids))
        or not keys.same(events_hash(ids, seal["tags"]), seal["events_hash"])
    ):
        return ("seal", f"{name} is broken: its event list does not match its hash (seal edited)")
    return None


def unknown_key(name: str, made_with: str) -> str:
    current = keys.key_id(keys.seal_key())
    return (
        f"{name} was made with key id {made_with}, which is neither the configured "
        f"IAM_AUDIT_SEAL_KEY (key id {current}) nor one of IAM_AUDIT_SEAL_OLD_KEYS: "
        "a different key, not by itself evidence of tampering; verify with the key that made it"
    )
