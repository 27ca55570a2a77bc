"""`manage.py scimtoken create|list|revoke`: SCIM provisioning clients.

    scimtoken create --name NAME [--group-map JSON] [--max-group GROUP]...
    scimtoken list
    scimtoken revoke NAME

`create` prints the bearer token once, as its last line (only a hash is
kept). `--group-map` maps SCIM group displayNames to local group names
(`{"BO Admins": ["user-admins"], "BO Staff": "backoffice-users"}`), or
with a duration, `{"Admins": {"group": "root", "days": 30}}`: the
memberships that entry makes end 30 days after they are made (not renewed
by later syncs; once ended and swept, the next sync that touches the person
gives it anew while the SCIM group still holds them). A target group that
is eligible-only gives eligibility; one with grant approval gets a request a
second admin approves, never a membership directly;
`--max-group` (repeatable) is the client's ceiling: it may do only what a
member of those groups may, under the same delegation rules as an admin.
Without a ceiling the client has the operator's trust (as the SSO role map).
A refusal is one line (`CommandError: …`) and exit status 1.
"""

import json

from django.core.management.base import CommandError

from accounts.audit import Actor
from accounts.errors import AccountError
from iam import commands as base
from scim import services
from scim.models import Client


class Command(base.Command):
    help = "Create, list or revoke SCIM provisioning clients and their bearer tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a client; prints its token once.")
        create.add_argument("--name", required=True, help="The client's name (unique).")
        create.add_argument(
            "--group-map",
            default="{}",
            help='JSON: SCIM group → local group(s), or {"group": NAME, "days": N}.',
        )
        create.add_argument(
            "--max-group",
            action="append",
            default=[],
            dest="ceiling",
            help="The ceiling: the client may do only what a member of exactly these groups "
            "may; repeat for several. Without it the client has the operator's trust.",
        )
        sub.add_parser("list", help="List clients (never their tokens).")
        revoke = sub.add_parser("revoke", help="Revoke a client's token.")
        revoke.add_argument("name", help="The client's name.")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except AccountError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, *, name, group_map, ceiling, **_):
        try:
            parsed = json.loads(group_map)
        except ValueError:
            raise CommandError("--group-map is not valid JSON.") from None
        client, token = services.client_create(
            name=name, group_map=parsed, ceiling=ceiling, by=Actor.system(label="cli")
        )
        ceiling_text = ", ".join(client.ceiling) or "none (operator trust)"
        self.stdout.write(f"SCIM client {client.name} created; ceiling: {ceiling_text}.")
        self.stdout.write("Bearer token (shown once; give it to the identity provider):")
        self.stdout.write(token)

    def _list(self, **_):
        for client in Client.objects.order_by("name"):
            state = f"revoked {client.revoked_at:%Y-%m-%d}" if client.revoked_at else "active"
            used = f"{client.last_used_at:%Y-%m-%d %H:%M}" if client.last_used_at else "never"
            self.stdout.write(
                f"{client.name}\t{state}\tceiling={','.join(client.ceiling) or '-'}"
                f"\tmap={json.dumps(client.group_map, sort_keys=True)}\tlast_used={used}"
            )

    def _revoke(self, *, name, **_):
        client = Client.objects.filter(name=name).first()
        if client is None:
            raise CommandError(f"No SCIM client named {name[:60]}.")
        services.client_revoke(client=client, by=Actor.system(label="cli"))
        self.stdout.write(f"revoked {client.name}")
