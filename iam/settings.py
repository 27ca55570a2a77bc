"""Settings, read once from the environment (see README "Configuration").

Every knob an operator may turn is an environment variable listed in the
operator contract; code reads `django.conf.settings`, never `os.environ`.
"""

import os
from pathlib import Path

import environ
from django.contrib.messages import constants as message_constants
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEV_SECRET_KEY = "django-insecure-dev-key-do-not-use-in-production"  # noqa: S105

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "django_tasks",
    "django_tasks_db",
    "accounts",
    "backoffice",
    "sso",
    "oauth2_provider",
    "rest_framework",
    "drf_spectacular",
    "api",
    "scim",
    "maintenance",
    "stream",
    "trail",
    "reviews",
]

MIDDLEWARE = [
    # First of all: every response (health, errors) carries X-Request-ID.
    "iam.request_id.RequestIdMiddleware",
    "iam.health.HealthCheckMiddleware",
    # Machine-facing paths (/api/, /oauth/) answer every error in JSON.
    "api.middleware.JsonErrorsMiddleware",
    "accounts.middleware.TrustedProxyMiddleware",
    # /metrics (by IP Host, before host checks; the client address judged
    # just above) and every request's latency (iam.metrics_http).
    "iam.metrics_http.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's, keeping the view's answer when only the session save meets an outage.
    "iam.sessions.middleware.SessionMiddleware",
    # The language: the language cookie (the login page's switcher), else the
    # browser's Accept-Language; a logged-in user's own choice overrides both
    # (accounts.middleware.UserLanguageMiddleware, after authentication).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "iam.http.ResponseHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    "accounts.middleware.MfaPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "iam.urls"
WSGI_APPLICATION = "iam.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backoffice.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a health check that needs no round trip.
    DATABASES["default"]["ENGINE"] = "iam.db.postgresql"
    # The bound of a request's queries (the app server has no request timeout); 0: none.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", f"-c statement_timeout={env.int('DATABASE_STATEMENT_TIMEOUT', default=30)}s"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must not fail under concurrent writes: every
    # transaction takes SQLite's one write lock when it begins (IMMEDIATE), so
    # two writers queue instead of failing on a lock upgrade; a writer waits
    # up to `timeout` seconds for it; WAL lets readers go on meanwhile. This
    # also serialises access writes (accounts.delegation), as PostgreSQL's
    # advisory lock does there.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=20,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://iam")}
CACHES["default"].setdefault("KEY_PREFIX", "iam")
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "iam.cache.RedisCache"
    # Fail fast when Redis is down or hangs (the page says "unavailable" and
    # /readyz turns 503) instead of holding a worker thread; one immediate
    # retry on a fresh connection rides over a Redis restart.
    CACHES["default"].setdefault("OPTIONS", {}).update(
        socket_connect_timeout=env.float("CACHE_CONNECT_TIMEOUT", default=1.0),
        socket_timeout=env.float("CACHE_TIMEOUT", default=1.0),
        retry_on_error=[RedisConnectionError],
        retry=Retry(NoBackoff(), 1),
    )
# A shared cache (Redis) is what several app servers agree on: rate limits,
# compiled access rules, OIDC metadata and session reads. A local-memory cache
# is per process: fine for one dev process, wrong for several app server
# processes or hosts
# (check --deploy warns, iam.W002).
CACHE_IS_SHARED = not CACHES["default"]["BACKEND"].endswith(("LocMemCache", "DummyCache"))

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# The product's name in mails (greeting, subject prefix, closing, sender):
# never the request's host name.
IAM_PRODUCT_NAME = env.str("IAM_PRODUCT_NAME", default="Back Office")
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default=f"{IAM_PRODUCT_NAME} <no-reply@localhost>"
)
# A hanging SMTP server must not hold the mail worker for ever: the attempt
# fails after this many seconds and is retried later (accounts.mail).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- Mail queue ---------------------------------------------------------------

# Every mail is a task in the database (django-tasks-db), sent by the worker
# `manage.py worker` (maintenance.worker), never inside a request
# (accounts.mail says why).
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        # mail: accounts.mail; events: the security-event webhook (stream.webhook).
        "QUEUES": ["mail", "events"],
    }
}
# A failed send is retried after 1, 2, 4, 8, 16 minutes (doubling from the
# first delay); the sixth failure gives up (FAILED, listed by `mailqueue`).
IAM_MAIL_MAX_ATTEMPTS = env.int("IAM_MAIL_MAX_ATTEMPTS", default=6)
IAM_MAIL_RETRY_SECONDS = env.int("IAM_MAIL_RETRY_SECONDS", default=60)

# --- Maintenance (maintenance/: the worker's cleanup, README "Maintenance and outages")

# How often the worker removes expired sessions, tokens, finished mail tasks:
# `1h`, `30m`, `15s`, `1d`; `0` or `off`: never (then run `manage.py
# maintenance --once` from a scheduler of your own). Checked at start-up.
IAM_MAINTENANCE_EVERY = env.str("IAM_MAINTENANCE_EVERY", default="1h")
# Finished mail tasks are kept this long (failed ones longer: `mailqueue` lists them).
IAM_MAINTENANCE_KEEP_SENT_DAYS = 7
IAM_MAINTENANCE_KEEP_FAILED_DAYS = 30

# --- The audit trail's seals and retention (trail/: README "Tamper evidence and retention")

# The key of the seals, kept outside the database (a secret store); unset,
# derived from the secret key (trail.keys). Changing it makes `audit verify`
# report a key change for the seals made before.
IAM_AUDIT_SEAL_KEY = env.str("IAM_AUDIT_SEAL_KEY", default="")
# Keys used before (comma list): seals made with them still verify.
IAM_AUDIT_SEAL_OLD_KEYS = env.list("IAM_AUDIT_SEAL_OLD_KEYS", default=[])
# The worker seals every this many seconds the events older than the settle
# window (their transactions have long committed), at most a batch per seal.
IAM_AUDIT_SEAL_EVERY = env.int("IAM_AUDIT_SEAL_EVERY", default=60)
IAM_AUDIT_SEAL_SETTLE_SECONDS = env.int("IAM_AUDIT_SEAL_SETTLE_SECONDS", default=300)
IAM_AUDIT_SEAL_BATCH = 10_000
# Events older than this many days are archived (IAM_AUDIT_ARCHIVE_DIR, which
# is then required: checked at start-up), then leave the table. Unset: kept.
_retention = env.str("IAM_AUDIT_RETENTION_DAYS", default="").strip()
try:
    IAM_AUDIT_RETENTION_DAYS = int(_retention) if _retention else None
except ValueError:
    raise environ.ImproperlyConfigured(
        f"IAM_AUDIT_RETENTION_DAYS must be a whole number of days, not {_retention!r}"
    ) from None
IAM_AUDIT_ARCHIVE_DIR = env.str("IAM_AUDIT_ARCHIVE_DIR", default="")

# --- Accounts and passwords ------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]

PASSWORD_HASHERS = [
    "accounts.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    # API client secrets only (api.hashers says why a fast hash is right there).
    "api.hashers.ClientSecretHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "first_name", "last_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.passwords.NotTheCurrentPasswordValidator"},
]

PASSWORD_RESET_TIMEOUT = 60 * 60  # a reset link lives one hour

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/login/"

# --- django-allauth: login by email only, signup closed ----------------------

ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# allauth's own forms, with our email key instead of str.lower() (accounts.forms).
ACCOUNT_FORMS = {
    "login": "accounts.forms.LoginForm",
    # "Forgot password?" queues the request; the mail worker looks the address up.
    "reset_password": "accounts.forms.ResetPasswordForm",
    "change_password": "accounts.forms.ChangePasswordForm",  # labels in sentence case
}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False  # this session stays; the others end
ACCOUNT_EMAIL_NOTIFICATIONS = True  # "your password was changed" mail
ACCOUNT_REAUTHENTICATION_TIMEOUT = 10 * 60
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_CHANGE_EMAIL = False
ACCOUNT_PASSWORD_RESET_TOKEN_GENERATOR = "accounts.tokens.PasswordResetTokens"
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{IAM_PRODUCT_NAME}] "
# Password logins are throttled by accounts.throttle (one round trip per
# check), with allauth's rate syntax.
IAM_LOGIN_THROTTLES = {
    # Failed logins: per client IP, and per account (the email typed).
    "login_failed": env.str("IAM_RATE_LOGIN_FAILED", default="10/m/ip,5/5m/key"),
    # All login attempts per client IP; raise it when a whole office logs in
    # through one NAT address.
    "login": env.str("IAM_RATE_LOGIN", default="30/m/ip"),
    # Wrong SCIM bearer tokens per client IP: beyond it, 429 and no more
    # audit rows (the earlier ones are in the trail).
    "scim_auth_failed": "30/m/ip",
    # Refused back-channel logout tokens per client IP: beyond it, 429 and no
    # more audit rows (anyone on the internet may post there).
    "sso_logout_refused": "30/m/ip",
}
ACCOUNT_RATE_LIMITS = {
    # allauth still counts wrong MFA codes as "login_failed" (per account and
    # IP, in its own counters); password logins are not limited twice.
    "login_failed": IAM_LOGIN_THROTTLES["login_failed"],
    "login": None,
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}
USERSESSIONS_TRACK_ACTIVITY = False  # last seen is written by our session middleware

MFA_ADAPTER = "accounts.mfa.MFAAdapter"
# Security keys (WebAuthn) are a second factor like an authenticator app, and
# a passkey (a key that holds the account and checks a PIN or fingerprint)
# logs in on its own from the login page (accounts.login.passkey_login). The
# relying party is the host the page was served from (allauth's default: id
# and name from the request's host), so a key works on the host it was
# registered on; http is accepted for localhost only (python-fido2).
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_PASSKEY_SIGNUP_ENABLED = False
MFA_FORMS = {
    "add_webauthn": "accounts.mfa.AddWebAuthnForm",  # no passkey for SSO-only
    "login_webauthn": "accounts.mfa.LoginWebAuthnForm",  # a malformed credential: refused
    # The TOTP set-up keeps its secret across visits (accounts.mfa.SetupTOTPForm).
    "activate_totp": "accounts.mfa.SetupTOTPForm",
    # Our labels ("Code from your authenticator app", "Name").
    "authenticate": "accounts.mfa.AuthenticateForm",
    "reauthenticate": "accounts.mfa.ReauthenticateForm",
    "edit_webauthn": "accounts.mfa.EditWebAuthnForm",
}
# allauth would ask for the password again even right after login; our own
# rule (accounts.reauth: last authentication within 10 minutes) guards the
# MFA pages instead, in iam/urls.py.
MFA_REAUTHENTICATION_REQUIRED = False
MFA_TOTP_ISSUER = env.str("IAM_MFA_TOTP_ISSUER", default="Back Office")
MFA_RECOVERY_CODE_COUNT = 10
MFA_TOTP_TOLERANCE = 1  # accept the previous/next 30 s code: clocks and typing drift

# --- Sessions ---------------------------------------------------------------

IAM_SESSION_IDLE_MINUTES = env.int("IAM_SESSION_IDLE_MINUTES", default=30)
IAM_SESSION_MAX_HOURS = env.int("IAM_SESSION_MAX_HOURS", default=10)
# Sessions live in the database (the record: they survive a cache restart or
# eviction, and "end all sessions" is one DELETE) and are read through the
# cache when it is shared, so a warm page costs no session query. With a
# per-process cache a session ended by one worker would still be cached in
# another, so then sessions are read from the database only.
# iam.sessions: Django's stores, but a login writes its new session once.
SESSION_ENGINE = "iam.sessions.cached_db" if CACHE_IS_SHARED else "iam.sessions.db"
SESSION_COOKIE_AGE = IAM_SESSION_MAX_HOURS * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_NAME = "iam_session"
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
MESSAGE_TAGS = {message_constants.ERROR: "error"}

# --- SSO and MFA (used by later capabilities; parsed here once) -------------

IAM_SSO_STRATEGY = env.str("IAM_SSO_STRATEGY", default="pre-registered")
IAM_SSO_DEFAULT_GROUP = env.str("IAM_SSO_DEFAULT_GROUP", default="backoffice-users")


def _sso_provider(pid: str) -> dict:
    """One provider's raw settings from IAM_SSO_<ID>_*; `sso.checks` and the
    provider classes validate them (a bad value is a clear start-up error)."""
    prefix = f"IAM_SSO_{pid.upper().replace('-', '_')}_"
    return {
        "id": pid,
        "kind": env.str(prefix + "KIND", default=""),
        "name": env.str(prefix + "NAME", default=pid),
        "client_id": env.str(prefix + "CLIENT_ID", default=""),
        "client_secret": env.str(prefix + "CLIENT_SECRET", default=""),
        "tenant": env.str(prefix + "TENANT", default=""),
        "authority": env.str(prefix + "AUTHORITY", default="https://login.microsoftonline.com"),
        "issuer": env.str(prefix + "ISSUER", default=""),
        "scopes": env.str(prefix + "SCOPES", default="openid email profile").split(),
        "role_claim": env.str(prefix + "ROLE_CLAIM", default="roles"),
        "role_map": env.str(prefix + "ROLE_MAP", default="{}"),
        "strategy": env.str(prefix + "STRATEGY", default="") or IAM_SSO_STRATEGY,
        "allowed_tenants": env.list(prefix + "ALLOWED_TENANTS", default=[]),
        "pkce": env.str(prefix + "PKCE", default="true"),
        "logout": env.str(prefix + "LOGOUT", default="true"),
        "reauth": env.str(prefix + "REAUTH", default="max_age"),
        "trust_email": env.str(prefix + "TRUST_EMAIL", default="false"),
        "frontchannel": env.str(prefix + "FRONTCHANNEL", default="false"),
        # SAML 2.0 (kind saml): the IdP's metadata (URL or file), the attribute
        # holding roles, our signing certificate and key (PEM files), whether
        # unsolicited (IdP-initiated) responses count, our entity id.
        "metadata": env.str(prefix + "METADATA", default=""),
        "role_attribute": env.str(prefix + "ROLE_ATTRIBUTE", default="Role"),
        "sp_cert": env.str(prefix + "SP_CERT", default=""),
        "sp_key": env.str(prefix + "SP_KEY", default=""),
        "idp_initiated": env.str(prefix + "IDP_INITIATED", default="false"),
        "entity_id": env.str(prefix + "ENTITY_ID", default=""),
    }


IAM_SSO_PROVIDERS = {
    pid: _sso_provider(pid)
    for pid in (p.strip().lower() for p in env.list("IAM_SSO_PROVIDERS", default=[]))
    if pid
}
IAM_SSO_HTTP_TIMEOUT = env.float("IAM_SSO_HTTP_TIMEOUT", default=5.0)
# Calls to identity providers at once per process (a granian worker has 4
# threads): a hanging provider can hold these threads, never all of them.
IAM_SSO_MAX_CONCURRENT_CALLS = env.int("IAM_SSO_MAX_CONCURRENT_CALLS", default=2)
IAM_MFA_REQUIRED_GROUPS = env.list("IAM_MFA_REQUIRED_GROUPS", default=["root"])

# --- Back Office API: OAuth 2.0 (django-oauth-toolkit) and the JSON API -----

IAM_API_ACCESS_TOKEN_MINUTES = env.int("IAM_API_ACCESS_TOKEN_MINUTES", default=30)
IAM_API_REFRESH_TOKEN_DAYS = env.int("IAM_API_REFRESH_TOKEN_DAYS", default=30)
# API clients carry what the toolkit's Application lacks: the account a
# service client acts as, and the scopes it may ask for (api.models).
OAUTH2_PROVIDER_APPLICATION_MODEL = "api.Client"
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "api.oauth.validator.Validator",
    "SCOPES_BACKEND_CLASS": "api.scopes.ScopesBackend",
    "SCOPES": {"read": "Read", "write": "Write", "introspect": "Introspect tokens"},
    "ACCESS_TOKEN_EXPIRE_SECONDS": IAM_API_ACCESS_TOKEN_MINUTES * 60,
    # A refresh token dies this long after its access token expired (the
    # toolkit's sliding expiry); with rotation each one is used at most once.
    "REFRESH_TOKEN_EXPIRE_SECONDS": IAM_API_REFRESH_TOKEN_DAYS * 86400,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,  # a replayed refresh token kills its family
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "PKCE_REQUIRED": True,
    "REQUEST_APPROVAL_PROMPT": "auto",  # approved once per client (api.models.Approval)
    "CLIENT_SECRET_HASHER": "client_sha256",
    # https only; a client registered for a loopback http:// URI (RFC 8252
    # native apps, tests) may use it (api.models.Client.get_allowed_schemes).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": [
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    ],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    # RFC 9700 (OAuth security BCP), every recommendation but the password
    # grant, which is the platform's compatibility path: off unless a client
    # is created for it, refused for MFA accounts, throttled like the login
    # form (api.oauth.validator), hence oauth2_provider.W002 is silenced.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # only SHA-256 checksums are stored
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W002"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasToken"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Back Office API",
    "DESCRIPTION": "Users, groups, roles and the audit trail, under the screens' access rules.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {"StatusEnum": "accounts.models.User.Status"},
}

# --- HTTP hardening ---------------------------------------------------------

IAM_TRUSTED_PROXIES = env.list("IAM_TRUSTED_PROXIES", default=[])

# --- Metrics (README "Metrics") -------------------------------------------------

# /metrics answers a bearer of this token, or a client address in
# IAM_METRICS_ALLOW (addresses or networks); with neither, nobody.
IAM_METRICS_TOKEN = env.str("IAM_METRICS_TOKEN", default="")
IAM_METRICS_ALLOW = env.list("IAM_METRICS_ALLOW", default=[])
# Several worker processes (granian) each count into files in this folder,
# summed at a scrape (prometheus_client's multiprocess mode). The library
# reads the variable itself, once, when it is first imported, which is after
# this module: the folder is made here so no process finds it missing; it is
# emptied by whatever starts the server (Dockerfile CMD, `make run`).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
else:
    # Set but empty would still switch the library to files (in the cwd).
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# --- Static files -----------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "DJANGO_STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Languages (README "Languages") -------------------------------------------

# English and German. A logged-in user's `language` field wins; before login
# (or with the field blank) the language cookie set by the login page's
# switcher, then the browser's Accept-Language; English otherwise.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]  # each in its own language
LOCALE_PATHS = [BASE_DIR / "locale"]  # locale/de/LC_MESSAGES/django.po, compiled by `make install`
LANGUAGE_COOKIE_NAME = "iam_language"
LANGUAGE_COOKIE_AGE = 365 * 86400
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_HTTPONLY = True
# Dates and times in each language's own short formats (iam/formats/<lang>/).
FORMAT_MODULE_PATH = ["iam.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security-event stream (stream/; README "Security-event stream (OCSF)") -----

# Each committed audit event as one OCSF JSON line on the logger `iam.ocsf`:
# "" (off), "stderr", "stdout", or a file path (appended; reopened when a log
# rotation moves it).
IAM_EVENTS_LOG = env.str("IAM_EVENTS_LOG", default="").strip()
# ...and in signed batches to an HTTPS webhook, through the worker's queue
# (stream.webhook checks these at start-up: https only, but for loopback;
# a secret of 32 characters or more).
IAM_EVENTS_WEBHOOK_URL = env.str("IAM_EVENTS_WEBHOOK_URL", default="").strip()
IAM_EVENTS_WEBHOOK_SECRET = env.str("IAM_EVENTS_WEBHOOK_SECRET", default="")
# A CA bundle (PEM) the receiver's certificate is checked against instead of
# the system's (a private CA).
IAM_EVENTS_WEBHOOK_CA_FILE = env.str("IAM_EVENTS_WEBHOOK_CA_FILE", default="").strip()
# Seconds for the receiver's whole answer (status and headers).
IAM_EVENTS_WEBHOOK_TIMEOUT = env.float("IAM_EVENTS_WEBHOOK_TIMEOUT", default=5.0)
# A failed delivery is tried again after 30 s, 1, 2, 4 ... minutes (doubling);
# the eighth failure gives up (a dead letter: the task stays FAILED).
IAM_EVENTS_WEBHOOK_MAX_ATTEMPTS = env.int("IAM_EVENTS_WEBHOOK_MAX_ATTEMPTS", default=8)
IAM_EVENTS_WEBHOOK_RETRY_SECONDS = env.int("IAM_EVENTS_WEBHOOK_RETRY_SECONDS", default=30)

# Logs on stderr: text lines (the default), or one JSON object a line with
# IAM_LOG_FORMAT=json; either way with the request id (iam.logs).
IAM_LOG_FORMAT = env.str("IAM_LOG_FORMAT", default="text").strip().lower()
if IAM_LOG_FORMAT not in ("text", "json"):
    raise environ.ImproperlyConfigured(
        f"IAM_LOG_FORMAT must be text or json, not {IAM_LOG_FORMAT!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # trace_id/span_id on each record while a span is current (iam.telemetry).
    "filters": {
        "trace": {"()": "iam.telemetry.TraceContextFilter"},
        # Django's request lines name the path: a link's key out of it (iam.accesslog).
        "redact": {"()": "iam.accesslog.RedactPaths"},
    },
    "formatters": {
        "text": {"()": "iam.logs.TextFormatter"},
        "json": {"()": "iam.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": IAM_LOG_FORMAT,
            "filters": ["trace"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["redact"]},
        "django.security.csrf": {"filters": ["redact"]},
        # The security-event stream: bare OCSF JSON lines, apart from the
        # other logs (off unless IAM_EVENTS_LOG names where).
        "iam.ocsf": {
            "handlers": ["ocsf"] if IAM_EVENTS_LOG else [],
            "level": "INFO" if IAM_EVENTS_LOG else "CRITICAL",
            "propagate": False,
        },
    },
}
if IAM_EVENTS_LOG:
    LOGGING["formatters"]["ocsf"] = {"format": "%(message)s"}
    if IAM_EVENTS_LOG in ("stderr", "stdout"):
        LOGGING["handlers"]["ocsf"] = {
            "class": "logging.StreamHandler",
            "formatter": "ocsf",
            "stream": f"ext://sys.{IAM_EVENTS_LOG}",
        }
    else:
        LOGGING["handlers"]["ocsf"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "formatter": "ocsf",
            "filename": IAM_EVENTS_LOG,
            "encoding": "utf-8",
        }

# --- Traces (OpenTelemetry; README "Traces") -----------------------------------
# Off unless an OTLP endpoint is set. Only these are read here; every other
# OTEL_* variable (service name, headers, timeouts, sampler) is read by the
# OpenTelemetry SDK itself when iam.telemetry sets it up.
TRACES_ENABLED = bool(
    env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default="")
    or env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
) and not env.bool("OTEL_SDK_DISABLED", default=False)
TRACES_PROTOCOL = env.str("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", default="") or env.str(
    "OTEL_EXPORTER_OTLP_PROTOCOL", default="http/protobuf"
)
# Probes and scrapes make no trace (regular expressions searched in the URL).
TRACES_EXCLUDED_URLS = env.str("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", default="") or env.str(
    "OTEL_PYTHON_EXCLUDED_URLS", default="/healthz,/readyz,/metrics,/static/"
)
