import pytest
from django.core.cache import cache

from tests.factories import PASSWORD, UserFactory
from tests.oidc_fake import FakeIdP


@pytest.fixture(autouse=True)
def _isolated():
    """Each test starts with an empty cache (rate limits) and no compiled
    rules (SQLite reuses the primary keys of rolled-back rows)."""
    from accounts.access import forget_compiled

    cache.clear()
    forget_compiled()
    yield
    cache.clear()


@pytest.fixture
def seed_groups(transactional_db):
    """What the seed migration gives every install, for tests in real
    transactions (the database is emptied after each of them)."""
    import importlib

    from django.apps import apps

    importlib.import_module("accounts.migrations.0002_seed_groups").seed(apps, None)


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def user(db):
    return UserFactory(email="ada@shop.example", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def root_user(db):
    return UserFactory(
        email="root@shop.example", first_name="Grace", last_name="Hopper", groups=["root"]
    )


@pytest.fixture
def roots(db):
    """Two root members: one gives or asks, the other approves (four eyes)."""
    return [UserFactory(email=f"root{n}@shop.example", groups=["root"]) for n in (1, 2)]


@pytest.fixture
def admin(client, root_user):
    """The test client, logged in as root (a first-time admin's view)."""
    login(client, root_user.email, PASSWORD)
    return client


@pytest.fixture(scope="module")
def idp():
    """The in-process OpenID provider (tests/oidc_fake.py), one per module."""
    server = FakeIdP()
    yield server
    server.close()


@pytest.fixture
def fake(idp, settings):
    """`idp` configured as the one provider `fake`, its behaviour reset."""
    idp.reset_behaviour()
    idp.hits.clear()
    settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
    return idp


@pytest.fixture
def role_map(fake, settings, root_user):
    """`fake` with a ROLE_MAP: the provider's `it-admin` role gives root
    (operator trust), `ops` gives the group ops; root_user keeps access
    manageable."""
    from tests.factories import GroupFactory

    GroupFactory(name="ops")
    settings.IAM_SSO_PROVIDERS = {
        "fake": fake.oidc_config(role_map='{"it-admin": ["root"], "ops": ["ops"]}')
    }
    return fake


@pytest.fixture
def worker_database(tmp_path, request):
    """The URL of a migrated database that `manage.py worker` processes and
    the test share: a file on SQLite; the test database on PostgreSQL."""
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "postgresql":
        request.getfixturevalue("transactional_db")
        db = settings.DATABASES["default"]
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    from tests.servers import migrated_sqlite

    return migrated_sqlite(tmp_path / "worker.sqlite3")


def worker_env(url: str) -> dict:
    """The environment of a worker process on `url`; the cleanup is off, so
    only the worker's own minute schedules run."""
    import os

    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "iam.settings",
        "DATABASE_URL": url,
        "EMAIL_URL": "consolemail://",
        "IAM_MAINTENANCE_EVERY": "off",
    }


def login(client, email, password, **extra):
    return client.post("/login/", {"login": email, "password": password}, **extra)


def age_authentication(session, seconds: float = 11 * 60) -> None:
    """As if the session's last proof of identity (accounts.login) were
    `seconds` older: a sensitive action then asks for another."""
    from accounts.login import SESSION_AUTHENTICATED

    record = dict(session[SESSION_AUTHENTICATED])
    record["at"] -= seconds
    session[SESSION_AUTHENTICATED] = record
    session.save()


# --- No secret in any log line of the whole run (tests/support/secrets.py) ------

LOG_SECRETS = None


def pytest_configure(config):
    """Installed before any test module is imported, so even records logged
    while collecting are kept."""
    global LOG_SECRETS
    from tests.support import secrets

    LOG_SECRETS = secrets.SESSION = secrets.LogSecretCheck()
    LOG_SECRETS.remember(PASSWORD)
    LOG_SECRETS.install()


@pytest.fixture(scope="session", autouse=True)
def _secrets_used_are_remembered():
    from tests.oidc_fake import CLIENT_SECRET
    from tests.support.secrets import spy_on_generators

    spy_on_generators(LOG_SECRETS)
    LOG_SECRETS.remember(CLIENT_SECRET)
    return LOG_SECRETS


@pytest.fixture
def log_secrets():
    """The run's check: `log_secrets.remember(value)` for a secret a test
    makes itself."""
    return LOG_SECRETS


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a secret it used was logged."""
    if LOG_SECRETS is None:
        return
    LOG_SECRETS.uninstall()
    leaks = LOG_SECRETS.report()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = (
        f"log secret check: {LOG_SECRETS.records} records, "
        f"{len(LOG_SECRETS.secrets)} secrets, {'LEAKED' if leaks else 'none logged'}"
    )
    text = f"{summary}\n{leaks}" if leaks else summary
    if reporter is not None:
        reporter.write_line(text, red=bool(leaks))
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def sealing(settings):
    """The audit trail sealed at once (no settle window), with a known key."""
    settings.IAM_AUDIT_SEAL_SETTLE_SECONDS = 0
    settings.IAM_AUDIT_SEAL_KEY = "test-seal-key-" + "k" * 32
    return settings


@pytest.fixture
def signals_kept():
    """The worker command installs its own SIGINT/SIGTERM handlers."""
    import signal

    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for number, handler in kept.items():
        signal.signal(number, handler)


@pytest.fixture(scope="module")
def saml_files(tmp_path_factory):
    """A test SAML IdP (its key, certificate and metadata file), our SP key
    pair, and another key pair for forgeries: made once per module, as key
    generation is the slow part (tests.support.saml)."""
    from tests.support.saml import HostileIdP, key_and_cert

    directory = tmp_path_factory.mktemp("saml")
    sp_key, sp_cert = key_and_cert(directory, "sp")
    other_key, other_cert = key_and_cert(directory, "other-idp")
    return {
        "idp": HostileIdP(directory),
        "sp_key": sp_key,
        "sp_cert": sp_cert,
        "other_key": other_key.read_bytes(),
        "other_cert": other_cert.read_bytes(),
    }


@pytest.fixture(scope="module")
def check_env(tmp_path_factory):
    """The environment of `manage.py check` run as an operator runs it (a
    separate process): a migrated SQLite database of its own (the seeded
    groups included), no IAM_SSO_* of the test run's."""
    import os

    from tests.servers import migrated_sqlite

    db = tmp_path_factory.mktemp("check") / "check.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IAM_SSO_", "DATABASE_URL"))}
    env.pop("CACHE_URL", None)
    env.update(DATABASE_URL=migrated_sqlite(db), DJANGO_SETTINGS_MODULE="iam.settings")
    return env
