"""The access check: may this user open this resource?

`can(user, resource)` is the one place that decides a request. A user's rules
are compiled once into tuples and kept in this process, keyed by the user's
`access_stamp`. The stamp is read with the user on every request (the one
query a page makes anyway), and every write that may change what someone may
do gives the users it touches a new stamp (`changed`, called explicitly by
the services, inside their transaction). So a warm check costs no query and
no cache round trip, and a change applies on the affected users' next
request on every app server.

Time-bound memberships and activations (accounts.privileged) end without a
write: the compiled rules carry `until`, the earliest end among the
memberships they came from, and a check at or after it compiles again. So a
warm check still costs no query while nothing has ended, and the rights are
gone on the first request after the end, whether or not the worker has
removed the membership yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.resources import REGISTRY, pattern_matches, split_resource, validate_resource

# Compiled rules by (user id, access stamp). An entry of an older stamp is
# never read again (the stamp moved on); the size bound drops them all now
# and then.
_compiled: dict[tuple[int, int], CompiledRules] = {}
LOCAL_MAX = 4096


@dataclass(frozen=True)
class CompiledRules:
    allow: tuple[tuple[str, str, str], ...] = ()
    deny: tuple[tuple[str, str, str], ...] = ()
    # The earliest end of a membership these rules came from (None: none ends).
    until: datetime | None = None

    def ended(self, now: datetime) -> bool:
        return self.until is not None and now >= self.until

    def permits(self, resource: str) -> bool:
        parts = validate_resource(resource)
        if any(pattern_matches(p, parts) for p in self.deny):
            return False
        return any(pattern_matches(p, parts) for p in self.allow)


def compile_rules(rules, until: datetime | None = None) -> CompiledRules:
    """`rules` is an iterable of (effect, pattern); malformed ones are skipped
    (they cannot be saved through forms, but may exist from raw SQL)."""
    allow, deny = set(), set()
    for effect, pattern in rules:
        try:
            parts = split_resource(pattern)
        except ValueError:
            continue
        (deny if effect == "deny" else allow).add(parts)
    return CompiledRules(allow=tuple(sorted(allow)), deny=tuple(sorted(deny)), until=until)


def _load_rules(user_id: int, now: datetime) -> CompiledRules:
    """One query: the user's memberships that give rights now, with their
    ends and their groups' rules."""
    from accounts.models import Membership

    rows = (
        Membership.objects.effective(now)
        .filter(user_id=user_id)
        .values_list(
            "ends_at",
            "active_until",
            "group__eligible_only",
            "group__roles__rules__effect",
            "group__roles__rules__pattern",
        )
    )
    rules, ends = [], set()
    for ends_at, active_until, eligible_only, effect, pattern in rows:
        ends.add(ends_at)
        if eligible_only:
            ends.add(active_until)
        if pattern is not None:
            rules.append((effect, pattern))
    ends.discard(None)
    return compile_rules(rules, until=min(ends) if ends else None)


def rules_for(user) -> CompiledRules:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return CompiledRules()
    memo = getattr(user, "_iam_rules", None)
    if memo is not None:
        return memo
    key = (user.pk, user.access_stamp)
    compiled = _compiled.get(key)
    now = timezone.now()
    if compiled is None or compiled.ended(now):
        compiled = _load_rules(user.pk, now)
        if len(_compiled) >= LOCAL_MAX:
            _compiled.clear()
        _compiled[key] = compiled
    user._iam_rules = compiled
    return compiled


def can(user, resource: str) -> bool:
    """True when some rule of the user's roles allows `resource` and none denies it."""
    return rules_for(user).permits(resource)


def permissions(user) -> frozenset[str]:
    """The user's effective permissions (accounts.delegation), from the same
    compiled rules as `can`: what the screens offer them to give."""
    rules = rules_for(user)
    return frozenset(r for r in REGISTRY if rules.permits(r))


def changed(users) -> int:
    """The users of this queryset may now do something else: give them a new
    stamp (one UPDATE, in the caller's transaction). Returns how many."""
    from accounts.models import new_access_stamp

    return users.update(access_stamp=new_access_stamp())


def forget_compiled() -> None:
    """Drop this process's compiled rules (tests that reuse primary keys)."""
    _compiled.clear()
