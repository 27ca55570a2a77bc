"""`manage.py check` as an operator runs it: a separate process, settings from
the environment, plain `check` (no --database, no --deploy)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check(env, **sso):
    env = {**env, "IAM_SSO_PROVIDERS": "okta", "IAM_SSO_OKTA_KIND": "oidc"}
    env.update({f"IAM_SSO_OKTA_{k.upper()}": v for k, v in sso.items()})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_role_map_group_and_slashed_issuer(check_env, idp):
    result = check(
        check_env,
        issuer=idp.issuer + "/",
        client_id="backoffice",
        role_map='{"admin": ["root"], "help": ["suport"]}',
    )
    assert result.returncode == 1, result.stderr
    assert "(sso.W001) okta: IAM_SSO_OKTA_ROLE_MAP maps 'help' to group 'suport'" in result.stderr
    assert f"(sso.E004) okta: IAM_SSO_OKTA_ISSUER is '{idp.issuer}/'" in result.stderr
    assert "'root'" not in result.stderr
    fixed = check(check_env, issuer=idp.issuer, client_id="backoffice", role_map='{"a": ["root"]}')
    assert fixed.returncode == 0 and "System check identified no issues" in fixed.stdout


def test_role_map_check_is_quiet_when_the_database_does_not_answer(check_env, idp, tmp_path):
    env = {**check_env, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"}
    result = check(env, issuer=idp.issuer, client_id="backoffice", role_map='{"a": ["suport"]}')
    assert result.returncode == 0, result.stderr
    assert "sso.W001" not in result.stderr and "Traceback" not in result.stderr


def test_pkce_setting_is_read_from_the_environment(check_env, idp):
    result = check(check_env, issuer=idp.issuer, client_id="backoffice", pkce="maybe")
    assert result.returncode == 1
    assert "IAM_SSO_OKTA_PKCE must be true or false" in result.stderr
    assert check(check_env, issuer=idp.issuer, client_id="backoffice", pkce="false").returncode == 0


def test_trust_email_and_reauth_are_read_from_the_environment(check_env, idp):
    on = check(check_env, issuer=idp.issuer, client_id="backoffice", trust_email="true")
    assert on.returncode == 0, on.stderr
    assert "(sso.W002) okta: IAM_SSO_OKTA_TRUST_EMAIL is on" in on.stderr
    off = check(check_env, issuer=idp.issuer, client_id="backoffice", reauth="prompt")
    assert off.returncode == 0 and "sso.W002" not in off.stderr, off.stderr
    bad = check(check_env, issuer=idp.issuer, client_id="backoffice", reauth="maxage")
    assert bad.returncode == 1
    assert "IAM_SSO_OKTA_REAUTH must be max_age or prompt" in bad.stderr


def sso_command(env, *args, **sso):
    env = {**env, "IAM_SSO_PROVIDERS": "okta", "IAM_SSO_OKTA_KIND": "oidc"}
    env.update({f"IAM_SSO_OKTA_{k.upper()}": v for k, v in sso.items()})
    return subprocess.run(
        [sys.executable, "manage.py", "sso", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sso_refresh_as_an_operator_runs_it(check_env, idp):
    done = sso_command(check_env, "refresh", issuer=idp.issuer, client_id="backoffice")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "okta: discovery and keys fetched again (1 key)\n"
    unknown = sso_command(check_env, "refresh", "nope", issuer=idp.issuer, client_id="backoffice")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == [
        "CommandError: unknown identity provider 'nope' (configured: okta)"
    ]
