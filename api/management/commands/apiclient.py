"""`manage.py apiclient create|list|revoke`: API clients from the command line.

    apiclient create --name NAME --grant authorization_code|client_credentials|password
                     [--redirect-uri URI]... [--user EMAIL] [--scope S]...
    apiclient list      (tab-separated; the last column: who holds the secret)
    apiclient revoke CLIENT_ID

`create` prints `client_id=…` and `client_secret=…`: the secret this once
(only a hash is kept). A client_credentials client gets its own service
account (it never acts as a person's account); `--user EMAIL` gives that
service account the groups the person has now (a copy: later changes to the
person do not follow), and is refused for the other grants. The operator
holds the secret, so no holder cap applies (api.principal) until someone
replaces it on the screen. The operator is trusted like root (Actor.system), as
for `createuser`; every other rule of api.services holds. A refusal is one
line (`CommandError: …`) and exit status 1; nothing is written.
"""

from django.core.management.base import CommandError

from accounts.audit import Actor
from accounts.errors import AccountError
from accounts.selectors import user_get_by_email
from api import services
from api.models import Client
from iam import commands as base

GRANT_NAMES = {v: k for k, v in services.GRANTS.items()}


class Command(base.Command):
    help = "Create, list or revoke Back Office API clients."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a client; prints its id and secret.")
        create.add_argument("--name", required=True, help="The client's name.")
        create.add_argument(
            "--grant", required=True, choices=sorted(services.GRANTS), help="The OAuth grant type."
        )
        create.add_argument(
            "--redirect-uri",
            action="append",
            default=[],
            dest="redirect_uris",
            help="authorization_code: an allowed redirect URI; repeat for several.",
        )
        create.add_argument(
            "--user",
            default=None,
            help="client_credentials: give the new service account this person's groups.",
        )
        create.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            help="A scope the client may ask for (read, write); repeat for several.",
        )
        sub.add_parser("list", help="List clients (never their secrets).")
        revoke = sub.add_parser("revoke", help="Delete a client and every token it holds.")
        revoke.add_argument("client_id", help="The client's client_id.")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except AccountError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, *, name, grant, redirect_uris, user, scopes, **_):
        person = None
        if user:
            person = user_get_by_email(user)
            if person is None:
                raise CommandError(f"No account with email {user[:254]}.")
        scopes = [word for value in scopes for word in value.split()]
        client, secret = services.client_create(
            name=name,
            grant=grant,
            redirect_uris=redirect_uris,
            groups_from=person,
            scopes=scopes,
            by=Actor.system(label="cli"),
        )
        self.stdout.write(f"client_id={client.client_id}")
        self.stdout.write(f"client_secret={secret}")

    def _list(self, **_):
        rows = Client.objects.select_related("account", "secret_holder").order_by("name", "id")
        for client in rows:
            account = client.account.email if client.account else "-"
            self.stdout.write(
                f"{client.client_id}\t{client.name}\t{GRANT_NAMES.get(client.grant, client.grant)}"
                f"\t{account}\t{client.scope}\t{client.created:%Y-%m-%d}\t{_holder(client)}"
            )

    def _revoke(self, *, client_id, **_):
        client = Client.objects.filter(client_id=client_id).first()
        if client is None:
            raise CommandError(f"No API client {client_id[:100]}.")
        services.client_delete(client=client, by=Actor.system(label="cli"))
        self.stdout.write(f"revoked client_id={client_id}")


def _holder(client) -> str:
    """Who holds a client-credentials client's secret, and so caps its
    tokens (api.principal): `operator`, a person's address, or `none` (the
    holder was blocked or deleted: it mints nothing until it is replaced)."""
    if client.authorization_grant_type != Client.GRANT_CLIENT_CREDENTIALS:
        return "-"
    if client.secret_by_operator:
        return "operator"
    return client.secret_holder.email if client.secret_holder else "none"
