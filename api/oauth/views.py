"""The OAuth 2.0 endpoints: the toolkit's, with the Back Office's throttles,
approvals and audit trail around them.

- token: every grant; the password grant is counted by the login form's
  throttles first (accounts.throttle: all attempts per client IP, failures
  per IP and per account, counted before the password is checked and taken
  back when it was right), and every issue, refresh or refusal is audited;
- revoke (RFC 7009): the toolkit's, audited;
- introspect (RFC 7662): for resource servers, which authenticate as a
  client holding the `introspect` scope (the toolkit's view would let any
  client read any token);
- authorize: the toolkit's consent page behind the normal login (allauth,
  MFA, SSO), shown once per client and scopes (api.models.Approval).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from urllib.parse import unquote_plus, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import View
from oauth2_provider import views as toolkit
from oauth2_provider.models import AccessToken
from oauth2_provider.oauth2_validators import OAuth2Validator

from accounts import throttle
from accounts.audit import Actor, AuditAction, audit
from api import scopes as scope_rules
from api.audit import client_facts, token_event
from api.models import Approval, Client
from api.oauth.outcome import recording
from api.principal import secret_refused, token_scope_now

logger = logging.getLogger("iam.security")


def oauth_error(error: str, description: str, status: int, **headers) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


ONCE_GRANTS = {"authorization_code", "refresh_token"}
# What the metadata offers (settings.OAUTH2_PROVIDER), and all the token endpoint takes.
GRANTS_OFFERED = tuple(settings.OAUTH2_PROVIDER["OAUTH2_GRANT_TYPES_SUPPORTED"])
NUL_REFUSAL = "A parameter or the client's credentials contain a NUL byte."


def _nul_in(request) -> bool:
    """A NUL byte in a parameter (query or form) or the Basic credentials:
    no client id, code, token or address holds one, and PostgreSQL cannot
    even compare such a value, so it is refused before anything looks it up."""
    texts = [request.META.get("HTTP_AUTHORIZATION", "")]
    for params in (request.GET, request.POST):
        for name, values in params.lists():
            texts.append(name)
            texts.extend(values)
    header = texts[0]
    if header.startswith("Basic "):
        # Undecodable credentials are the toolkit's to refuse (invalid_client).
        with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
            texts.append(unquote_plus(base64.b64decode(header[6:], validate=True).decode()))
    return any("\x00" in text for text in texts)


def _printable(value: str, limit: int) -> str:
    return "".join(c for c in str(value) if c.isprintable())[:limit]


def _client_id_asked(request) -> str:
    """The client id a request names (Basic auth or body), for the audit
    trail only: printable, bounded."""
    client_id = request.POST.get("client_id", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
            client_id = unquote_plus(decoded.split(":", 1)[0])
        except (binascii.Error, UnicodeDecodeError, ValueError):
            client_id = ""
    return _printable(client_id, 100)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("password", "client_secret"), name="dispatch")
class TokenView(toolkit.TokenView):
    """POST /oauth/token/: every grant, counted and audited."""

    @staticmethod
    def _refused(request, grant: str, error: str, reason: str, description: str):
        """A request refused before the toolkit sees it: audited, a 400."""
        token_event(
            AuditAction.API_TOKEN_REFUSED,
            by=Actor.of(request),
            success=False,
            grant=_printable(grant, 64),
            error=error,
            reason=reason,
            client_id=_client_id_asked(request),
        )
        return oauth_error(error, description, 400)

    def post(self, request, *args, **kwargs):
        grant = request.POST.get("grant_type", "")
        if _nul_in(request):
            return self._refused(request, grant, "invalid_request", "nul_byte", NUL_REFUSAL)
        if grant not in GRANTS_OFFERED:
            # The toolkit's server knows more grants than the metadata offers
            # (the device code grant, with no device endpoint here: an unknown
            # code was a 500). Refused here, before anything is looked up.
            return self._refused(
                request,
                grant,
                "unsupported_grant_type",
                "unsupported_grant_type",
                f"The grant type is one of {', '.join(GRANTS_OFFERED)}.",
            )
        with recording(request) as outcome:
            hits = None
            if grant == "password":
                hits, refused = self._count_password_attempt(request)
                if refused is not None:
                    return refused
            # A code or a refresh token is used once: the validator locks it
            # for the length of this transaction (api.oauth.validator).
            once = transaction.atomic() if grant in ONCE_GRANTS else contextlib.nullcontext()
            with once:
                url, headers, body, status = self.create_token_response(request)
            if hits is not None and outcome.password_ok:
                hits.rollback()  # the password was right: as at login, not a failure
            response = HttpResponse(body, status=status, content_type="application/json")
            for name, value in headers.items():
                response[name] = value
            self._audit(request, grant, status, body, outcome)
        return response

    def _count_password_attempt(self, request):
        """The login form's throttles, in its order: every attempt per client
        IP, then failures per IP and per account (counted now, taken back if
        the password is right). (hits, None) or (None, a 429)."""
        email = str(request.POST.get("username", ""))[:254]
        if not throttle.consume(request, "login"):
            return None, self._throttled(request, email, "login", "throttled_ip")
        hits = throttle.consume(request, "login_failed", throttle.account_key(email))
        if not hits:
            logger.warning(
                "login throttled email=%s ip=%s via=api", email, request.META.get("REMOTE_ADDR")
            )
            audit(
                AuditAction.LOGIN_THROTTLED,
                by=Actor.of(request),
                target_label=email,
                success=False,
                details={"via": "api"},
            )
            return None, self._throttled(request, email, "login_failed", "throttled")
        return hits, None

    def _throttled(self, request, email: str, action: str, reason: str):
        seconds = throttle.retry_after(action)
        token_event(
            AuditAction.API_TOKEN_REFUSED,
            by=Actor.of(request),
            label=email,
            success=False,
            grant="password",
            error="too_many_requests",
            reason=reason,
            client_id=_client_id_asked(request),
        )
        return oauth_error(
            "too_many_requests",
            f"Too many login attempts. Try again in {throttle.wait_text(seconds)}.",
            429,
            Retry_After=str(seconds),
        )

    def _audit(self, request, grant: str, status: int, body: str, outcome) -> None:
        client, user = outcome.client, outcome.user
        if status == 200:
            action = (
                AuditAction.API_TOKEN_REFRESHED
                if grant == "refresh_token"
                else AuditAction.API_TOKEN_ISSUED
            )
            token_event(
                action,
                by=Actor.of(request),
                client=client,
                user=user,
                grant=grant,
                scope=outcome.scope,
            )
            if grant == "password":
                audit(
                    AuditAction.LOGIN_SUCCEEDED,
                    by=Actor.of(request, user=user),
                    target=user,
                    details={"method": "api_password", **client_facts(client)},
                )
            return
        try:
            error = str(json.loads(body or "{}").get("error", ""))[:64]
        except ValueError:
            error = ""
        if grant == "password" and not outcome.password_ok and outcome.reason:
            # The login form's event for a wrong password (or a blocked account).
            audit(
                AuditAction.LOGIN_FAILED,
                by=Actor.of(request),
                target=user if user is not None else None,
                target_label=outcome.label,
                success=False,
                details={
                    "reason": "blocked" if outcome.reason == "blocked" else "",
                    "via": "api",
                    **client_facts(client),
                },
            )
        action = (
            AuditAction.API_TOKEN_REPLAYED
            if outcome.reason in ("replay", "code_reused")
            else AuditAction.API_TOKEN_REFUSED
        )
        token_event(
            action,
            by=Actor.of(request),
            client=client,
            user=user,
            label=outcome.label,
            success=False,
            grant=grant[:64],
            error=error,
            reason=outcome.reason,
            family_revoked=True if outcome.family_revoked else None,
            client_id=None if client is not None else _client_id_asked(request),
        )


@method_decorator(csrf_exempt, name="dispatch")
class RevokeView(toolkit.RevokeTokenView):
    """POST /oauth/revoke/ (RFC 7009): always 200 for a client that
    authenticated, whatever the token; revoking an access token revokes its
    refresh token too."""

    def post(self, request, *args, **kwargs):
        if _nul_in(request):
            token_event(
                AuditAction.API_TOKEN_REFUSED,
                by=Actor.of(request),
                success=False,
                endpoint="revoke",
                error="invalid_request",
                reason="nul_byte",
                client_id=_client_id_asked(request),
            )
            return oauth_error("invalid_request", NUL_REFUSAL, 400)
        with recording(request) as outcome:
            response = super().post(request, *args, **kwargs)
            if response.status_code == 200 and outcome.reason == "revoked":
                token_event(
                    AuditAction.API_TOKEN_REVOKED,
                    by=Actor.of(request),
                    client=outcome.client,
                    user=outcome.user,
                    reason="client_request",
                )
            elif response.status_code != 200:
                token_event(
                    AuditAction.API_TOKEN_REFUSED,
                    by=Actor.of(request),
                    client=outcome.client,
                    success=False,
                    endpoint="revoke",
                    reason=outcome.reason,
                    client_id=_client_id_asked(request),
                )
        return response


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(never_cache, name="dispatch")
class IntrospectView(View):
    """POST /oauth/introspect/ (RFC 7662), for resource servers: the caller
    authenticates as a client (Basic or body credentials) holding the
    `introspect` scope. A token is active while unexpired, its account is
    active and, for client credentials, whoever holds its client's secret is
    too; its scope is what its client still allows (api.principal)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if _nul_in(request):
            return oauth_error("invalid_request", NUL_REFUSAL, 400)
        client = self._client(request)
        if client is None:
            return oauth_error(
                "invalid_client",
                "Client authentication failed.",
                401,
                WWW_Authenticate='Basic realm="oauth"',
            )
        if scope_rules.INTROSPECT not in scope_rules.parse(client.scope):
            return oauth_error(
                "insufficient_scope",
                "This client may not introspect tokens (scope introspect).",
                403,
            )
        value = request.POST.get("token")
        if not value:
            return oauth_error("invalid_request", "The token parameter is missing.", 400)
        return JsonResponse(self._describe(value))

    @staticmethod
    def _client(request) -> Client | None:
        core = toolkit.TokenView.get_oauthlib_core()
        from oauthlib.common import Request

        uri, method, body, headers = core._extract_params(request)
        oauth_request = Request(uri, method, body, headers)
        validator: OAuth2Validator = core.server.request_validator
        if validator.authenticate_client(oauth_request):
            # A secret whose holder (or service account) is blocked or
            # deleted carries nothing here either (api.principal).
            if secret_refused(oauth_request.client):
                return None
            return oauth_request.client
        return None

    @staticmethod
    def _describe(value: str) -> dict:
        import hashlib

        checksum = hashlib.sha256(value.encode()).hexdigest()
        token = (
            AccessToken.objects.select_related("user", "application")
            .filter(token_checksum=checksum)
            .first()
        )
        if token is None or not token.is_valid() or (token.user and not token.user.is_active):
            return {"active": False}
        if secret_refused(token.application):
            return {"active": False}  # its secret's holder is gone: it carries nothing
        data = {
            "active": True,
            "token_type": "Bearer",
            "scope": token_scope_now(token),
            "exp": int(token.expires.timestamp()),
            "iat": int(token.created.timestamp()),
        }
        if token.application is not None:
            data["client_id"] = token.application.client_id
        if token.user is not None:
            data["sub"] = str(token.user.pk)
            data["username"] = token.user.email
        return data


class AuthorizeView(toolkit.AuthorizationView):
    """GET/POST /oauth/authorize/: the consent page, behind the normal login
    (allauth's, with MFA and SSO; login_required sends people there with
    next=). A person approves a client once for a set of scopes; a later
    request for no more (and without approval_prompt=force) is answered at
    once. Only authorization-code clients get here (oauthlib refuses others)."""

    template_name = "api/authorize.html"

    def dispatch(self, request, *args, **kwargs):
        """A NUL byte in the query or form: a page saying so (the client
        named cannot even be looked up, so there is nowhere to redirect)."""
        if _nul_in(request):
            return render(request, "400.html", status=400)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        if request.GET.get("approval_prompt") != "force":
            approved = self._approved_response(request)
            if approved is not None:
                return approved
        return super().get(request, *args, **kwargs)

    def _approved_response(self, request):
        from oauth2_provider.exceptions import OAuthToolkitError

        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError:
            return None  # the toolkit's page says what is wrong
        client = Client.objects.filter(client_id=credentials.get("client_id")).first()
        if client is None or "prompt" in request.GET or "resource" in request.GET:
            return None
        approval = Approval.objects.filter(user=request.user, client=client).first()
        if approval is None or not set(scopes) <= set(approval.scope.split()):
            return None
        try:
            uri, headers, body, status = self.create_authorization_response(
                request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
            )
        except OAuthToolkitError as error:
            return self.error_response(error, client)
        return self.redirect(uri, client)

    def redirect(self, redirect_to, application):
        """Errors found before the toolkit loads the client (no PKCE, say) go
        back to the client too, under its own schemes (loopback http)."""
        if application is None:
            client_id = self.request.GET.get("client_id") or self.request.POST.get("client_id")
            application = Client.objects.filter(client_id=client_id).first() if client_id else None
        return super().redirect(redirect_to, application)

    def render_to_response(self, context, **kwargs):
        """The consent form's answer is a redirect to the client: CSP
        form-action must allow that origin, or the browser stops there."""
        response = super().render_to_response(context, **kwargs)
        target = urlsplit(context.get("redirect_uri") or "")
        if target.scheme in ("http", "https") and target.netloc:
            response._csp_update = {"form-action": [f"{target.scheme}://{target.netloc}"]}
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        client = kwargs.get("application")
        if client is not None:
            context["redirect_host"] = urlsplit(kwargs.get("redirect_uri") or "").netloc
            context["scope_rows"] = [(s, _scope_text(s)) for s in kwargs.get("scopes", [])]
        return context

    def form_valid(self, form):
        # The form's client id is the browser's to send: one naming no client
        # (a tampered form) was the toolkit's Client.DoesNotExist, a 500.
        if not Client.objects.filter(client_id=form.cleaned_data.get("client_id")).exists():
            return render(self.request, "400.html", status=400)
        response = super().form_valid(form)
        if form.cleaned_data.get("allow") and 300 <= response.status_code < 400:
            self._remember(form.cleaned_data)
        return response

    def _remember(self, data) -> None:
        client = Client.objects.filter(client_id=data.get("client_id")).first()
        if client is None:
            return
        scopes = set(scope_rules.parse(data.get("scope") or ""))
        try:
            with transaction.atomic():
                approval, created = Approval.objects.get_or_create(
                    user=self.request.user,
                    client=client,
                    defaults={"scope": " ".join(sorted(scopes))},
                )
                if not created and not scopes <= set(approval.scope.split()):
                    approval.scope = " ".join(sorted(scopes | set(approval.scope.split())))
                    approval.save(update_fields=["scope"])
        except IntegrityError:
            pass  # approved twice at once: one row is enough


class MetadataView(toolkit.OAuthServerMetadataView):
    """GET /.well-known/oauth-authorization-server (RFC 8414)."""


def _scope_text(scope: str) -> str:
    """What a scope means, in the reader's language (the consent page)."""
    from django.utils.translation import gettext

    if scope in scope_rules.DESCRIPTIONS:
        return gettext(scope_rules.DESCRIPTIONS[scope])
    if scope in scope_rules.all_scopes():
        return gettext("Only %(resource)s") % {"resource": scope}
    return scope
