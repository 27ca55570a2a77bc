"""The example stack (docker-compose.yml, the image, nginx, Keycloak realm)
is valid and its parts agree with each other and with the app's settings.
Validated with the Docker Compose v2 binary (`docker compose config`, no
engine needed); the image's granian settings are read by granian's own
command line."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import click
import compose
import pytest
from granian.cli import cli as granian_cli

from tests.servers import image

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = Path(compose.__file__).parent / "docker-compose"
REALM = ROOT / "deploy/keycloak/backoffice-realm.json"


def _compose(*args):
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME")},
    )


@pytest.fixture(scope="module")
def stack():
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def realm():
    return json.loads(REALM.read_text())


def test_docker_compose_config_validates():
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_validator_does_refuse_a_bad_file(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  app:\n    image: x\n    restart_policy: always\n")
    result = subprocess.run(
        [str(COMPOSE), "-f", str(bad), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "restart_policy" in result.stderr


def test_stack_has_the_production_topology(stack):
    services = stack["services"]
    assert {"app", "worker", "postgres", "redis", "nginx", "keycloak"} <= set(services)
    app = services["app"]
    assert app["deploy"]["replicas"] >= 2  # several app servers behind nginx
    assert app["environment"]["DATABASE_URL"].startswith("postgres://")
    assert app["environment"]["CACHE_URL"].startswith("redis://")
    assert "readyz" in " ".join(app["healthcheck"]["test"])
    assert app.get("command") is None  # the image's: granian


def test_a_mail_worker_runs_beside_the_app(stack):
    """Mail is never sent in a request: the worker of the queue sends it."""
    worker = stack["services"]["worker"]
    app = stack["services"]["app"]
    assert worker["image"] == app["image"]
    # Ours: mail, maintenance, and it waits out a database outage.
    assert worker["command"] == ["python", "manage.py", "worker"]
    assert worker["environment"]["DATABASE_URL"] == app["environment"]["DATABASE_URL"]
    assert worker["environment"].get("EMAIL_URL") == app["environment"].get("EMAIL_URL")
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["healthcheck"]["disable"]
    run = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "manage.py worker " in run  # `make run` starts it too


def test_app_trusts_forwarded_headers_from_nginx_only(stack):
    nginx = stack["services"]["nginx"]["networks"]["backoffice"]
    app_env = stack["services"]["app"]["environment"]
    assert app_env["IAM_TRUSTED_PROXIES"] == nginx["ipv4_address"]
    conf = (ROOT / "deploy/nginx/nginx.conf").read_text()
    assert "X-Forwarded-Proto $scheme" in conf and "listen 8443 ssl" in conf


def test_keycloak_realm_matches_the_app_configuration(stack, realm):
    env = stack["services"]["app"]["environment"]
    (client,) = [c for c in realm["clients"] if c["clientId"] == env["IAM_SSO_KEYCLOAK_CLIENT_ID"]]
    assert client["secret"] == env["IAM_SSO_KEYCLOAK_CLIENT_SECRET"]
    assert client["redirectUris"] == ["https://localhost:8443/sso/keycloak/callback/"]
    assert client["standardFlowEnabled"] and not client["directAccessGrantsEnabled"]
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    roles = {r["name"] for r in realm["roles"]["client"]["backoffice"]}
    assert len(roles) == 2 and roles == set(json.loads(env["IAM_SSO_KEYCLOAK_ROLE_MAP"]))
    (mapper,) = client["protocolMappers"]
    assert mapper["config"]["claim.name"] == "roles" and mapper["config"]["id.token.claim"]
    issuer = env["IAM_SSO_KEYCLOAK_ISSUER"]
    kc_hostname = stack["services"]["keycloak"]["environment"]["KC_HOSTNAME"]
    assert issuer == f"{kc_hostname}/realms/{realm['realm']}"
    host = issuer.split("//")[1].split(":")[0]
    assert host in stack["services"]["nginx"]["networks"]["backoffice"]["aliases"]


def test_keycloak_realm_demonstrates_single_logout(stack, realm):
    """Keycloak's back-channel logout URL is our endpoint, at a name nginx
    answers to inside the network (an alias its certificate covers), that
    the app accepts as a host; logout sends the browser back to our login page."""
    from urllib.parse import urlsplit

    from django.urls import reverse

    env = stack["services"]["app"]["environment"]
    (client,) = [c for c in realm["clients"] if c["clientId"] == env["IAM_SSO_KEYCLOAK_CLIENT_ID"]]
    assert client["frontchannelLogout"] is False  # else Keycloak skips the back channel
    attributes = client["attributes"]
    url = urlsplit(attributes["backchannel.logout.url"])
    assert url.scheme == "https" and url.port == 8443
    assert url.path == reverse("sso:backchannel_logout", kwargs={"provider_id": "keycloak"})
    assert url.hostname in stack["services"]["nginx"]["networks"]["backoffice"]["aliases"]
    assert url.hostname in env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert f"DNS:{url.hostname}" in " ".join(stack["services"]["tls"]["command"])
    assert attributes["backchannel.logout.session.required"] == "true"
    assert stack["services"]["keycloak"]["environment"]["KC_TRUSTSTORE_PATHS"] == "/tls/tls.crt"
    assert attributes["post.logout.redirect.uris"] == "https://localhost:8443/login/"


def test_app_environment_passes_the_deploy_checks(stack):
    env = {k: str(v) for k, v in stack["services"]["app"]["environment"].items()}
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}, **env}
    env["DJANGO_SETTINGS_MODULE"] = "iam.settings"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


NGINX = (ROOT / "deploy/nginx/nginx.conf").read_text()
DOCKERFILE_TEXT = (ROOT / "Dockerfile").read_text()
GRANIAN_OPTIONS = {
    f"GRANIAN_{p.name.upper()}": p for p in granian_cli.params if isinstance(p, click.Option)
}


def _granian_reads(env: dict) -> dict:
    """The options granian's command line makes of `env` (as it runs: every
    option from GRANIAN_<NAME>), types and ranges checked by granian."""
    with mock.patch.dict(os.environ, env):
        return granian_cli.make_context(
            "granian", ["iam.wsgi:application"], auto_envvar_prefix="GRANIAN"
        ).params


def test_the_image_runs_granian_with_the_measured_settings():
    built = image()
    env = {k: v for k, v in built["env"].items() if k.startswith("GRANIAN_")}
    assert set(env) <= set(GRANIAN_OPTIONS)  # a misspelt one would be silently ignored
    assert built["cmd"][:2] == ["sh", "-c"]
    assert built["cmd"][2].endswith("exec granian iam.wsgi:application")
    options = _granian_reads(env)
    assert options["interface"] == "wsgi"
    assert options["blocking_threads"] == 4
    assert options["runtime_threads"] == 1
    assert options["http"] == "1"
    assert options["http1_header_read_timeout"] == 60000  # the idle keep-alive close
    assert options["respawn_failed_workers"] is True
    assert options["workers_lifetime"] >= 3600
    assert options["log_access_enabled"] is True
    assert "query_string" not in options["log_access_fmt"]
    assert "header{user-agent}" in options["log_access_fmt"]
    assert "GRANIAN_WORKERS" not in env  # one per core + 1, made by the CMD
    # The log configuration is in the image, and where GRANIAN_LOG_CONFIG says.
    assert f"COPY {env['GRANIAN_LOG_CONFIG']} " in DOCKERFILE_TEXT


@pytest.mark.parametrize("given", [None, "5"])
def test_the_image_makes_one_worker_per_core_plus_one_unless_told(tmp_path, given):
    """The CMD's shell with a stand-in `granian` that prints what it got."""
    fake = tmp_path / "granian"
    fake.write_text('#!/bin/sh\necho "$GRANIAN_WORKERS $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    if given:
        env["GRANIAN_WORKERS"] = given
    out = subprocess.run(image()["cmd"], env=env, capture_output=True, text=True, check=True)
    cores = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    assert out.stdout.split() == [given or str(cores + 1), "iam.wsgi:application"]


def test_compose_sets_only_granian_knobs_that_exist(stack):
    app_env = stack["services"]["app"]["environment"]
    knobs = {k: str(v) for k, v in app_env.items() if k.startswith("GRANIAN_")}
    assert set(knobs) <= set(GRANIAN_OPTIONS)
    options = _granian_reads({**image()["env"], **knobs})
    assert options["workers"] >= 1
    assert "GUNICORN" not in json.dumps(stack)


def test_nginx_closes_idle_app_connections_before_granian_does(stack):
    """nginx's upstream keepalive_timeout below the server's idle close (the
    header-read timeout), both in the image and as compose sets it: else a
    request on a connection the server is closing gets no answer."""
    upstream = re.search(r"upstream app \{(.*?)\}", NGINX, re.DOTALL)[1]
    proxy_idle = int(re.search(r"keepalive_timeout (\d+)s;", upstream)[1])
    env = {**image()["env"], **stack["services"]["app"]["environment"]}
    server_idle = _granian_reads(env)["http1_header_read_timeout"] / 1000
    assert proxy_idle < server_idle <= 60
    assert server_idle - proxy_idle >= 5  # room for clocks and a loaded machine
    # nginx speaks keep-alive HTTP/1.1 to the app on the image's port.
    port = image()["env"]["GRANIAN_PORT"]
    assert f"server app:{port};" in upstream and "keepalive 32;" in upstream
    assert "proxy_http_version 1.1;" in NGINX and 'proxy_set_header Connection "";' in NGINX
    assert f"127.0.0.1:{port}/readyz" in " ".join(stack["services"]["app"]["healthcheck"]["test"])


def test_a_client_waits_longer_than_a_query_may_run(stack):
    """nginx's proxy_read_timeout above the app's statement_timeout (30 s
    unless DATABASE_STATEMENT_TIMEOUT says), so the app's 503 shows before
    nginx's 504; migrations run without the bound."""
    read = int(re.search(r"proxy_read_timeout (\d+)s;", NGINX)[1])
    assert read > 30
    assert stack["services"]["migrate"]["environment"]["DATABASE_STATEMENT_TIMEOUT"] == "0"
    assert "DATABASE_STATEMENT_TIMEOUT" not in stack["services"]["app"]["environment"]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL only"
)
@pytest.mark.django_db
def test_a_query_runs_30_s_at_most_on_postgresql():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("30s",)


def test_granian_log_config_redacts_and_keeps_granian_own_lines():
    """It replaces granian's logging altogether: the access handler carries
    the redaction, granian's own logger still has a handler, and the whole
    is a valid dictConfig whose filter imports (checked in a process of its
    own, as granian applies it)."""
    path = ROOT / image()["env"]["GRANIAN_LOG_CONFIG"]
    config = json.loads(path.read_text())
    assert config["filters"]["redact"]["()"] == "iam.accesslog.RedactSecrets"
    access = config["loggers"]["granian.access"]
    assert all("redact" in config["handlers"][h]["filters"] for h in access["handlers"])
    assert config["loggers"]["_granian"]["handlers"]
    assert config["disable_existing_loggers"] is False  # Django's loggers come after
    code = (
        "import json, logging, logging.config, sys; "
        "logging.config.dictConfig(json.load(open(sys.argv[1]))); "
        "logging.getLogger('granian.access').info('%(path)s', "
        "{'path': '/password/reset/key/1-k-s/', 'query_string': 'code=x'})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "/password/reset/key/<redacted>/\n"


def test_readme_documents_the_image_defaults():
    """Each GRANIAN_* default of the image is in README's table of knobs."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Production deployment", 1)[1].split("\n## ", 1)[0]
    for key, value in image()["env"].items():
        if key.startswith("GRANIAN_") and key != "GRANIAN_LOG_ACCESS_FMT":
            row = next((line for line in table.splitlines() if f"`{key}`" in line), "")
            assert f"`{value}`" in row, f"{key}={value} not in README's table"
