"""A write is answered with what really happened (issue 22, item 7): when
the database goes away at any point of an API write, a 5xx means nothing
was written, and a success means it was. Each query of the request is made
to fail in turn (Django's execute_wrapper, the database driver's place)."""

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tests.api_support import bearer, service_token

NEW = "fresh@shop.example"


def _create(http, token):
    return http.post(
        "/api/v1/users",
        {"email": NEW, "first_name": "F", "last_name": "R", "groups": [], "invite": False},
        content_type="application/json",
        **bearer(token),
    )


class FailAt:
    """Let the first `n` queries through, fail the next one."""

    def __init__(self, n: int):
        self.n, self.seen, self.failed = n, 0, False

    def __call__(self, execute, sql, params, many, context):
        self.seen += 1
        if self.seen == self.n + 1:
            self.failed = True
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


@pytest.fixture
def token(client, root_user):
    return service_token(client, root_user)


def test_a_write_that_fails_anywhere_is_a_503_and_nothing_written(client, token):
    client.raise_request_exception = False
    with CaptureQueriesContext(connection) as queries:
        assert _create(client, token).status_code == 201
    total = len(queries)
    User.objects.filter(email=NEW).delete()
    for n in range(total + 1):
        fault = FailAt(n)
        with connection.execute_wrapper(fault):
            response = _create(client, token)
        if not fault.failed:  # every query of the request had its turn
            assert response.status_code == 201 and n >= total - 2
            break
        written = User.objects.filter(email=NEW).exists()
        assert (response.status_code, written) in {(503, False), (201, True)}, (
            f"query {n + 1} of {total} failed: answered {response.status_code}, "
            f"{'written' if written else 'not written'}"
        )
        if response.status_code == 503:
            assert response.json()["error"] == "temporarily_unavailable"
            assert response["Retry-After"] == "5"
        User.objects.filter(email=NEW).delete()


def test_an_update_that_fails_anywhere_is_a_503_and_nothing_changed(client, token):
    from tests.factories import UserFactory

    target = UserFactory(first_name="Before")
    client.raise_request_exception = False

    def rename():
        return client.patch(
            f"/api/v1/users/{target.pk}",
            {"first_name": "After"},
            content_type="application/json",
            **bearer(token),
        )

    for n in range(200):
        User.objects.filter(pk=target.pk).update(first_name="Before")
        fault = FailAt(n)
        with connection.execute_wrapper(fault):
            response = rename()
        changed = User.objects.get(pk=target.pk).first_name == "After"
        if not fault.failed:
            assert response.status_code == 200 and changed and n > 5
            break
        assert (response.status_code, changed) in {(503, False), (200, True)}, (
            f"query {n + 1} failed: answered {response.status_code}, changed={changed}"
        )


def test_a_screen_write_is_answered_with_what_happened(admin):
    """A form's write, then its message saved in the session: should the
    database go away after the write committed, the answer still says it
    happened (the redirect), not 503 over a committed write."""
    from tests.factories import UserFactory

    target = UserFactory()
    admin.raise_request_exception = False
    for n in range(200):
        User.objects.filter(pk=target.pk).update(status=User.Status.ACTIVE)
        fault = FailAt(n)
        with connection.execute_wrapper(fault):
            response = admin.post(f"/users/{target.pk}/block/")
        blocked = User.objects.get(pk=target.pk).status == User.Status.BLOCKED
        if not fault.failed:
            assert response.status_code == 302 and blocked and n > 3
            break
        assert (response.status_code, blocked) in {(503, False), (302, True)}, (
            f"query {n + 1} failed: answered {response.status_code}, blocked={blocked}"
        )
