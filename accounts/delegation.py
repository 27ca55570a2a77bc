"""Delegation: an admin can give only what they hold, and access can always
be repaired. This module is the access model's rulebook for writes; README
"Access model" says the same to operators.

Terms
- Effective permissions of a user: the registered resources
  (`accounts.resources.REGISTRY`) their rules allow and none denies, across
  all their groups. Decisions here are made on these sets, never on names.
- Scope of a role: every registered resource one of its rules matches, allow
  or deny. The scope of a group is the union of its roles' scopes.

Rules, for an actor holding P = account ∩ cap (`bound_of`): the account is
a user's effective permissions (nothing once blocked or deleted), or every
permission for the operator (the command line, the SSO ROLE_MAP:
`Actor.system()`) and for a machine principal without an account that has
a cap; the cap is `Actor.cap` (an API token's scopes: `Actor.capped`) and
`Actor.ceiling` (a SCIM client's --max-group: what a member of exactly those
groups holds, read at each write) and `Actor.cap_holder` (an API client's
secret holder: what they hold, read at each write). A capped operator is bound like an admin
holding its cap.
1. Grant bound: a group given to or taken from a user, a role given to or
   taken from a group, and a rule added to or removed from a role must have
   its scope within P. A group or role is edited or deleted only while its
   scope lies within P, before and after the change.
2. Rank: a user is edited, blocked, deleted, sent a reset, has MFA reset or
   an identity unlinked only while their *reach* lies within P: every
   resource their allow rules name, counting what a deny rule hides for now
   (lifting the deny would give it back). Changing a group's roles or a
   role's rules, which changes every member at once, needs the same of each
   member.
3. Field rights: each change needs its own resource (status: users:block;
   names, email, groups: users:edit), whatever door it comes through.
4. Root invariant: after every access write at least one active user still
   holds every resource of `MANAGE_ACCESS` (users, groups, roles), if one
   did before (a new install has nobody until its first admin). Nobody takes
   permissions away from themselves either (an accident only another admin
   could repair).

Why 1 is enough for "nobody gains what the writer does not hold": adding or
removing a group or role changes its members' permissions only inside its
scope, and a rule change only inside what the rule matches.

Every access write runs in `access_write()`: one transaction that takes one
lock first (a PostgreSQL advisory lock; SQLite transactions begin IMMEDIATE,
see settings), reads the actor's permissions fresh from the database, makes
the change and checks the invariant before it commits. Two concurrent writes
therefore run one after the other, and the second sees the first. A write
nested in another joins it (one lock, one Writer per actor, the invariant
and the self check at the outermost exit; an inner refusal refuses the
whole and is audited once).

The checks are `Writer`'s methods and live nowhere else: callers pass what
they touch (groups, roles, rules, a user) and never derive scopes or reach
themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from django.db import connection, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from accounts.audit import Actor, AuditAction, audit
from accounts.errors import AccessRefused, AccountError
from accounts.models import Group, Membership, Rule, User
from accounts.resources import MANAGE_ACCESS, REGISTRY, matching

# The key of the one advisory lock every access write takes (any fixed number).
LOCK_KEY = 7_411_201_2
ALL = frozenset(REGISTRY)
LOCKOUT = gettext_lazy(
    "This change would leave no active user able to manage users, groups and roles, "
    "so nobody could repair access. Nothing was changed."
)
LOCKOUT_LATER = gettext_lazy(
    "This change would leave only memberships that end able to manage users, groups "
    "and roles, so at their end nobody could repair access. Nothing was changed."
)
# What callers say they are doing (Writer.require/not_self: "You may not
# <doing>"), collected here for the translators; the refusal translates them.
DOINGS = (
    gettext_noop("block"),
    gettext_noop("block or unblock accounts"),
    gettext_noop("change groups"),
    gettext_noop("change names"),
    gettext_noop("change names, email or language"),
    gettext_noop("create API clients"),
    gettext_noop("create a blocked account"),
    gettext_noop("create accounts"),
    gettext_noop("create groups"),
    gettext_noop("create roles"),
    gettext_noop("delete"),
    gettext_noop("delete API clients"),
    gettext_noop("delete accounts"),
    gettext_noop("delete groups"),
    gettext_noop("delete roles"),
    gettext_noop("edit API clients"),
    gettext_noop("edit groups"),
    gettext_noop("edit roles"),
    gettext_noop("invite new accounts"),
    gettext_noop("replace API client secrets"),
    gettext_noop("reset two-factor authentication"),
    gettext_noop("send password resets"),
    gettext_noop("unlink identities"),
)
GroupRoles = Group.roles.through


def names(resources: Iterable[str], limit: int | None = None) -> str:
    """Resources named in a message people read: a screen whose every action
    is in the set is written once as `area:screen:*`; `limit` shortens."""
    by_screen = defaultdict(set)
    for resource in resources:
        by_screen[resource.rsplit(":", 1)[0]].add(resource)
    parts = []
    for screen, held in sorted(by_screen.items()):
        if held == matching(f"{screen}:*"):
            parts.append(f"{screen}:*")
        else:
            parts.extend(sorted(held))
    if limit is not None and len(parts) > limit:
        return ", ".join(parts[:limit]) + f" and {len(parts) - limit} more"
    return ", ".join(parts)


# --- permissions and scopes, read from the database ------------------------------


def permissions_of(rules: Iterable[tuple[str, str]]) -> frozenset[str]:
    """What (effect, pattern) rules give: allowed and not denied."""
    allowed, denied = set(), set()
    for effect, pattern in rules:
        (denied if effect == Rule.Effect.DENY else allowed).update(matching(pattern or ""))
    return frozenset(allowed - denied)


def scope_of(rules: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Every registered resource the (effect, pattern) rules touch."""
    return frozenset().union(*(matching(pattern or "") for _effect, pattern in rules))


def user_permissions(user_id) -> frozenset[str]:
    """A user's effective permissions, whatever their status: for a blocked
    user, what unblocking would give back. Only memberships that give rights
    now count (not ended; activated where the group is eligible-only)."""
    rows = Rule.objects.filter(
        Membership.effective_q("role__groups__memberships__"),
        role__groups__memberships__user_id=user_id,
    )
    return permissions_of(rows.values_list("effect", "pattern"))


def user_potential_permissions(user_id) -> frozenset[str]:
    """What a user would hold with every eligibility activated (memberships
    not ended): the MFA policy covers them as if they held it now, so they
    have a second factor before they activate."""
    rows = Rule.objects.filter(
        Membership.current_q("role__groups__memberships__"),
        role__groups__memberships__user_id=user_id,
    )
    return permissions_of(rows.values_list("effect", "pattern"))


def groups_permissions(names: Iterable[str]) -> frozenset[str]:
    """What a member of exactly these groups would hold (a SCIM client's
    ceiling, Actor.ceiling, as a cap); a name no group has gives nothing."""
    rows = Rule.objects.filter(role__groups__name__in=list(names))
    return permissions_of(rows.values_list("effect", "pattern"))


def user_reach(user_id) -> frozenset[str]:
    """Every resource a user's allow rules name, denied or not: what the
    user holds, or would hold once a deny is lifted (rank looks at this).
    An eligibility counts as held: its member can activate it whenever they
    like, so only someone who could give it may change their account. An
    ended membership does not."""
    rows = Rule.objects.filter(
        Membership.current_q("role__groups__memberships__"),
        role__groups__memberships__user_id=user_id,
        effect=Rule.Effect.ALLOW,
    )
    return scope_of(rows.values_list("effect", "pattern"))


def rank_beyond(held: frozenset[str], user) -> frozenset[str]:
    """The rank rule: what `user` (a User or its pk) reaches beyond `held`;
    empty when whoever holds `held` outranks them. Writes ask it through
    `Writer.outranks`; a screen asks it with `held_by(request.user)` to show
    an account read-only."""
    if held >= ALL:
        return frozenset()
    return user_reach(getattr(user, "pk", user)) - held


def group_beyond(held: frozenset[str], group) -> frozenset[str]:
    """The grant bound, asked by a screen: what `group` reaches beyond
    `held` (empty: whoever holds `held` may edit it). Writes ask
    `Writer.within_groups`."""
    return group_scopes([group.pk]).get(group.pk, frozenset()) - held


def groups_reaching(resource: str) -> list[int]:
    """Ids of the groups whose allow rules name `resource` (a registered
    one): the groups an access review "of every group whose rights reach a
    resource" covers (reviews.services). A deny elsewhere does not hide a
    group: its members reach the resource once the deny is lifted."""
    rows = GroupRoles.objects.filter(role__rules__effect=Rule.Effect.ALLOW)
    found = set()
    for group_id, pattern in rows.values_list("group_id", "role__rules__pattern"):
        if resource in matching(pattern):
            found.add(group_id)
    return sorted(found)


def rules_beyond(held: frozenset[str], rules: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The grant bound for a role's rules ((effect, pattern) pairs), asked
    by a screen; writes ask `Writer.within_roles` / `within_rules`."""
    return scope_of(rules) - held


def _groups_reaching_beyond(held: frozenset[str]) -> list[int]:
    """Groups whose allow rules name something outside `held`: a member of
    one of them is above whoever holds `held` (a user's reach is the union
    of their groups')."""
    reach = defaultdict(set)
    rows = GroupRoles.objects.filter(role__rules__effect=Rule.Effect.ALLOW)
    for group_id, pattern in rows.values_list("group_id", "role__rules__pattern"):
        reach[group_id] |= matching(pattern)
    return [pk for pk, names in reach.items() if not names <= held]


def role_scopes(role_ids=None) -> dict[int, frozenset[str]]:
    """Scope of each role (a role without rules is absent: its scope is empty)."""
    rows = Rule.objects.all() if role_ids is None else Rule.objects.filter(role_id__in=role_ids)
    scopes = defaultdict(set)
    for role_id, pattern in rows.values_list("role_id", "pattern"):
        scopes[role_id] |= matching(pattern)
    return {pk: frozenset(s) for pk, s in scopes.items()}


def group_scopes(group_ids=None) -> dict[int, frozenset[str]]:
    """Scope of each group: the union of its roles' scopes."""
    rows = GroupRoles.objects.all()
    if group_ids is not None:
        rows = rows.filter(group_id__in=group_ids)
    scopes = defaultdict(set)
    for group_id, pattern in rows.values_list("group_id", "role__rules__pattern"):
        scopes[group_id] |= matching(pattern or "")
    return {pk: frozenset(s) for pk, s in scopes.items()}


# --- the root invariant ------------------------------------------------------------


def managers_remain() -> bool:
    """At least one active user holds every resource of MANAGE_ACCESS
    (`managers_level` above NO_MANAGER)."""
    return managers_level() > NO_MANAGER


# What `managers_level` answers: nobody manages access; only people whose
# management ends at a set time (a time-bound membership); somebody for good.
NO_MANAGER, MANAGERS_UNTIL, MANAGERS_LASTING = 0, 1, 2


def managers_level() -> int:
    """Whether active users hold every resource of MANAGE_ACCESS, and
    whether one of them does through memberships without an end: a write
    must lower neither (after the end of the last time-bound manager's
    membership nobody could repair access but the command line).

    Two queries whatever the number of users: the groups' rules, then the
    memberships of a group that grants it all (of users in none that denies
    any of it), a lasting one first. Only when no single group grants it
    all lastingly does it walk the members of the groups that grant part of
    it (a rare set-up).

    Memberships that have not ended count, eligibilities included: an
    eligible member reaches management by activating (README "Access
    model" says how the last one does); an ended one does not."""
    allow, deny = defaultdict(set), defaultdict(set)
    rows = GroupRoles.objects.filter(role__rules__isnull=False)
    for group_id, effect, pattern in rows.values_list(
        "group_id", "role__rules__effect", "role__rules__pattern"
    ):
        (deny if effect == Rule.Effect.DENY else allow)[group_id] |= (
            matching(pattern) & MANAGE_ACCESS
        )
    poisoned = {pk for pk, denied in deny.items() if denied}
    current = Membership.objects.current()
    candidates = User.objects.people().filter(status=User.Status.ACTIVE)
    if poisoned:
        candidates = candidates.exclude(pk__in=current.filter(group__in=poisoned).values("user_id"))
    level = NO_MANAGER
    full = [pk for pk, allowed in allow.items() if allowed >= MANAGE_ACCESS and pk not in poisoned]
    if full:
        first = list(
            current.filter(user__in=candidates, group__in=full)
            .order_by(F("ends_at").asc(nulls_first=True))
            .values_list("ends_at", flat=True)[:1]
        )
        if first:
            if first[0] is None:
                return MANAGERS_LASTING
            level = MANAGERS_UNTIL
    partial = [pk for pk, allowed in allow.items() if allowed and pk not in poisoned]
    if not partial:
        return level
    rows = (
        current.filter(user__in=candidates, group__in=partial)
        .order_by("user_id")
        .values_list("user_id", "group_id", "ends_at")
    )
    for _user, memberships in groupby(rows.iterator(), key=itemgetter(0)):
        memberships = list(memberships)
        if set().union(*(allow[g] for _u, g, ends in memberships if ends is None)) >= MANAGE_ACCESS:
            return MANAGERS_LASTING
        if set().union(*(allow[g] for _u, g, _e in memberships)) >= MANAGE_ACCESS:
            level = MANAGERS_UNTIL
    return level


# --- four eyes -------------------------------------------------------------------


def four_eyes_split(*, need_open: bool = False) -> tuple[frozenset[str], frozenset[str]]:
    """(protected, open): the permissions only guarded groups give (a
    second person approves each membership, or each activation), and those
    some other group gives. One query. A person's write
    must not let an open group give a protected permission: otherwise one
    admin could make someone root without the second pair of eyes, by
    giving root's role to a new group, or root's rules to a new role, or by
    switching the approval off. With no guarded group, `open` is only
    computed when `need_open` asks for it (the check after a write that
    may have switched the last guard off)."""
    rows = GroupRoles.objects.filter(role__rules__isnull=False).values_list(
        "group_id",
        "group__grant_approval",
        "group__eligible_only",
        "group__activation_approval",
        "role__rules__effect",
        "role__rules__pattern",
    )
    by_group, guarded = defaultdict(list), set()
    for group_id, grant, eligible, activation, effect, pattern in rows:
        by_group[group_id].append((effect, pattern))
        # A second person approves each membership, or each activation.
        if grant or (eligible and activation):
            guarded.add(group_id)
    if not guarded and not need_open:
        return frozenset(), frozenset()
    given = {pk: permissions_of(rules) for pk, rules in by_group.items()}
    open_ = frozenset().union(*(p for pk, p in given.items() if pk not in guarded))
    closed = frozenset().union(*(p for pk, p in given.items() if pk in guarded))
    return closed - open_, open_


def _four_eyes_check(protected: frozenset[str]) -> None:
    if not protected:
        return
    _protected, open_now = four_eyes_split(need_open=True)
    leaked = protected & open_now
    if leaked:
        raise AccessRefused(
            _(
                "This change would let a group without four-eyes approval give "
                "%(permissions)s, which only groups that need a second administrator's "
                "approval give. Nothing was changed."
            )
            % {"permissions": names(leaked, limit=6)},
            reason="four_eyes",
            resources=leaked,
        )


# --- the writer --------------------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """The actor of one access write and their permissions (account ∩ cap),
    read inside its lock. The delegation rules are its methods, and nowhere
    else: each check raises AccessRefused naming what is beyond the actor;
    `beyond_rank` and `may` answer without raising, for a caller that leaves
    one item out and goes on."""

    by: Actor
    permissions: frozenset[str]

    @property
    def actor(self):
        """The acting user (None for the operator)."""
        return self.by.user

    @property
    def unbounded(self) -> bool:
        """Holds every registered resource (the operator, root): nobody is above."""
        return self.permissions >= ALL

    def may(self, resource: str) -> bool:
        return resource in self.permissions

    def require(self, resource: str, doing: str) -> None:
        """Field and action rights: `doing` says what, for the message."""
        if resource not in self.permissions:
            raise AccessRefused(
                _("You may not %(doing)s: that needs %(resource)s, which you do not hold.")
                % {"doing": _(doing), "resource": resource},
                reason="right",
                resources=[resource],
            )

    def within(self, scope: frozenset[str], what: str) -> None:
        """Grant bound: `what` ("give or take away group x") must lie within."""
        beyond = scope - self.permissions
        if beyond:
            raise AccessRefused(
                _("You cannot %(what)s: it reaches %(permissions)s, which you do not hold.")
                % {"what": _(what), "permissions": names(beyond)},
                reason="grant_bound",
                resources=beyond,
            )

    def within_groups(self, groups, what: str) -> None:
        """Grant bound on each group given, taken away or deleted: `what` is
        a message with %(name)s ("give group %(name)s"), one query in all."""
        groups = sorted(groups, key=lambda g: g.name)
        scopes = group_scopes([g.pk for g in groups]) if groups else {}
        for group in groups:
            self.within(scopes.get(group.pk, frozenset()), _(what) % {"name": group.name})

    def groups_beyond(self, groups) -> dict:
        """{group: what lies beyond} for the groups not within the actor's
        permissions (a sync that leaves those out and audits them)."""
        groups = list(groups)
        scopes = group_scopes([g.pk for g in groups]) if groups else {}
        found = {g: scopes.get(g.pk, frozenset()) - self.permissions for g in groups}
        return {g: rest for g, rest in found.items() if rest}

    def within_roles(self, roles, what: str) -> None:
        """Grant bound on roles given, taken away or deleted together: their
        joint scope must lie within (`what` names them for the message)."""
        roles = list(roles)
        scopes = role_scopes([r.pk for r in roles]) if roles else {}
        self.within(frozenset().union(*(scopes.get(r.pk, frozenset()) for r in roles)), what)

    def within_rules(self, rules, what: str) -> None:
        """Grant bound on (effect, pattern) rules written or removed."""
        self.within(scope_of(rules), what)

    def beyond_rank(self, user) -> frozenset[str]:
        """What `user` (a User or its pk) reaches that the actor does not
        hold: empty when the actor outranks them."""
        return rank_beyond(self.permissions, user)

    def outranks(self, user: User) -> None:
        """Rank: `user` reaches nothing the actor does not hold."""
        beyond = self.beyond_rank(user)
        if beyond:
            raise AccessRefused(
                _(
                    "%(email)s holds permissions you do not (%(permissions)s); "
                    "you cannot change this account."
                )
                % {"email": user.email, "permissions": names(beyond)},
                reason="rank",
                resources=beyond,
            )

    def outranks_members(self, group_ids, what: str) -> None:
        """Rank over everyone a group or role change reaches at once: one
        query, whatever the number of members."""
        if self.unbounded or not group_ids:
            return
        high = _groups_reaching_beyond(self.permissions)
        above = (
            Membership.objects.current()
            .filter(
                Membership.current_q("user__memberships__"),
                group_id__in=group_ids,
                user__memberships__group_id__in=high,
            )
            .values_list("user__email", flat=True)
            .first()
        )
        if above is not None:
            raise AccessRefused(
                _(
                    "You cannot %(what)s: it would change %(email)s, "
                    "who holds permissions you do not."
                )
                % {"what": _(what), "email": above},
                reason="rank",
            )

    def not_self(self, user: User, doing: str) -> None:
        if self.actor is not None and self.actor.pk == user.pk:
            raise AccountError(
                _("You cannot %(doing)s your own account.") % {"doing": _(doing)}, code="self"
            )


def _lock() -> None:
    """Serialise access writes. SQLite needs nothing here: its transactions
    begin IMMEDIATE (settings), taking the database's one write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def bound_of(by: Actor) -> tuple[frozenset[str], bool]:
    """An actor's permissions now, account ∩ cap, and whether its account
    still exists. Read under the access lock. The account: the operator's is
    every permission; a person's (or service account's) their effective
    permissions while active, nothing once blocked or deleted; a principal
    without an account (a SCIM client, an identity provider) holds the
    operator's trust within its cap, and nothing without one."""
    exists = True
    if by.operator:
        base = ALL
    elif by.user is not None:
        status = User.objects.filter(pk=by.user.pk).values_list("status", flat=True).first()
        exists = status is not None
        # Blocked or deleted since the request began: nothing.
        base = user_permissions(by.user.pk) if status == User.Status.ACTIVE else frozenset()
    else:
        base = ALL if by.bounded_by_cap else frozenset()  # nobody logged in writes nothing
    if by.ceiling:
        base &= groups_permissions(by.ceiling)
    if by.cap is not None:
        base &= by.cap
    if by.cap_holder is not None:
        # An API client's secret holder, read under the lock like the account.
        held = User.objects.filter(pk=by.cap_holder).values_list("status", flat=True).first()
        base &= user_permissions(by.cap_holder) if held == User.Status.ACTIVE else frozenset()
    return frozenset(base), exists


class _Write:
    """The outermost access write on this connection: what its nested
    writes join (its Writers by actor, the checks left for its exit, an
    inner refusal that must refuse the whole)."""

    def __init__(self):
        self.writers: dict[tuple, tuple[Writer, bool]] = {}
        self.refused: AccessRefused | None = None

    def writer(self, by: Actor) -> tuple[Writer, bool]:
        key = by.key()
        if key not in self.writers:
            permissions, exists = bound_of(by)
            self.writers[key] = (Writer(by=by, permissions=permissions), exists)
        return self.writers[key]

    def check_exit(self) -> None:
        """Nobody took permissions away from themselves (an accident only
        another admin could repair): for each person who wrote, at the end."""
        for writer, exists in self.writers.values():
            user = writer.by.user
            if user is None or not exists or not writer.permissions or writer.by.operator:
                continue
            # What they can activate again themselves is not lost (a switch
            # of their own group to eligible-only, ending an activation).
            lost = writer.permissions - user_potential_permissions(user.pk)
            if lost:
                raise AccountError(
                    _(
                        "You cannot take permissions away from yourself (%(permissions)s); "
                        "ask another administrator."
                    )
                    % {"permissions": names(lost)},
                    code="self",
                )


_ATTR = "iam_access_write"


def _about(refused: AccessRefused, *, by: Actor, exists: bool, target, target_label: str):
    """What the refusal's audit event names: the innermost write's actor and
    target (set once, where it was raised)."""
    if getattr(refused, "audited_as", None) is None:
        refused.audited_as = {
            "by": by if exists or by.user is None else by.gone(),
            "target_type": target._meta.model_name if target is not None else "",
            "target_id": getattr(target, "pk", "") or "",
            "target_label": str(target) if target is not None else target_label,
        }


@contextmanager
def access_write(
    *, by: Actor, target=None, target_label: str = "", lowers_self: bool = False
) -> Iterator[Writer]:
    """One access write: lock, fresh permissions, the caller's change, the
    invariant; all or nothing. `lowers_self`: the actor gives up their own
    rights on purpose (ending their own activation), so the self-demotion
    check does not apply. A refusal is audited after the rollback, with
    the actor, the target and the resources it was about, and re-raised.

    A write inside another one (a SCIM request calling the account
    services) joins it: the same Writer for the same actor, no second lock,
    the root invariant and the self-demotion check once, at the outermost
    exit. It runs in a savepoint (a caller may handle a plain AccountError
    and go on), but an AccessRefused passing through it refuses the whole
    write, even if a caller swallows it, and is audited once."""
    outer: _Write | None = getattr(connection, _ATTR, None)
    if outer is not None:
        writer, exists = outer.writer(by)
        try:
            with transaction.atomic():
                yield writer
        except AccessRefused as refused:
            _about(refused, by=by, exists=exists, target=target, target_label=target_label)
            outer.refused = outer.refused or refused
            raise
        return
    state = _Write()
    writer, exists = None, True
    try:
        with transaction.atomic():
            _lock()
            setattr(connection, _ATTR, state)
            writer, exists = state.writer(by)
            # A store that has no manager yet (a new install before its first
            # admin) must still accept writes; one that has must keep one.
            had_managers = managers_level()
            # Four eyes bind people and their clients; the operator (the
            # command line, the configuration) is the one who set them up.
            protected = frozenset() if by.operator else four_eyes_split()[0]
            yield writer
            if state.refused is not None:
                raise state.refused  # refused inside, swallowed by a caller
            managers = managers_level() if had_managers else NO_MANAGER
            if had_managers and managers < had_managers:
                raise AccessRefused(
                    str(LOCKOUT if managers == NO_MANAGER else LOCKOUT_LATER),
                    reason="last_manager",
                    resources=(),
                    action=AuditAction.ACCESS_LOCKOUT_REFUSED,
                )
            _four_eyes_check(protected)
            if not lowers_self:
                state.check_exit()
    except AccessRefused as refused:
        setattr(connection, _ATTR, None)
        if writer is None:
            raise
        _about(refused, by=by, exists=exists, target=target, target_label=target_label)
        audit(
            refused.action or AuditAction.ACCESS_GRANT_REFUSED,
            **refused.audited_as,
            success=False,
            details={"reason": refused.reason, "resources": refused.resources},
        )
        raise
    finally:
        setattr(connection, _ATTR, None)


# --- what the screens offer ------------------------------------------------------


def beyond(held: frozenset[str], scopes: dict) -> dict[int, frozenset[str]]:
    """For each id in `scopes` whose scope is not within `held`: what lies
    beyond. The pickers disable those options and say why."""
    return {pk: scope - held for pk, scope in scopes.items() if not scope <= held}


def locked_groups(held: frozenset[str]) -> dict[int, frozenset[str]]:
    return beyond(held, group_scopes())


def locked_roles(held: frozenset[str]) -> dict[int, frozenset[str]]:
    return beyond(held, role_scopes())


def held_by(user) -> frozenset[str]:
    """A logged-in person's effective permissions, from the cached rules."""
    from accounts.access import permissions

    return permissions(user)
