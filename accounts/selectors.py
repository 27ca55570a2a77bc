"""Reads about accounts. Case-insensitive lookups go through here only."""

from __future__ import annotations

from accounts.models import Group, User, normalize_email


def user_get_by_email(email: str) -> User | None:
    """The account for an address, whatever case it was typed in."""
    return User.objects.filter(email=normalize_email(email)).first()


def groups_by_names(names) -> list[Group]:
    """The groups with these exact names; LookupError names the unknown ones."""
    wanted = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    found = {g.name: g for g in Group.objects.filter(name__in=wanted)}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise LookupError(", ".join(missing))
    return [found[n] for n in wanted]
