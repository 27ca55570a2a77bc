"""Two sessions of one user the MFA policy covers remove its two second
factors at the same moment (the authenticator app in one, the security key in
the other), on PostgreSQL, through HTTP. Either removal alone is allowed, so
without the per-user lock (accounts.mfa.factor_removal) both pass their check
against the state before the other's commit and the user is left with none."""

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection

from tests.factories import UserFactory
from tests.support.people import browser_of
from tests.support.races import race

ROUNDS = 30

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need a server database (CI runs it)"
    ),
]


def test_two_removals_at_once_never_leave_a_required_user_without_a_factor(seed_groups, settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    user = UserFactory(email="root@shop.example", groups=["root"])
    # Logged in before any factor exists (the set-up pages stay open to them).
    app_side, key_side = browser_of(user), browser_of(user)
    outcomes = []
    for _ in range(ROUNDS):
        Authenticator.objects.filter(user=user).delete()
        Authenticator.objects.create(user=user, type="totp", data={"secret": "JBSWY3DPEHPK3PXP"})
        key = Authenticator.objects.create(user=user, type="webauthn", data={"name": "Key"})
        statuses = race(
            lambda: app_side.post("/2fa/totp/deactivate/"),
            lambda url=f"/2fa/webauthn/keys/{key.pk}/remove/": key_side.post(url),
        )
        left = Authenticator.objects.filter(user=user, type__in=["totp", "webauthn"]).count()
        outcomes.append((tuple(statuses), left))
        assert left == 1, outcomes
