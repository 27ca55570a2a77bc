"""Where the apps above accounts plug in, so accounts never imports them.

Each extension point is a list of callables an app registers in its
AppConfig.ready() (sso does, for identity providers). accounts calls them
where it needs the answer and knows nothing else of who answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoginOption:
    """A button on the login page: "Log in with <name>", a POST to `url`,
    which may redirect the browser to the `origins` (CSP form-action)."""

    name: str
    url: str
    origins: tuple[str, ...] = ()


@dataclass
class Extensions:
    # () -> list[LoginOption]: the login page's other ways in.
    login_options: list = field(default_factory=list)
    # (request, user, methods) -> methods: allauth's re-authentication methods,
    # with others added (a fresh login at the identity provider).
    reauthentication_methods: list = field(default_factory=list)
    # (user) -> bool: the account may not get a local password by a reset
    # link it asks for itself (someone an identity provider switched off).
    no_self_service_password: list = field(default_factory=list)
    # (user) -> str | None: who keeps this account's address, if not the
    # screens and the API ("the identity provider X", said to the admin),
    # since the account follows its provider (SSO-only, provisioned by SCIM).
    address_managers: list = field(default_factory=list)
    # (user) -> int | None: whose permissions also cap what `user` asked for
    # when it is carried out later, out of that request (a change of address
    # confirmed by its link): an API client's service account's secret
    # holder, read then (0: nobody holds it now). None: no such cap.
    cap_holders: list = field(default_factory=list)
    # () -> iterable of group names the configuration refers to.
    configured_group_names: list = field(default_factory=list)
    # () -> {key: plain data}: where the configuration names groups, for the
    # read-only `references` of `manage.py access export` (SSO role maps,
    # SCIM clients' maps and ceilings).
    access_references: list = field(default_factory=list)
    # (user, *, reason, by) at the moments an account's other
    # credentials (API tokens) must die with its sessions, inside the
    # service's transaction (a rolled-back block revokes nothing): blocked or
    # about to be deleted; password reset or changed.
    account_disabled: list = field(default_factory=list)
    credentials_replaced: list = field(default_factory=list)
    # (request) -> str | None, at logout while the session is still whole:
    # where the browser goes next instead of the login page (the identity
    # provider the session came from, to log out there too).
    logout_redirects: list = field(default_factory=list)
    # (request) -> list[str]: lines the login page shows (the identity
    # provider sent the browser back after logging it out).
    login_page_notices: list = field(default_factory=list)
    # (request, next_url) -> list[str]: origins a login that ends at
    # `next_url` goes on to in the same chain of redirects (an OAuth client
    # the person approved before): CSP form-action of the login pages.
    login_redirect_origins: list = field(default_factory=list)
    # Dotted paths of allauth login stages that run after the MFA step, last
    # in every login (sso: make a proven link, apply mapped groups).
    login_stages: list = field(default_factory=list)


registry = Extensions()


def login_options() -> list[LoginOption]:
    return [option for source in registry.login_options for option in source()]


def reauthentication_methods(request, user, methods: list[dict]) -> list[dict]:
    for extend in registry.reauthentication_methods:
        methods = extend(request, user, methods)
    return methods


def no_self_service_password(user) -> bool:
    return any(check(user) for check in registry.no_self_service_password)


def address_manager(user) -> str | None:
    """Who manages this account's address, or None: the screens and the API
    may ask to change it (accounts.services.emails)."""
    for check in registry.address_managers:
        manager = check(user)
        if manager:
            return manager
    return None


def cap_holder(user) -> int | None:
    """The cap_holders' answer for `user` (Actor.cap_holder), or None."""
    for check in registry.cap_holders:
        holder = check(user)
        if holder is not None:
            return holder
    return None


def configured_group_names() -> set[str]:
    return {name for source in registry.configured_group_names for name in source()}


def access_references() -> dict:
    found = {}
    for source in registry.access_references:
        found.update(source())
    return found


def account_disabled(user, *, reason: str, by) -> None:
    """The account is blocked (`reason="blocked"`) or deleted (`"deleted"`)."""
    for hook in registry.account_disabled:
        hook(user, reason=reason, by=by)


def credentials_replaced(user, *, reason: str, by) -> None:
    """The account's password was reset by link or changed by its owner."""
    for hook in registry.credentials_replaced:
        hook(user, reason=reason, by=by)


def logout_redirect(request) -> str | None:
    for source in registry.logout_redirects:
        url = source(request)
        if url:
            return url
    return None


def login_page_notices(request) -> list[str]:
    return [line for source in registry.login_page_notices for line in source(request)]


def login_redirect_origins(request, next_url: str) -> list[str]:
    if not next_url:
        return []
    origins = [o for source in registry.login_redirect_origins for o in source(request, next_url)]
    return list(dict.fromkeys(origins))
