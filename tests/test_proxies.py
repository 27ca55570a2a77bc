"""`IAM_TRUSTED_PROXIES`: forwarded headers are believed from listed proxies only."""

import pytest
from django.test import Client, override_settings

from accounts.models import AuditEvent
from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _login_ip(client, user, **headers):
    login(client, user.email, PASSWORD, **headers)
    return AuditEvent.objects.filter(action="login.succeeded").latest("id").ip


def test_forwarded_for_is_ignored_by_default(user):
    ip = _login_ip(Client(), user, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert ip == "10.0.0.5"


@override_settings(IAM_TRUSTED_PROXIES=["10.0.0.5"])
def test_forwarded_for_from_a_trusted_proxy_names_the_client(user):
    ip = _login_ip(
        Client(), user, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9"
    )
    assert ip == "203.0.113.9"  # the rightmost hop: the only one the proxy vouches for


@override_settings(IAM_TRUSTED_PROXIES=["10.0.0.5"])
def test_untrusted_sender_cannot_spoof(user):
    ip = _login_ip(Client(), user, REMOTE_ADDR="10.0.0.6", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert ip == "10.0.0.6"


@override_settings(IAM_TRUSTED_PROXIES=["10.0.0.5"], SECURE_SSL_REDIRECT=True)
def test_forwarded_proto_from_trusted_proxy_counts_as_https():
    assert Client().get("/login/", REMOTE_ADDR="10.0.0.5").status_code == 301
    response = Client().get("/login/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    spoofed = Client().get("/login/", REMOTE_ADDR="10.0.0.6", HTTP_X_FORWARDED_PROTO="https")
    assert spoofed.status_code == 301
