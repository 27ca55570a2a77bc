"""Existing client-credentials clients bound to a person's account each get
their own service account, with the groups that person has now. The holder
of the client's secret is whoever saw it, as api.services records it from
now on: whoever last replaced it (the audit trail's latest
api.client.secret_rotated), else whoever created the client (the command
line: the operator). Never the bound person as such, who may never have seen
the secret: a narrow admin's client bound to an account root promoted since
(the issue's attack, done before the upgrade) stays within what that admin
holds. A holder deleted since leaves the secret carrying nothing until
someone replaces it; only a client with no record of its creator at all
falls back to the bound person. The client's live tokens move to the
service account, so it keeps working within that cap."""

from django.db import migrations

GRANT_CLIENT_CREDENTIALS = "client-credentials"
OPERATOR_LABELS = ("cli", "operator")  # str(Actor.system(label="cli")), str(Actor.system())


def service_email(client) -> str:
    # As api.services.service_email: never deliverable (RFC 2606 .example).
    return f"svc-{client.pk}-{client.client_id[:8].lower()}@api-clients.example"


def who_saw_the_secret(client, rotated, User):
    """(holder or None, by the operator, label): the latest replacement's
    actor, else the creator; (None, False, "") when nothing records either."""
    user_id, label = rotated.get(client.pk) or (client.created_by_id, client.created_by_label)
    holder = User.objects.filter(pk=user_id).first() if user_id else None
    if holder is not None:
        return holder, False, holder.email
    return None, label in OPERATOR_LABELS, label


def forwards(apps, schema_editor):
    Client = apps.get_model("api", "Client")
    User = apps.get_model("accounts", "User")
    Membership = apps.get_model("accounts", "Membership")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    rotated = {}
    rows = AuditEvent.objects.filter(
        action="api.client.secret_rotated", target_type="client", outcome="success"
    ).order_by("id")
    for target_id, actor_id, label in rows.values_list("target_id", "actor_id", "actor_label"):
        if str(target_id).isdigit():
            rotated[int(target_id)] = (actor_id, label)
    bound = Client.objects.filter(
        authorization_grant_type=GRANT_CLIENT_CREDENTIALS, account__kind="person"
    ).select_related("account")
    for client in bound:
        person = client.account
        service = User.objects.create(
            email=service_email(client),
            first_name=(client.name or client.client_id)[:150],
            last_name=client.client_id[:8],
            kind="service",
            status=person.status,
            password="!",  # unusable: a service account never logs in
        )
        Membership.objects.bulk_create(
            Membership(user=service, group_id=group_id, source="manual")
            for group_id in Membership.objects.filter(user=person).values_list(
                "group_id", flat=True
            )
        )
        # The toolkit's live model (a dependency on its migrations would reorder
        # them before api.0001): only ids are touched, and only when a client
        # exists, so its tables do.
        from oauth2_provider.models import get_access_token_model

        get_access_token_model().objects.filter(
            application_id=client.pk, user_id=person.pk
        ).update(user_id=service.pk)
        client.account = service
        holder, by_operator, label = who_saw_the_secret(client, rotated, User)
        if holder is None and not by_operator and not label:
            holder, label = person, person.email  # no record of who saw it
        client.secret_holder = holder
        client.secret_holder_label = label[:254]
        client.secret_by_operator = by_operator
        client.save(update_fields=["account", "secret_holder", "secret_holder_label",
                                   "secret_by_operator"])  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_client_secret_holder"),
        ("accounts", "0010_user_kind"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
