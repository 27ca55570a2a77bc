"""Reading accounts over SCIM is bounded like every other use.

On the screens and through the API, seeing accounts needs
`backoffice:users:view`. A provisioning client's reads needed nothing: one
whose ceiling holds no user permission at all (a groups-only connector, a
client narrowed to nothing) listed every person of the shop (root admins
included) with their address, names and status, and fetched any of them by
id or by a filter. Its bound (its ceiling) now decides reads too; an
operator-trusted client (no ceiling) reads as before.
"""

import pytest

from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.scim import Scim, assert_error, make_token

pytestmark = pytest.mark.django_db

SEARCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}


def _client_with(client, name, patterns):
    role = RoleFactory(name=name)
    for pattern in patterns:
        RuleFactory(role=role, pattern=pattern)
    GroupFactory(name=name, roles=[role])
    return Scim(client, make_token(name, ceiling=[name]))


@pytest.fixture
def boss(db):
    return UserFactory(email="boss@shop.example", groups=["root"])


def test_a_client_without_users_view_reads_no_account(client, boss):
    blind = _client_with(client, "audit-only", ["backoffice:audit:view"])
    assert_error(blind.get("Users"), 403)
    assert_error(blind.get("Users", filter=f'userName eq "{boss.email}"'), 403)
    assert_error(blind.get(f"Users/{boss.pk}"), 403)
    assert_error(blind.post("Users/.search", SEARCH), 403)


def test_a_client_with_users_view_reads_them(client, boss):
    reader = _client_with(client, "readers", ["backoffice:users:view"])
    listed = reader.get("Users", filter=f'userName eq "{boss.email}"')
    assert listed.status_code == 200 and listed.json()["totalResults"] == 1
    assert reader.get(f"Users/{boss.pk}").status_code == 200


def test_an_operator_trusted_client_reads_as_before(client, boss):
    trusted = Scim(client, make_token("entra"))
    assert trusted.get("Users").json()["totalResults"] == 1
