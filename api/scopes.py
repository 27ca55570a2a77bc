"""Scopes: what a token may be used for, always inside what its account holds.

A token acts with its account's effective permissions (accounts.delegation)
*intersected with* the resources its scopes name, never more:

- `read`: every registered resource whose action only reads (view, export);
- `write`: every other registered resource (create, edit, block, delete, …);
- any registered resource by its name, e.g. `backoffice:users:view`, for the
  narrowest tokens;
- `introspect`: no resource at all; a client holding it may call the
  introspection endpoint (RFC 7662) as a resource server.

A client is created with the scopes it may ask for (its ceiling); a token
request may ask for fewer. Scopes only narrow: a root account's token with
`read` cannot write, and no scope makes an account's token reach a resource
the account does not hold. Delegation rules then apply to the narrowed set
(api.principal), so a `write`-only token cannot act on users who hold view rights.
"""

from __future__ import annotations

from functools import lru_cache

from django.utils.translation import gettext_noop

from accounts.resources import REGISTRY, split_resource

READ = "read"
WRITE = "write"
INTROSPECT = "introspect"
# Actions that only read, as the screens count them (backoffice.permissions).
READ_ACTIONS = frozenset({"view", "export"})

# English in the metadata; the consent page translates them (api.oauth.views).
DESCRIPTIONS = {
    READ: gettext_noop("Read users, groups, roles and the audit trail your account may see"),
    WRITE: gettext_noop("Change what your account may change (create, edit, block, …)"),
    INTROSPECT: gettext_noop("Introspect tokens (resource servers)"),
}


@lru_cache(maxsize=1)
def all_scopes() -> dict[str, str]:
    """Every scope there is, with what it means (for metadata and forms).
    One dict per process: read it, never change it."""
    scopes = dict(DESCRIPTIONS)
    scopes.update({resource: f"Only {resource}" for resource in REGISTRY})
    return scopes


def parse(text: str | list | tuple) -> list[str]:
    """A space-separated scope string (or a list) as a de-duplicated list."""
    words = text.split() if isinstance(text, str) else list(text)
    return list(dict.fromkeys(w for w in words if w))


def unknown(scopes) -> list[str]:
    known = all_scopes()
    return [s for s in scopes if s not in known]


@lru_cache(maxsize=256)
def _resources(scope_string: str) -> frozenset[str]:
    granted = set()
    for scope in scope_string.split():
        if scope == READ:
            granted.update(r for r in REGISTRY if split_resource(r)[2] in READ_ACTIONS)
        elif scope == WRITE:
            granted.update(r for r in REGISTRY if split_resource(r)[2] not in READ_ACTIONS)
        elif scope in REGISTRY:
            granted.add(scope)
    return frozenset(granted)


def resources_of(scopes) -> frozenset[str]:
    """The registered resources a set of scopes names (cached: a token's
    scope string is one of a handful)."""
    return _resources(" ".join(sorted(parse(scopes))))


class ScopesBackend:
    """The toolkit's scopes backend: a client may ask for the scopes it was
    created with; with none asked for, it gets them all but `introspect`
    (which is a client's capability, not a token's)."""

    def get_all_scopes(self):
        return all_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return list(all_scopes())
        return parse(application.scope)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return [READ]
        return [s for s in parse(application.scope) if s != INTROSPECT]
