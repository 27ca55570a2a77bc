"""Property-based bad SCIM bodies, filters and ids: never a 500, always SCIM
error JSON for a refusal, and a refused write changes nothing."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Membership, User
from tests.test_scim import ERROR_SCHEMA, PATCH_SCHEMA, Scim, entra_user, make_token

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS = [
    "active",
    "userName",
    "name.givenName",
    "name.familyName",
    "externalId",
    'emails[type eq "work"].value',
    "emails",
    "members",
    'members[value eq "1"]',
    "displayName",
    "id",
    "meta.created",
    "groups",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "nosuch",
    "name[",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["False", "True", "a@b.c", "\x00", "1", "999999999999999999999"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["value", "type", "primary", "givenName", "x"]), inner),
    ),
    max_leaves=8,
)
operation = st.fixed_dictionaries(
    {"op": st.sampled_from(["Add", "Replace", "Remove", "add", "REPLACE", "move", 5])},
    optional={"path": st.sampled_from(PATHS) | st.text(max_size=20), "value": values},
)


@pytest.fixture
def api(client):
    return Scim(client, make_token())


def refused_or_done(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.json()["schemas"] == [ERROR_SCHEMA]


@FUZZ
@given(ops=st.lists(operation, max_size=4))
def test_user_patches(api, ops):
    pk = api.post("Users", entra_user()).json()["id"] if not User.objects.exists() else None
    pk = pk or User.objects.get(email__endswith="@shop.example").pk
    response = api.patch(f"Users/{pk}", {"schemas": [PATCH_SCHEMA], "Operations": ops})
    refused_or_done(response)


@FUZZ
@given(ops=st.lists(operation, max_size=4))
def test_group_patches(api, ops):
    from scim.models import Group

    if not Group.objects.exists():
        pk = api.post("Users", entra_user()).json()["id"]
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"}
        body["members"] = [{"value": pk}]
        api.post("Groups", body)
    gid = Group.objects.get().pk
    before = set(Membership.objects.values_list("user_id", "group_id", "source"))
    response = api.patch(f"Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": ops})
    refused_or_done(response)
    if response.status_code >= 400:
        assert set(Membership.objects.values_list("user_id", "group_id", "source")) == before


@FUZZ
@given(body=st.dictionaries(st.sampled_from(list(entra_user()) + ["x", "id"]), values))
def test_user_creations(api, body):
    before = User.objects.count()
    response = api.post("Users", {**entra_user(), **body})
    refused_or_done(response)
    if response.status_code >= 400:
        assert User.objects.count() == before


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_raw_bodies(api, raw):
    refused_or_done(api.post("Users", raw))
    refused_or_done(api.post("Groups", raw))


@FUZZ
@given(text=st.text(max_size=120), where=st.sampled_from(["Users", "Groups"]))
def test_filters(api, text, where):
    refused_or_done(api.get(where, filter=text))


@FUZZ
@given(pk=st.text(max_size=30), start=st.text(max_size=6), count=st.text(max_size=6))
def test_ids_and_pages(api, pk, start, count):
    refused_or_done(
        api.client.get(
            "/scim/v2/Users/" + pk.replace("/", "%2F").replace("?", "%3F").replace("#", "%23"),
            **api._headers(),
        )
    )
    refused_or_done(api.get("Users", startIndex=start, count=count))


def test_json_nesting_bomb(api):
    deep = "[" * 100_000 + "]" * 100_000
    refused_or_done(api.post("Users", deep))
    refused_or_done(api.post("Users", json.dumps({"userName": "a" * 900_000})))


@pytest.mark.parametrize("depth", [500, 900, 990])
def test_deep_values_inside_valid_json(api, depth):
    pk = api.post("Users", entra_user()).json()["id"]
    deep = "[" * depth + "]" * depth
    ops = '[{"op": "Add", "path": "emails", "value": ' + deep + "}]"
    body = '{"schemas": ["' + PATCH_SCHEMA + '"], "Operations": ' + ops + "}"
    refused_or_done(api.patch(f"Users/{pk}", body))
    refused_or_done(api.post("Users", '{"userName": ' + deep + "}"))


@pytest.mark.parametrize(
    "where,text",
    [
        ("Users", 'userName eq "a\x00@shop.example"'),
        ("Users", 'externalId eq "\x00"'),
        ("Groups", 'displayName eq "\x00"'),
        ("Groups", 'externalId eq "x\x00"'),
    ],
)
def test_nul_in_filters(api, where, text):
    response = api.get(where, filter=text)
    refused_or_done(response)


def test_nul_in_ids_and_values(api):
    pk = api.post("Users", entra_user()).json()["id"]
    refused_or_done(api.post("Users", entra_user("n@shop.example", external_id="e\x00")))
    refused_or_done(api.post("Groups", {"displayName": "G\x00", "externalId": "x\x00"}))
    refused_or_done(
        api.patch(
            f"Users/{pk}",
            {
                "schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "Replace", "path": "externalId", "value": "a\x00b"}],
            },
        )
    )


def test_a_bad_token_on_a_strange_path_is_still_401(client):
    response = client.get("/scim/v2/Users%00%ff/x", HTTP_AUTHORIZATION="Bearer \x00")
    assert response.status_code == 401
    assert response.json()["schemas"] == [ERROR_SCHEMA]
