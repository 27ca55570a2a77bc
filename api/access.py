"""Writes through the API, under delegation's rules for a narrower actor.

A token acts as an actor whose permissions are its account's *within the
token's scopes*. `token_write` opens the same access write as the services
(one lock, permissions read fresh, refusals audited) and hands back a
`Writer` holding that narrowed set, so the grant bound, rank and field
rights are checked against what the token may do; the service called inside
the block then checks them again against the whole account (the lock is
taken once: PostgreSQL advisory locks nest, SQLite's write lock is held).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from accounts.audit import Actor
from accounts.delegation import Writer, access_write
from api.permissions import token_resources


@contextmanager
def token_write(request, *, target=None, target_label: str = "") -> Iterator[Writer]:
    by = Actor.of(request)
    with access_write(by=by, target=target, target_label=target_label) as writer:
        yield Writer(by=writer.by, permissions=writer.permissions & token_resources(request))
