"""Who a validated SSO identity is here: links, the two strategies, role mapping.

A first login is linked to an existing account only when nobody but the
person the provider vouches for can hold it:
- an account with no local credential (no usable password, no
  authenticator) is linked at once (proof `provider_vouched`), a new one
  too (`new_account`);
- an account with any local credential is not linked yet: the link (provider,
  issuer, subject, address, account, mapped group names; never a token)
  waits in this browser's session (sso.views, 10 minutes) until the person proves
  control (its own password, then its second factor in the usual MFA step:
  `password`, `password+mfa`) or links by removing every local credential
  and ending the account's sessions and tokens (`credentials_removed`).
A password someone else set (an admin's initial password, createuser's) is
no proof, nor one chosen before the account's address changed:
`User.password_proven_for`.

The groups the provider's roles map to (ROLE_MAP) are applied when the login
completes, after its MFA step (sso.stages), never before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import access, extensions
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write, managers_level
from accounts.models import Group, Membership, User, normalize_email
from accounts.selectors import user_get_by_email, user_local_credentials
from accounts.services import AccountError, privileged, user_create
from accounts.services.emails import email_change_void
from accounts.services.sessions import user_sessions_end
from sso.errors import printable
from sso.models import Identity

logger = logging.getLogger("iam.sso")

LINK_TTL = 10 * 60  # seconds a pending link waits for its proof


@dataclass(frozen=True)
class SsoLogin:
    """What an SSO callback found: the account, the group names the
    provider's roles map to now, and, for a first login onto an account
    with local credentials, the link that waits for proof (not made yet)."""

    user: User
    groups: list[str] = field(default_factory=list)
    pending: dict | None = None


def resolve_login(*, by: Actor, provider, claims: dict) -> SsoLogin:
    """The account this identity logs in as, creating or linking it when the
    strategy allows and nobody else can hold it; raises SSOError (via
    provider.fail) otherwise. Changes no group: `login_completed` does,
    after the MFA step. `by` is the operator's configuration acting during
    the login's request (Actor.system)."""
    issuer, subject = _issuer_and_subject(provider, claims)
    groups = mapped_group_names(provider, claims)
    for attempt in range(2):
        try:
            # An access write (it may create an account): the access lock
            # first, the operator's configuration as the actor.
            with access_write(by=by):
                identity = (
                    Identity.objects.select_related("user")
                    .filter(provider=provider.id, issuer=issuer, subject=subject)
                    .first()
                )
                pending = None
                if identity is None:
                    user, identity, pending = _first_login(by=by, provider=provider, claims=claims)
                else:
                    user = identity.user
                if not user.is_active:
                    raise provider.fail(
                        gettext_noop("your account is blocked. Ask an administrator."), "blocked"
                    )
                if pending is not None:
                    return SsoLogin(user=user, groups=groups, pending=pending)
                identity.last_login_at = timezone.now()
                profile = provider.profile(claims)
                if profile.email_vouched:
                    identity.email = profile.email
                identity.save(update_fields=["last_login_at", "email"])
                return SsoLogin(user=user, groups=groups)
        except IntegrityError:
            # Another first login of the same identity (or address) won the
            # race: the link or account now exists; look again.
            logger.info("sso %s: concurrent first login (attempt %d)", provider.id, attempt + 1)
    raise provider.fail(
        gettext_noop("the account could not be set up. Please try again."), "provision_failed"
    )


def resolve_user(*, by: Actor, provider, claims: dict) -> User:
    """The account of `resolve_login` (linked or waiting for proof)."""
    return resolve_login(by=by, provider=provider, claims=claims).user


def mapped_group_names(provider, claims: dict) -> list[str]:
    """The groups ROLE_MAP gives for the roles the provider asserts now."""
    return sorted({g for role in provider.roles(claims) for g in provider.role_map.get(role, [])})


def password_proves_link(user: User) -> bool:
    """Whether the account's password can prove an SSO link: usable, and
    chosen through a link mailed to the account's current address (not an
    admin's initial one, not one chosen before the address changed)."""
    proven_for = user.password_proven_for
    return (
        user.has_usable_password()
        and bool(proven_for)
        and normalize_email(proven_for) == normalize_email(user.email)
    )


def _issuer_and_subject(provider, claims: dict) -> tuple[str, str]:
    issuer, subject = claims["iss"], claims["sub"]
    if not isinstance(issuer, str) or "\x00" in issuer + subject or len(subject) > 255:
        raise provider.fail(gettext_noop("the provider sent an unusable subject."), "bad_claim:sub")
    return issuer, subject


def reauthenticated_user(*, request, provider, claims: dict, user_id) -> User:
    """The logged-in user, who has just logged in again at the provider.

    Only the identity linked to this very user counts: someone else's login
    at the provider (a colleague's session on a shared computer) neither
    re-authenticates this user nor switches the session to theirs. No first
    login here, so no matching by email and no provisioning."""
    user = request.user
    if not user.is_authenticated or user.pk != user_id:
        raise provider.fail(
            gettext_noop("you are no longer logged in here. Please log in again."),
            "reauth_session_changed",
        )
    issuer, subject = _issuer_and_subject(provider, claims)
    identity = Identity.objects.filter(provider=provider.id, issuer=issuer, subject=subject).first()
    if identity is None or identity.user_id != user.pk:
        raise provider.fail(
            gettext_noop(
                "you logged in at %(name)s as someone else. Log in there as yourself to confirm."
            ),
            "reauth_wrong_user",
            params={"name": provider.name},
        )
    if not user.is_active:
        raise provider.fail(
            gettext_noop("your account is blocked. Ask an administrator."), "blocked"
        )
    by = Actor.system(request=request)
    with access_write(by=by):
        identity.last_login_at = timezone.now()
        identity.save(update_fields=["last_login_at"])
        # The fresh token's roles apply before the interrupted action runs.
        sync_mapped_groups(by=by, provider=provider, user=user, claims=claims)
        audit(
            AuditAction.SSO_REAUTHENTICATED,
            by=by.as_user(user),
            target=user,
            details={"provider": provider.id},
        )
    return user


def linked_providers(user) -> list:
    """The configured providers this user has an identity with, in configuration order."""
    from sso.registry import providers

    linked = set(user.identities.values_list("provider", flat=True))
    return [p for pid, p in providers().items() if pid in linked]


def _first_login(*, by: Actor, provider, claims: dict) -> tuple[User, Identity | None, dict | None]:
    """A first login: (account, its new link, None), or (account, None, the
    pending link) when the account holds local credentials and proof must
    come first."""
    profile = provider.profile(claims)
    if not profile.email:
        raise provider.fail(
            gettext_noop("the provider did not tell us your email address."), "no_email"
        )
    if not profile.email_vouched:
        # A first login matches or creates an account by address, so an
        # address the provider does not stand behind could take over anyone's.
        raise provider.fail(
            gettext_noop("the provider does not vouch for your email address (not verified)."),
            f"email_not_verified:{profile.unvouched_why}",
        )
    user = user_get_by_email(profile.email)
    proof = "provider_vouched"
    if user is None:
        if provider.strategy != "auto-provision":
            raise provider.fail(
                gettext_noop(
                    "there is no Back Office account for %(email)s. Ask an administrator to "
                    "create one."
                ),
                "no_account",
                params={"email": profile.email},
            )
        user = _provision(by=by, provider=provider, profile=profile)
        proof = "new_account"
    elif user.is_service:
        # An API client's service account never logs in, by SSO either.
        raise provider.fail(
            gettext_noop("%(email)s is a service account: it never logs in."),
            "service_account",
            params={"email": profile.email},
        )
    elif user.identities.filter(provider=provider.id).exists():
        # The account is bound to another subject of this provider.
        raise provider.fail(
            gettext_noop("the account %(email)s is linked to another %(name)s identity."),
            "linked_elsewhere",
            params={"email": profile.email, "name": provider.name},
        )
    link = {
        "provider": provider.id,
        "issuer": claims["iss"],
        "subject": claims["sub"],
        "email": profile.email,
        # How the address was vouched for (email_verified, trust_email, entra).
        "vouched_by": profile.vouched_by,
        "extras": provider.link_extras(claims),
    }
    if proof == "provider_vouched" and user_local_credentials(user):
        # Someone may hold this account's password or second factor (an
        # address taken by an admin, an initial password they set): the
        # provider vouches for the person, not for whoever holds those.
        return user, None, {**link, "user": user.pk, "at": int(time.time())}
    return user, _link(by=by, user=user, link=link, proof=proof), None


def _link(
    *, by: Actor, user: User, link: dict, proof: str, details: dict | None = None
) -> Identity:
    """Make the link (inside the caller's access write) and audit how it was proven."""
    identity = Identity.objects.create(
        user=user,
        provider=link["provider"],
        issuer=link["issuer"],
        subject=link["subject"],
        email=link["email"],
        last_login_at=timezone.now(),
        **link.get("extras", {}),
    )
    audit(
        AuditAction.SSO_LINKED,
        by=by.as_user(user),
        target=user,
        details={
            "provider": link["provider"],
            "subject": printable(link["subject"], 255),
            "proof": proof,
            "email_vouched_by": link.get("vouched_by", ""),
            **(details or {}),
        },
    )
    return identity


def pending_link_valid(pending) -> bool:
    """A pending link of this session that has not expired."""
    return isinstance(pending, dict) and pending.get("at", 0) > time.time() - LINK_TTL


def _still_linkable(provider, pending: dict) -> User:
    """The account a pending link is for, if it may still be linked now
    (inside the access write that links it)."""
    user = User.objects.select_for_update().filter(pk=pending["user"]).first()
    if user is None or not user.is_active:
        raise provider.fail(
            gettext_noop("your account is blocked. Ask an administrator."), "blocked"
        )
    if normalize_email(user.email) != normalize_email(pending["email"]):
        # The account's address changed since the provider vouched for it.
        raise provider.fail(
            gettext_noop("the account changed meanwhile. Please log in again."),
            "link_address_changed",
        )
    taken = Identity.objects.filter(
        provider=provider.id, issuer=pending["issuer"], subject=pending["subject"]
    ).exists()
    if taken or user.identities.filter(provider=provider.id).exists():
        raise provider.fail(
            gettext_noop("the account %(email)s is linked to another %(name)s identity."),
            "linked_elsewhere",
            params={"email": user.email, "name": provider.name},
        )
    return user


def link_by_removing_credentials(*, by: Actor, provider, pending: dict) -> User:
    """ "This is my account but I don't know its password": link the pending
    identity and remove every local credential of the account (its password
    made unusable, every authenticator deleted), end all its sessions and
    revoke its API tokens, in one write. Whoever held those is out; the
    provider's person logs in by SSO from now on."""
    from allauth.mfa.models import Authenticator

    try:
        with access_write(by=by):
            user = _still_linkable(provider, pending)
            removed = user_local_credentials(user)
            Authenticator.objects.filter(user=user).delete()
            user.set_unusable_password()
            user.password_proven_for = ""
            user.save(update_fields=["password", "password_proven_for"])
            ended = user_sessions_end(user)
            actor = by.as_user(user)
            email_change_void(user=user, by=actor, reason=AuditAction.SSO_LINKED.value)
            extensions.credentials_replaced(user, reason=AuditAction.SSO_LINKED.value, by=actor)
            # The MFA policy looks again on every session and token of the account.
            access.changed(User.objects.filter(pk=user.pk))
            _link(
                by=by,
                user=user,
                link=pending,
                proof="credentials_removed",
                details={"removed": removed, "sessions_ended": ended},
            )
    except IntegrityError:  # linked by another request of the same person meanwhile
        raise _linked_elsewhere(provider) from None
    return User.objects.get(pk=user.pk)


def link_refused(*, by: Actor, user: User, provider_id: str, reason: str) -> None:
    """A proof that was not accepted (an admin's initial password)."""
    audit(
        AuditAction.SSO_LINK_REFUSED,
        by=by.as_user(user),
        target=user,
        success=False,
        details={"provider": provider_id, "reason": reason},
    )


def login_completed(*, by: Actor, user: User, completion: dict, mfa_passed: bool) -> None:
    """The end of an SSO login, after its MFA step (sso.stages): make the
    link a password proved (`completion["link"]`), then apply the mapped
    groups. Raises SSOError when the link cannot be made any more."""
    from sso.registry import get_provider

    provider = get_provider(completion.get("provider", ""))
    if provider is None:
        return
    wanted = completion.get("groups", [])
    try:
        with access_write(by=by):
            link = completion.get("link")
            if link:
                _still_linkable(provider, link)
                if link.get("user") != user.pk or not password_proves_link(
                    User.objects.get(pk=user.pk)
                ):
                    # The password changed meanwhile: what was proven is gone.
                    raise provider.fail(
                        gettext_noop("the account changed meanwhile. Please log in again."),
                        "link_proof_stale",
                    )
                proof = "password+mfa" if mfa_passed else "password"
                _link(by=by, user=user, link=link, proof=proof)
            _sync_groups(by=by, provider=provider, user=user, wanted_names=wanted)
    except IntegrityError:  # linked by another request of the same person meanwhile
        raise _linked_elsewhere(provider) from None


def _linked_elsewhere(provider):
    return provider.fail(
        gettext_noop("this sign-in is linked to an account already. Please log in again."),
        "linked_elsewhere",
    )


def _provision(*, by: Actor, provider, profile) -> User:
    group = Group.objects.filter(name=settings.IAM_SSO_DEFAULT_GROUP).first()
    # A default group with grant approval is asked for (a second admin
    # approves), as a ROLE_MAP role's group is: the configuration acts with
    # the operator's trust, but it is not a second person.
    asked = group if group is not None and group.grant_approval else None
    try:
        with access_write(by=by, target_label=profile.email):
            user = user_create(
                email=profile.email,
                first_name=profile.first_name,
                last_name=profile.last_name,
                password=None,
                groups=[group] if group and not asked else [],
                by=by,
                via=f"sso:{provider.id}",
            )
            if asked:
                privileged.grant_request(
                    user=user,
                    group=asked,
                    ends_at=None,
                    source=Membership.MANUAL,
                    by=by.as_user(user),
                    writer=None,
                )
        return user
    except AccountError as exc:
        if user_get_by_email(profile.email) is not None:
            # Created concurrently by the other request: let the retry find it.
            raise IntegrityError("account created concurrently") from None
        # An address or name our rules refuse (accounts.inputs): say which.
        raise provider.fail(
            gettext_noop("the account could not be created: %(why)s"),
            "provision_refused",
            params={"why": str(exc)},
        ) from None


def sync_mapped_groups(*, by: Actor, provider, user: User, claims: dict) -> None:
    """Bring the groups that came from this provider's role mapping in line
    with the roles asserted now (a re-authentication)."""
    _sync_groups(
        by=by, provider=provider, user=user, wanted_names=mapped_group_names(provider, claims)
    )


def _sync_groups(*, by: Actor, provider, user: User, wanted_names) -> None:
    """The groups that came from this provider's role mapping become
    `wanted_names`. Memberships given by hand are never touched.

    Runs inside an access write (the caller's). A sync that would leave
    nobody able to manage access (the provider dropped the last manager's
    role, or mapped them into a group that denies part of it), or only
    people whose management ends (`managers_level`), is held back
    whole: the login goes on with the groups as they were, and the operator
    finds `sso.groups.sync_held` in the audit trail.

    A role mapped to a group with `grant_approval` never gives it here: it
    becomes one grant request (source `sso:<provider>`) a second admin
    approves; the request is withdrawn when the role is no longer asserted.
    A role mapped to an eligible-only group gives eligibility."""
    wanted = {g.pk: g for g in Group.objects.filter(name__in=list(wanted_names))}
    source = f"sso:{provider.id}"
    current = {m.group_id: m for m in user.memberships.select_related("group")}
    added = [g for pk, g in wanted.items() if pk not in current]
    removed = [m for pk, m in current.items() if m.source == source and pk not in wanted]
    # Privileged access: a role that maps to a group with grant approval
    # asks for it (once; a second admin approves), and the request is
    # withdrawn when the role goes. An eligible-only group's membership is
    # an eligibility: nothing until its member activates it.
    actor = by.as_user(user)
    privileged.grant_requests_withdraw(user=user, source=source, keep=set(wanted), by=actor)
    for group in [g for g in added if g.grant_approval]:
        added.remove(group)
        privileged.grant_request_from_source(
            user=user, group=group, ends_at=None, source=source, by=actor, writer=None
        )
    if not added and not removed:
        return
    details = {
        "provider": provider.id,
        "added": sorted(g.name for g in added),
        "removed": sorted(m.group.name for m in removed),
    }
    had_managers = managers_level()
    savepoint = transaction.savepoint()
    Membership.objects.bulk_create([Membership(user=user, group=g, source=source) for g in added])
    Membership.objects.filter(pk__in=[m.pk for m in removed]).delete()
    if managers_level() < had_managers:
        transaction.savepoint_rollback(savepoint)
        logger.warning("sso %s: group sync held back, it would lock access out", provider.id)
        details["reason"] = "last_manager"
        audit(
            AuditAction.SSO_GROUPS_SYNC_HELD,
            by=by.as_user(user),
            target=user,
            success=False,
            details=details,
        )
        return
    transaction.savepoint_commit(savepoint)
    access.changed(User.objects.filter(pk=user.pk))
    audit(AuditAction.SSO_GROUPS_SYNCED, by=by.as_user(user), target=user, details=details)


def identity_unlink(*, identity: Identity, by: Actor) -> None:
    """Forget one SSO link (an admin with users:edit over this account)."""
    with access_write(by=by, target=identity.user) as writer:
        user = identity.user
        writer.require("backoffice:users:edit", "unlink identities")
        writer.outranks(user)
        details = {"provider": identity.provider, "subject": identity.subject}
        identity.delete()
        audit(AuditAction.SSO_UNLINKED, by=by, target=user, details=details)


def is_sso_only(user: User) -> bool:
    """An account that only SSO can open: no usable password, a linked identity."""
    return not user.has_usable_password() and user.identities.exists()


def address_manager(user: User) -> str | None:
    """Who keeps an SSO-only account's address: its identity provider (the
    screens and the API leave it alone: accounts.extensions)."""
    if not is_sso_only(user):
        return None
    names = [p.name for p in linked_providers(user)]
    if not names:  # a provider no longer configured: its id
        names = sorted(set(user.identities.values_list("provider", flat=True)))
    return _("the identity provider %(name)s") % {"name": ", ".join(names)}
