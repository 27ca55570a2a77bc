"""Existing client-credentials clients bound to a person's account each get
their own service account, with the groups that person has now (what the
client may do is unchanged), and the person is recorded as the holder of the
client's secret: from now on its tokens carry at most what that person holds.
The client's live tokens move to the service account, so it keeps working."""

from django.db import migrations

GRANT_CLIENT_CREDENTIALS = "client-credentials"


def service_email(client) -> str:
    # As api.services.service_email: never deliverable (RFC 2606 .example).
    return f"svc-{client.pk}-{client.client_id[:8].lower()}@api-clients.example"


def forwards(apps, schema_editor):
    Client = apps.get_model("api", "Client")
    User = apps.get_model("accounts", "User")
    Membership = apps.get_model("accounts", "Membership")
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
        client.secret_holder = person
        client.secret_holder_label = person.email
        client.secret_by_operator = False
        client.save(update_fields=["account", "secret_holder", "secret_holder_label",
                                   "secret_by_operator"])  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_client_secret_holder"),
        ("accounts", "0010_user_kind"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
