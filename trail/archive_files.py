"""The archive's files, in one directory:

- `events-<seq>.jsonl.gz`: one seal's events, one canonical line each
  (trail.canonical.line), in id order; gzip with no timestamp, so writing a
  batch again gives the same bytes.
- `seal-<seq>.json`: that seal (its header, ids and tags in base64, MAC).
- `MANIFEST.json`: the SHA-256 of every file above, and a MAC over the list.

Every file is written to a temporary name, fsynced, renamed, and the
directory fsynced: a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from trail import keys
from trail.canonical import dumps
from trail.seals import HEADER, header

MANIFEST = "MANIFEST.json"
FORMAT = "iam-audit-archive/1"
NAMES = re.compile(r"^(events-\d{12}\.jsonl\.gz|seal-\d{12}\.json)$")


class ArchiveError(Exception):
    """The archive cannot be read as one (one line for the operator)."""


def events_name(seq: int) -> str:
    return f"events-{seq:012d}.jsonl.gz"


def seal_name(seq: int) -> str:
    return f"seal-{seq:012d}.json"


def write_atomic(directory: Path, name: str, data: bytes) -> None:
    temporary = directory / f".{name}.tmp"
    # Readable by the owner and its group only: the trail names people and addresses.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, directory / name)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def events_bytes(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)


def seal_bytes(seal: dict) -> bytes:
    body = json.loads(header(seal))
    body.update(
        ids=base64.b64encode(seal["ids"]).decode(),
        tags=base64.b64encode(seal["tags"]).decode(),
        mac=seal["mac"],
    )
    return dumps(body) + b"\n"


def seal_read(path: Path) -> dict:
    try:
        body = json.loads(path.read_bytes())
        seal = {name: body[name] for name in (*HEADER, "mac")}
        seal["ids"] = base64.b64decode(body["ids"], validate=True)
        seal["tags"] = base64.b64decode(body["tags"], validate=True)
        numbers = ("seq", "first_event_id", "last_event_id", "count")
        if not all(type(seal[name]) is int for name in numbers) or not all(
            isinstance(seal[name], str) for name in HEADER + ("mac",) if name not in numbers
        ):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{path.name} cannot be read as a seal ({type(exc).__name__})") from None
    return seal


def events_read(path: Path) -> Iterator[dict]:
    """The events of one file, streamed (a line at a time)."""
    try:
        with gzip.open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    values = json.loads(raw)
                except ValueError:
                    raise ArchiveError(f"{path.name} line {number} is not JSON") from None
                if not isinstance(values, dict):
                    raise ArchiveError(f"{path.name} line {number} is not an event")
                yield values
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{path.name} cannot be read ({type(exc).__name__})") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_mac(key: bytes, files: dict[str, str], key_id: str) -> str:
    return keys.mac(key, dumps({"format": FORMAT, "key_id": key_id, "files": files}))


def manifest_read(directory: Path) -> dict | None:
    """The manifest as stored ({"files", "key_id", "mac"}), None if absent."""
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_bytes())
        files = body["files"]
        if body.get("format") != FORMAT or not isinstance(files, dict):
            raise ValueError
        return {"files": files, "key_id": str(body["key_id"]), "mac": str(body["mac"])}
    except (OSError, ValueError, KeyError, TypeError):
        raise ArchiveError(f"{MANIFEST} cannot be read as a manifest") from None


def manifest_write(directory: Path, *, key: bytes, files: dict[str, str]) -> None:
    key_id = keys.key_id(key)
    files = dict(sorted(files.items()))
    body = {
        "format": FORMAT,
        "key_id": key_id,
        "files": files,
        "mac": manifest_mac(key, files, key_id),
    }
    write_atomic(directory, MANIFEST, json.dumps(body, indent=1, sort_keys=True).encode() + b"\n")
