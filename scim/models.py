"""Provisioning clients, and what each one knows of accounts and groups."""

from django.conf import settings
from django.db import models


class Client(models.Model):
    """One provisioning client (an Entra ID enterprise application, an Okta
    app...): its bearer token, its group map and its ceiling.

    The token is `scim_<key>.<secret>`: `key` finds the row, only a SHA-256 of
    the secret is kept (the secret is 256 random bits, so a fast hash is
    enough) and compared in constant time. `group_map` maps a SCIM group's
    displayName to local group names; `ceiling` (group names) bounds what the
    client may do as an admin holding exactly those groups would be bound;
    empty means the operator's trust, as for the SSO role map."""

    name = models.CharField(max_length=60, unique=True)
    key = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    group_map = models.JSONField(default=dict, blank=True)
    ceiling = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def source(self) -> str:
        """Membership.source of the groups this client gave."""
        return f"scim:{self.name}"


class Account(models.Model):
    """An account as one client knows it: linked on first contact (created,
    or matched by email), then found by the client's externalId."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="accounts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scim_accounts"
    )
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "user"], name="scim_account_one_per_user"),
            models.UniqueConstraint(
                fields=["client", "external_id"],
                condition=~models.Q(external_id=""),
                name="scim_account_unique_external_id",
            ),
        ]

    def __str__(self):
        return f"{self.client_id}:{self.user_id}"


class Group(models.Model):
    """A SCIM group of one client. It gives local groups only through the
    client's group map; its members are the client's accounts."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="groups")
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(Account, related_name="groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "display_name"], name="scim_group_unique_name"
            ),
        ]

    def __str__(self):
        return self.display_name
