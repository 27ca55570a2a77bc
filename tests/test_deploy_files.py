"""The example stack (docker-compose.yml, nginx, Keycloak realm) is valid and
its parts agree with each other and with the app's settings. Validated with
the Docker Compose v2 binary (`docker compose config`, no engine needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import compose
import pytest

from accounts.mail import QUEUE

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
    assert "gunicorn.conf.py" in (ROOT / "Dockerfile").read_text()


def test_a_mail_worker_runs_beside_the_app(stack):
    """Mail is never sent in a request: the worker of the queue sends it."""
    worker = stack["services"]["worker"]
    app = stack["services"]["app"]
    assert worker["image"] == app["image"]
    assert worker["command"][:3] == ["python", "manage.py", "db_worker"]
    assert worker["command"][worker["command"].index("--queue-name") + 1] == QUEUE
    assert worker["environment"]["DATABASE_URL"] == app["environment"]["DATABASE_URL"]
    assert worker["environment"].get("EMAIL_URL") == app["environment"].get("EMAIL_URL")
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["healthcheck"]["disable"]
    run = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert f"manage.py db_worker --queue-name {QUEUE}" in run  # `make run` starts it too


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
