"""The SCIM server checked by an independent conformance suite: scim2-tester
(Yaal Coop, the scim2-models authors), driving our WSGI application through
scim2-client as a provisioning client would: discovery, then create, read,
filter, replace, patch and delete of generated Users and Groups.

One adaptation: our userName is the login email, so the generated userName
is an address (the tester makes a bare UUID)."""

import uuid

import pytest
from django.core.wsgi import get_wsgi_application

from tests.test_scim import make_token

pytestmark = pytest.mark.django_db

wsgi_engine = pytest.importorskip("scim2_client.engines.wsgi")
scim2_tester = pytest.importorskip("scim2_tester")


@pytest.fixture
def email_user_names(monkeypatch):
    from scim2_tester import filling
    from scim2_tester.checkers import patch_add, patch_replace

    generate = filling.generate_random_value

    def generate_value(context, path, *args, **kwargs):
        value = generate(context, path, *args, **kwargs)
        if str(path).split(":")[-1] == "userName" and value is not None:
            return f"{uuid.uuid4().hex}@shop.example"
        return value

    for module in (filling, patch_add, patch_replace):
        monkeypatch.setattr(module, "generate_random_value", generate_value)


@pytest.fixture
def keep_test_connection():
    """As Django's test Client does: the WSGI handler must not close the
    test's database connection at the end of each request (on PostgreSQL
    the test runs inside a transaction on that connection)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_conformance(email_user_names, keep_test_connection):
    client = wsgi_engine.WSGISCIMClient(
        get_wsgi_application(),
        base_url="http://localhost/scim/v2",
        headers={"Authorization": f"Bearer {make_token()}"},
    )
    results = scim2_tester.check_server(client)
    report = [f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}" for r in results]
    print("\n".join(report))
    assert len(results) > 40
    assert [line for line in report if line.startswith(("ERROR", "CRITICAL"))] == []
