"""API clients and the approvals people gave them.

`Client` is the toolkit's Application (swapped in through
OAUTH2_PROVIDER_APPLICATION_MODEL) plus what the Back Office needs:
- `account`: a client-credentials client's own service account
  (`User.Kind.SERVICE`, made with the client, deleted with it); its groups
  decide what the client may do and are given like a person's;
- `secret_holder`: who created or last replaced the secret (None with
  `secret_by_operator`: the command line). The client's tokens carry at most
  what the holder holds at the time of use (api.principal); a holder who is
  blocked or deleted leaves them nothing;
- `scope`: the scopes the client may ask for (api.scopes), its ceiling.

Tokens themselves are the toolkit's models; only SHA-256 checksums of them
are stored (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE), and secrets are hashed.
"""

from django.conf import settings
from django.db import models
from oauth2_provider.models import AbstractApplication

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class Client(AbstractApplication):
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # Deleting the account leaves the client unusable, and visible, until
        # an admin deletes it (its tokens go with the account).
        on_delete=models.SET_NULL,
        related_name="api_clients",
    )
    scope = models.CharField(max_length=2000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=254, blank=True)
    secret_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="held_api_client_secrets",
    )
    secret_holder_label = models.CharField(max_length=254, blank=True)
    secret_by_operator = models.BooleanField(default=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name or self.client_id

    @property
    def grant(self) -> str:
        return self.authorization_grant_type

    def is_usable(self, request) -> bool:
        """A client-credentials client acts as its service account: without
        one (it was deleted) it has nothing to act as. Whether that account is active is
        checked where tokens are made and used (api.oauth.validator)."""
        if self.authorization_grant_type == self.GRANT_CLIENT_CREDENTIALS:
            return self.account_id is not None or self.scope.split() == ["introspect"]
        return True

    def get_allowed_schemes(self):
        """https, and http for a client whose every redirect URI is on the
        loopback interface (RFC 8252 native apps). api.services refuses any
        other http:// URI at registration."""
        uris = self.redirect_uris.split()
        if uris and all(_is_loopback_http(uri) for uri in uris):
            return ["https", "http"]
        return ["https"]


def _is_loopback_http(uri: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


class Approval(models.Model):
    """A person approved a client for these scopes: the next authorization
    asking for no more is not shown the approval page again. Dropped when the
    client's redirect URIs or secret change, so an admin who repoints a client
    cannot collect codes on approvals given to where it pointed before."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_approvals"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="approvals")
    scope = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "client"], name="api_approval_unique")
        ]

    def __str__(self):
        return f"{self.user_id} approved {self.client_id}: {self.scope}"
