"""Prometheus counters and histograms, counted where the facts already are.

Security events are counted from the audit trail's writer (`audited`, one
call in accounts.audit), after the transaction commits, so the numbers use
the trail's vocabulary and never count a write that was rolled back. The
other facts are counted at their one place: a throttle's refusal in
accounts.throttle, a call to an identity provider in sso.metadata.http, a
request's latency and a SCIM client's request in iam.metrics_http.

Every label value comes from a fixed set (anything else is "other"): no
address, user id, email, raw path or provider answer ever becomes a label.
Provider ids and SCIM client names are the operator's configuration, so
they are bounded too.

With several worker processes (granian), PROMETHEUS_MULTIPROC_DIR makes
prometheus_client keep each value in a per-process file; iam.metrics_http
sums them at a scrape. The variable must be set before prometheus_client is
first imported: it is read from the environment, not from settings.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from functools import partial

from django.conf import settings
from django.db import transaction
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# No `_created` series: the multiprocess mode has none, so one process and
# several expose the same names.
disable_created_metrics()

# This process's metrics (one process: exposed as they are; several: each
# value is also in this process's file, and the scrape reads the files).
REGISTRY = CollectorRegistry(auto_describe=True)
OTHER = "other"

AUDIT_EVENTS = Counter(
    "iam_audit_events",
    "Audit events written (committed), by action and outcome.",
    ["action", "outcome"],
    registry=REGISTRY,
)
LOGINS = Counter(
    "iam_logins",
    "Logins by method (password, api_password, passkey, sso), outcome and reason.",
    ["method", "outcome", "reason"],
    registry=REGISTRY,
)
MFA = Counter(
    "iam_mfa",
    "Second-factor checks at login or re-authentication, by type and outcome.",
    ["type", "outcome"],
    registry=REGISTRY,
)
SSO = Counter(
    "iam_sso_logins",
    "Single sign-on logins and confirmations, by provider id, outcome and reason.",
    ["provider", "outcome", "reason"],
    registry=REGISTRY,
)
API_TOKENS = Counter(
    "iam_api_token_requests",
    "Token endpoint answers (/oauth/token/), by grant type, outcome and reason.",
    ["grant", "outcome", "reason"],
    registry=REGISTRY,
)
ACCESS_REFUSALS = Counter(
    "iam_access_refusals",
    "Writes refused by the delegation rules, by reason and channel.",
    ["reason", "channel"],
    registry=REGISTRY,
)
THROTTLED = Counter(
    "iam_throttled",
    "Attempts refused by a rate limit, by rule and channel.",
    ["rule", "channel"],
    registry=REGISTRY,
)
SCIM_REQUESTS = Counter(
    "iam_scim_requests",
    "SCIM requests by client (its name; none: no valid token), method and status class.",
    ["client", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "iam_http_request_duration_seconds",
    "Request latency by route name (never the raw path), method and status class.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
IDP_DURATION = Histogram(
    "iam_idp_request_duration_seconds",
    "Calls to identity providers, by provider id and kind.",
    ["provider", "kind"],
    registry=REGISTRY,
)
IDP_ERRORS = Counter(
    "iam_idp_request_errors",
    "Failed calls to identity providers, by provider id, kind and error.",
    ["provider", "kind", "error"],
    registry=REGISTRY,
)
# The security-event webhook (stream.webhook), counted in the worker that
# delivers: visible at /metrics when the worker shares PROMETHEUS_MULTIPROC_DIR
# with the server; the queue's gauges (iam.metrics_http) are read from the
# database and seen from every process.
EVENTS_DELIVERED = Counter(
    "iam_events_webhook_delivered",
    "Batches of security events the webhook accepted (2xx).",
    registry=REGISTRY,
)
EVENTS_FAILED_ATTEMPTS = Counter(
    "iam_events_webhook_failed_attempts",
    "Webhook deliveries that failed (network error, timeout, non-2xx), retried or not.",
    ["reason"],
    registry=REGISTRY,
)
EVENTS_DEAD_LETTERS = Counter(
    "iam_events_webhook_dead_letters",
    "Batches of security events given up on (a refusal, or the last attempt failed).",
    registry=REGISTRY,
)
EVENTS_FAILURES = frozenset({"network", "timeout", "tls", "redirect", "4xx", "5xx", "408", "429"})

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CHANNELS = frozenset({"web", "api", "scim", "sso", "cli", "worker"})
LOGIN_METHODS = frozenset({"password", "api_password", "passkey"})
LOGIN_REASONS = frozenset({"blocked", "sso_only", "second_factor_key"})
MFA_TYPES = frozenset({"totp", "recovery_codes", "webauthn"})
# sso.errors reasons, up to their first ":" (what follows may be the provider's words).
SSO_REASONS = frozenset(
    {
        "bad_alg",
        "bad_claim",
        "bad_endpoint",
        "bad_signature",
        "blocked",
        "callback",
        "email_not_verified",
        "idp_access_denied",
        "idp_busy",
        "idp_error",
        "idp_timeout",
        "idp_unreachable",
        "iss_mismatch",
        "issuer_mismatch",
        "jwks_refresh_pending",
        "link_address_changed",
        "link_proof_stale",
        "linked_elsewhere",
        "no_account",
        "no_code",
        "no_email",
        "no_id_token",
        "no_token",
        "provision_failed",
        "provision_refused",
        "reauth_auth_time_zero",
        "reauth_no_auth_time",
        "reauth_not_fresh",
        "reauth_session_changed",
        "reauth_wrong_user",
        "service_account",
        "state_expired",
        "state_mismatch",
        "tenant_not_allowed",
        "token_error",
        "userinfo",
        "userinfo_sub",
    }
)
API_GRANTS = frozenset({"authorization_code", "client_credentials", "password", "refresh_token"})
# api.oauth: the validator's and the token view's reasons.
API_REASONS = frozenset(
    {
        "account_blocked",
        "bad_credentials",
        "blocked",
        "code_reused",
        "expired_refresh_token",
        "grant_not_allowed",
        "invalid_client",
        "invalid_code",
        "mfa",
        "no_account",
        "nul_byte",
        "other_clients_refresh_token",
        "replay",
        "throttled",
        "throttled_ip",
        "unknown_refresh_token",
        "unsupported_grant_type",
    }
)
ACCESS_REASONS = frozenset({"right", "grant_bound", "rank", "last_manager"})
THROTTLE_RULES = frozenset(
    {"login", "login_failed", "scim_auth_failed", "sso_logout_refused", "sso_failed"}
)
IDP_KINDS = frozenset({"discovery", "jwks", "token", "userinfo", "metadata"})
IDP_ERRORS_SEEN = frozenset({"busy", "timeout", "unreachable", "4xx", "5xx"})


def bounded(value, allowed: frozenset[str], empty: str = "") -> str:
    """`value` if it is one of `allowed`, `empty` for nothing, else "other"."""
    if value in (None, ""):
        return empty
    return value if value in allowed else OTHER


def provider_label(provider_id) -> str:
    """A configured provider's id (the operator's words), else "other"."""
    return provider_id if provider_id in settings.IAM_SSO_PROVIDERS else OTHER


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else OTHER


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER


# --- the audit trail -------------------------------------------------------------


def audited(event) -> None:
    """Count one audit event once its transaction commits (a rolled-back
    write was never in the trail, so it is not counted either)."""
    transaction.on_commit(
        partial(
            _count_event, event.action, event.outcome, dict(event.details or {}), event.channel
        ),
        robust=True,
    )


def _count_event(action: str, outcome: str, details: dict, channel: str) -> None:
    AUDIT_EVENTS.labels(action, outcome).inc()
    counter = _EVENT_COUNTERS.get(action)
    if counter is not None:
        counter(action, outcome, details, channel)


def _login(action, outcome, details, channel) -> None:
    method = str(details.get("method") or "")
    if method.startswith("sso:"):
        SSO.labels(provider_label(method[4:]), outcome, "").inc()
        method = "sso"
    elif details.get("via") == "api":
        method = "api_password"
    if action == "login.throttled":
        return  # counted by the throttle itself (iam_throttled_total)
    if method != "sso":
        method = bounded(method, LOGIN_METHODS, empty="password")
    reason = ""
    if outcome != "success":
        raw = str(details.get("reason") or "")
        reason = "passkey_refused" if raw == "passkey not accepted" else raw
        reason = bounded(reason, LOGIN_REASONS | {"passkey_refused"}, empty="bad_credentials")
    LOGINS.labels(method, outcome, reason).inc()


def _mfa(action, outcome, details, channel) -> None:
    MFA.labels(bounded(details.get("type"), MFA_TYPES, empty=OTHER), outcome).inc()


def _sso(action, outcome, details, channel) -> None:
    reason = ""
    if outcome != "success":
        reason = bounded(str(details.get("reason") or "").split(":", 1)[0], SSO_REASONS, OTHER)
    SSO.labels(provider_label(details.get("provider")), outcome, reason).inc()


def _api_token(action, outcome, details, channel) -> None:
    if details.get("endpoint"):  # revocation, not a grant
        return
    reason = "replay" if action == "api.token.replayed" else ""
    if outcome != "success":
        reason = bounded(details.get("reason") or reason, API_REASONS, empty=OTHER)
    API_TOKENS.labels(bounded(details.get("grant"), API_GRANTS, OTHER), outcome, reason).inc()


def _access_refused(action, outcome, details, channel) -> None:
    reason = bounded(details.get("reason"), ACCESS_REASONS, empty=OTHER)
    ACCESS_REFUSALS.labels(reason, bounded(channel, CHANNELS, empty=OTHER)).inc()


_EVENT_COUNTERS = {
    "login.succeeded": _login,
    "login.failed": _login,
    "login.throttled": _login,
    "mfa.used": _mfa,
    "mfa.failed": _mfa,
    "sso.failed": _sso,
    "sso.reauthenticated": _sso,
    "api.token.issued": _api_token,
    "api.token.refreshed": _api_token,
    "api.token.refused": _api_token,
    "api.token.replayed": _api_token,
    "access.grant_refused": _access_refused,
    "access.lockout_refused": _access_refused,
}


# --- the other places -----------------------------------------------------------


def throttled(rule: str, channel: str) -> None:
    """A rate limit refused an attempt (accounts.throttle)."""
    THROTTLED.labels(bounded(rule, THROTTLE_RULES), bounded(channel, CHANNELS, OTHER)).inc()


@contextmanager
def idp_call(provider_id: str, kind: str):
    """Time one outbound call to an identity provider (sso.metadata.http);
    the caller sets `.error` on the yielded dict when it failed."""
    outcome = {"error": ""}
    started = time.perf_counter()
    try:
        yield outcome
    finally:
        provider, kind = provider_label(provider_id), bounded(kind, IDP_KINDS, OTHER)
        IDP_DURATION.labels(provider, kind).observe(time.perf_counter() - started)
        if outcome["error"]:
            IDP_ERRORS.labels(provider, kind, bounded(outcome["error"], IDP_ERRORS_SEEN)).inc()
