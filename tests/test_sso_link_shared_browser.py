"""SSO link page on a shared browser: a pending link belongs to the
unfinished login that made it, not to whoever logs in next.

The person the provider vouches for reaches "Link your account" and walks
away. Within the pending link's 10 minutes a colleague logs in to their own
account on the same browser (a login keeps the anonymous session's data).
The colleague must not be able to finish the first person's link ("I don't
know its password") and so land in that account, with what ROLE_MAP gives
it, its owner's credentials removed."""

import pytest
from django.test import Client

from accounts.models import User
from sso.models import Identity
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.sso import CLAIMS, OWNER

pytestmark = pytest.mark.django_db


def test_a_login_by_someone_else_ends_the_pending_link(role_map):
    owner_account = UserFactory(email=OWNER)
    colleague = UserFactory(email="colleague@shop.example")
    shared = Client()
    assert role_map.sso_login(shared, CLAIMS)["Location"] == "/sso/link/"
    # The owner walks away; the colleague logs in to their own account.
    assert login(shared, colleague.email, PASSWORD).status_code == 302
    assert int(shared.session["_auth_user_id"]) == colleague.pk

    page = shared.get("/sso/link/")
    assert page.status_code == 302  # nothing waits here for the colleague
    shared.post("/sso/link/takeover/")
    assert not Identity.objects.exists()
    assert User.objects.get(pk=owner_account.pk).has_usable_password()
    assert int(shared.session["_auth_user_id"]) == colleague.pk
