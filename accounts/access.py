"""The access check: may this user open this resource?

`can(user, resource)` is the one place that decides. A user's rules are
compiled once into tuples and kept in the Django cache (shared by all app
servers when `CACHE_URL` is Redis), so a warm check costs no database query.
Any change to groups, roles, rules or memberships bumps a generation number
stored in the cache; compiled rules of older generations are never read again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from accounts.resources import REGISTRY, pattern_matches, split_resource, validate_resource

GENERATION_KEY = "acl:generation"
RULES_TTL = 60 * 60
# Compiled rules this process has already read, by the same key. The key holds
# the generation, which is read from the shared cache on every request, so an
# entry of an older generation is never read again: the process copy saves a
# cache round trip and cannot be stale.
_local: dict[str, CompiledRules] = {}
LOCAL_MAX = 4096


@dataclass(frozen=True)
class CompiledRules:
    allow: tuple[tuple[str, str, str], ...] = ()
    deny: tuple[tuple[str, str, str], ...] = ()

    def permits(self, resource: str) -> bool:
        parts = validate_resource(resource)
        if any(pattern_matches(p, parts) for p in self.deny):
            return False
        return any(pattern_matches(p, parts) for p in self.allow)


def compile_rules(rules) -> CompiledRules:
    """`rules` is an iterable of (effect, pattern); malformed ones are skipped
    (they cannot be saved through forms, but may exist from raw SQL)."""
    allow, deny = set(), set()
    for effect, pattern in rules:
        try:
            parts = split_resource(pattern)
        except ValueError:
            continue
        (deny if effect == "deny" else allow).add(parts)
    return CompiledRules(allow=tuple(sorted(allow)), deny=tuple(sorted(deny)))


def _generation() -> str:
    gen = cache.get(GENERATION_KEY)
    if gen is None:
        gen = uuid.uuid4().hex
        if not cache.add(GENERATION_KEY, gen, timeout=None):
            gen = cache.get(GENERATION_KEY, gen)
    return gen


def invalidate_all() -> None:
    """Forget every compiled rule set; next requests recompile."""
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)


def invalidate_now_and_on_commit() -> None:
    """For a write inside a transaction: forget now (this transaction sees its
    own change) and again at commit (a concurrent request may have cached the
    old rules between the two)."""
    invalidate_all()
    transaction.on_commit(invalidate_all)


def _load_rules(user_id: int) -> CompiledRules:
    from accounts.models import Rule

    rows = Rule.objects.filter(role__groups__memberships__user_id=user_id).values_list(
        "effect", "pattern"
    )
    return compile_rules(rows)


def rules_for(user) -> CompiledRules:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return CompiledRules()
    memo = getattr(user, "_iam_rules", None)
    if memo is not None:
        return memo
    # The generation read with this request's session, if it came with it
    # (accounts.middleware.AuthenticationMiddleware).
    generation = current_generation(user)
    key = f"acl:rules:{generation}:{user.pk}"
    compiled = _local.get(key)
    if compiled is None:
        compiled = cache.get(key)
        if compiled is None:
            compiled = _load_rules(user.pk)
            cache.set(key, compiled, timeout=RULES_TTL)
        if len(_local) >= LOCAL_MAX:
            _local.clear()
        _local[key] = compiled
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


def current_generation(user) -> str:
    """The generation of the access model this request sees: any change to
    groups, roles, rules or memberships makes a new one."""
    return getattr(user, "_iam_generation", None) or _generation()
