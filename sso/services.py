"""Who a validated SSO identity is here: links, the two strategies, role mapping."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts import access
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write, managers_remain
from accounts.models import Group, Membership, User
from accounts.selectors import user_get_by_email
from accounts.services import AccountError, user_create
from sso.models import Identity

logger = logging.getLogger("iam.sso")


def resolve_user(*, by: Actor, provider, claims: dict) -> User:
    """The account this identity logs in as, creating or linking it when the
    strategy allows. Raises SSOError (via provider.fail) otherwise. `by` is the
    operator's configuration acting during the login's request (Actor.system)."""
    issuer, subject = _issuer_and_subject(provider, claims)
    for attempt in range(2):
        try:
            # An access write (it may create an account and change its groups):
            # the access lock first, the operator's configuration as the actor.
            with access_write(by=by):
                identity = (
                    Identity.objects.select_related("user")
                    .filter(provider=provider.id, issuer=issuer, subject=subject)
                    .first()
                )
                if identity is None:
                    identity = _first_login(by=by, provider=provider, claims=claims)
                user = identity.user
                if not user.is_active:
                    raise provider.fail(
                        gettext_noop("your account is blocked. Ask an administrator."), "blocked"
                    )
                identity.last_login_at = timezone.now()
                profile = provider.profile(claims)
                if profile.email_vouched:
                    identity.email = profile.email
                identity.save(update_fields=["last_login_at", "email"])
                sync_mapped_groups(by=by, provider=provider, user=user, claims=claims)
                return user
        except IntegrityError:
            # Another first login of the same identity (or address) won the
            # race: the link or account now exists; look again.
            logger.info("sso %s: concurrent first login (attempt %d)", provider.id, attempt + 1)
    raise provider.fail(
        gettext_noop("the account could not be set up. Please try again."), "provision_failed"
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
            f"you logged in at {provider.name} as someone else. Log in there as yourself "
            "to confirm.",
            "reauth_wrong_user",
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


def _first_login(*, by: Actor, provider, claims: dict) -> Identity:
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
    if user is None:
        if provider.strategy != "auto-provision":
            raise provider.fail(
                f"there is no Back Office account for {profile.email}. "
                "Ask an administrator to create one.",
                "no_account",
            )
        user = _provision(by=by, provider=provider, profile=profile)
    elif user.is_service:
        # An API client's service account never logs in, by SSO either (h4).
        raise provider.fail(
            f"{profile.email} is a service account: it never logs in.", "service_account"
        )
    elif user.identities.filter(provider=provider.id).exists():
        # The account is bound to another subject of this provider.
        raise provider.fail(
            f"the account {profile.email} is linked to another {provider.name} identity.",
            "linked_elsewhere",
        )
    identity = Identity.objects.create(
        user=user,
        provider=provider.id,
        issuer=claims["iss"],
        subject=claims["sub"],
        email=profile.email,
        **provider.link_extras(claims),
    )
    audit(
        AuditAction.SSO_LINKED,
        by=by.as_user(user),
        target=user,
        details={"provider": provider.id, "subject": claims["sub"]},
    )
    return identity


def _provision(*, by: Actor, provider, profile) -> User:
    group = Group.objects.filter(name=settings.IAM_SSO_DEFAULT_GROUP).first()
    try:
        return user_create(
            email=profile.email,
            first_name=profile.first_name,
            last_name=profile.last_name,
            password=None,
            groups=[group] if group else [],
            by=by,
            via=f"sso:{provider.id}",
        )
    except AccountError as exc:
        if user_get_by_email(profile.email) is not None:
            # Created concurrently by the other request: let the retry find it.
            raise IntegrityError("account created concurrently") from None
        # An address or name our rules refuse (accounts.inputs): say which.
        raise provider.fail(
            f"the account could not be created: {exc}", "provision_refused"
        ) from None


def sync_mapped_groups(*, by: Actor, provider, user: User, claims: dict) -> None:
    """Bring the groups that came from this provider's role mapping in line
    with the roles asserted now. Memberships given by hand are never touched.

    Runs inside an access write (the caller's). A sync that would leave
    nobody able to manage access (the provider dropped the last manager's
    role, or mapped them into a group that denies part of it) is held back
    whole: the login goes on with the groups as they were, and the operator
    finds `sso.groups.sync_held` in the audit trail."""
    wanted_names = {g for role in provider.roles(claims) for g in provider.role_map.get(role, [])}
    wanted = {g.pk: g for g in Group.objects.filter(name__in=wanted_names)}
    source = f"sso:{provider.id}"
    current = {m.group_id: m for m in user.memberships.select_related("group")}
    added = [g for pk, g in wanted.items() if pk not in current]
    removed = [m for pk, m in current.items() if m.source == source and pk not in wanted]
    if not added and not removed:
        return
    details = {
        "provider": provider.id,
        "added": sorted(g.name for g in added),
        "removed": sorted(m.group.name for m in removed),
    }
    had_managers = managers_remain()
    savepoint = transaction.savepoint()
    Membership.objects.bulk_create([Membership(user=user, group=g, source=source) for g in added])
    Membership.objects.filter(pk__in=[m.pk for m in removed]).delete()
    if had_managers and not managers_remain():
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
