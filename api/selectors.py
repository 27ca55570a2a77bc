"""Reads about API clients for the screens: which clients act for an
account, and where a client's secret holder caps its service account."""

from __future__ import annotations

from django.utils import timezone
from oauth2_provider.models import AccessToken

from accounts.delegation import rank_beyond
from accounts.models import User
from api.models import Client
from api.principal import holder_id, holder_permissions


def holder_shortfall(client: Client) -> frozenset[str]:
    """What the client's service account reaches beyond what the holder of
    its secret holds now: its tokens carry none of it (api.principal), and
    replacing the secret as someone who holds it lifts the cap."""
    if client.account_id is None:
        return frozenset()
    held = holder_permissions(client)
    if held is None:
        return frozenset()
    return rank_beyond(held, client.account_id)


def capped_clients(users) -> list[tuple[Client, frozenset[str]]]:
    """Among these accounts (one user or a queryset), the service accounts'
    clients whose secret holder holds less than the account reaches: after a
    promotion, the promoter is told to have the secret replaced."""
    accounts = [users.pk] if isinstance(users, User) else users.values("pk")
    rows = Client.objects.filter(account__in=accounts, account__kind=User.Kind.SERVICE)
    rows = rows.select_related("account").order_by("name", "id")
    return [(client, short) for client in rows if (short := holder_shortfall(client))]


def clients_acting_for(user: User) -> dict[str, list[Client]]:
    """The API clients that act for an account: a service account's own
    client; for a person, the clients whose secret they hold and those that
    hold live tokens for them (authorization code, password grant)."""
    own = list(Client.objects.filter(account=user).order_by("name", "id"))
    held = list(Client.objects.filter(secret_holder=user).order_by("name", "id"))
    live = (
        AccessToken.objects.filter(user=user, expires__gt=timezone.now())
        .exclude(application__account=user)
        .values_list("application_id", flat=True)
    )
    tokens = list(Client.objects.filter(pk__in=live).order_by("name", "id"))
    return {"service": own, "held": held, "tokens": tokens}


def service_address_manager(user) -> str | None:
    """A service account's address is its client's: made with it, never
    mailed, so never changed on the screens or through the API."""
    from django.utils.translation import gettext as _

    if not user.is_service:
        return None
    client = Client.objects.filter(account=user).first()
    name = client.name if client is not None else "?"
    return _("the API client %(name)s") % {"name": name}


def service_cap_holder(user) -> int | None:
    """A service account's writes are capped by its client's secret holder,
    also when one it asked for is carried out later (a change of address
    confirmed by its link): the holder's id, 0 when nothing holds it."""
    if not user.is_service:
        return None
    client = Client.objects.filter(account=user).first()
    if client is None:
        return 0
    return holder_id(client)
