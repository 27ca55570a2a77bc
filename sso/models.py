"""Identity links: which identity-provider subject logs in as which user."""

from django.conf import settings
from django.db import models


class Identity(models.Model):
    """(provider, issuer, subject) → one user, for good.

    Once linked, that identity logs in as that user whatever its email claim
    says later; a user has at most one identity per provider, so another
    subject of the same provider can never take the account over.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    provider = models.CharField(max_length=64)
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, blank=True)
    # Entra ID: the object id (stable across apps) and tenant id of the account.
    oid = models.CharField(max_length=64, blank=True)
    tid = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "issuer", "subject"], name="sso_identity_unique_subject"
            ),
            models.UniqueConstraint(fields=["user", "provider"], name="sso_identity_one_per_user"),
        ]

    def __str__(self):
        return f"{self.provider}:{self.subject}"


class SsoSession(models.Model):
    """A Back Office session that came in through an identity provider, with
    the provider's session id (`sid`) and subject: what a provider's logout
    (back- or front-channel) names, so the session can be found and ended on
    whichever app server holds it."""

    session_key = models.CharField(max_length=64, unique=True)
    provider = models.CharField(max_length=64)
    sid = models.CharField(max_length=255, blank=True)
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_sessions"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["provider", "sid"], name="sso_session_sid"),
            models.Index(fields=["provider", "sub"], name="sso_session_sub"),
        ]

    def __str__(self):
        return f"{self.provider}:{self.sid or self.sub}"
