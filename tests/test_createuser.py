"""`manage.py createuser`, through the real command line."""

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.models import AuditEvent, User
from tests.servers import migrated_sqlite

ROOT = Path(__file__).resolve().parent.parent
GOOD = "a long enough passphrase 7"


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    """A migrated SQLite database of its own: the command runs as a separate
    process, exactly as a developer would run it."""
    db = tmp_path_factory.mktemp("cli") / "cli.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(DATABASE_URL=migrated_sqlite(db), DJANGO_SETTINGS_MODULE="iam.settings")
    return env


def run(env, *args, stdin=""):
    return subprocess.run(
        [sys.executable, "manage.py", "createuser", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def base_args(email):
    return ["--email", email, "--first-name", "Ada", "--last-name", "Lovelace"]


def count_users(env, email):
    shell = f"from accounts.models import User; print(User.objects.filter(email='{email}').count())"
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", shell],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


def test_password_from_stdin_creates_user(cli_env):
    result = run(
        cli_env,
        *base_args("Stdin@Shop.Example"),
        "--group",
        "root",
        "--password-stdin",
        stdin=GOOD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Created user stdin@shop.example" in result.stdout
    assert GOOD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (["--group", "no-such-group"], GOOD, "Unknown group: no-such-group."),
        ([], "short\n", "This password is too short. It must contain at least 12 characters."),
        ([], "password123456\n", "This password is too common."),
        ([], "\n", "No password on stdin."),
        (["--email", "not-an-email"], GOOD, "'not-an-email' is not a valid email address."),
        (["--first-name", "  "], GOOD, "First name is required."),
    ],
    ids=["unknown-group", "short", "common", "empty", "bad-email", "blank-name"],
)
def test_bad_input_is_one_line_and_exit_1(cli_env, args, stdin, message):
    email = "bad@shop.example"
    result = run(cli_env, *base_args(email), "--password-stdin", *args, stdin=stdin)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"CommandError: {message}"]
    assert count_users(cli_env, email) == 0


def test_duplicate_email_any_case(cli_env):
    assert run(cli_env, *base_args("dup@shop.example"), "--no-password").returncode == 0
    result = run(cli_env, *base_args("DUP@shop.example"), "--no-password")
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "CommandError: A user with email DUP@shop.example already exists."
    )


@pytest.mark.parametrize("flag", ["--password", "--pass", "--password-std", "--password="])
def test_password_in_argv_is_refused_and_never_echoed(cli_env, flag):
    args = [flag + GOOD] if flag.endswith("=") else [flag, GOOD]
    result = run(cli_env, *base_args("argv@shop.example"), *args)
    assert result.returncode != 0
    assert GOOD not in result.stdout + result.stderr
    if flag.startswith("--password"):
        assert "Passwords never go on the command line" in result.stderr
    assert count_users(cli_env, "argv@shop.example") == 0


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("--first-name", "Ada\nroot", "First name must not contain control or formatting"),
        ("--last-name", "Love\x1b[31mlace", "Last name must not contain control or formatting"),
        ("--last-name", "\u202eecalevol", "Last name must not contain control or formatting"),
        ("--email", "a" * 250 + "@shop.example", "The email address is too long"),
        ("--email", "\u212aate@shop.example", "could be mistaken for others"),
    ],
    ids=["newline", "escape", "bidi-override", "too-long", "kelvin-sign"],
)
def test_names_and_emails_that_read_as_something_else_are_refused(cli_env, field, value, message):
    args = {"--email": "odd@shop.example", "--first-name": "Ada", "--last-name": "Lovelace"}
    args[field] = value
    result = run(cli_env, *[x for kv in args.items() for x in kv], "--no-password")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: ") and message in lines[0]


def test_no_terminal_and_no_flag_is_a_clear_error(cli_env):
    result = run(cli_env, *base_args("notty@shop.example"))
    assert result.returncode == 1
    assert "use --password-stdin or --no-password" in result.stderr


def _interactive(env, email, answers):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on a real terminal
        os.chdir(ROOT)
        os.execve(
            sys.executable, [sys.executable, "manage.py", "createuser", *base_args(email)], env
        )
    output = b""
    for answer in answers:
        while b"Password" not in output.rsplit(b"\n", 1)[-1]:
            output += os.read(fd, 1024)
        os.write(fd, answer.encode() + b"\n")
        output = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode()


def test_interactive_prompt_asks_twice(cli_env):
    code, output = _interactive(cli_env, "tty@shop.example", [GOOD, GOOD])
    assert code == 0, output
    assert "Created user tty@shop.example" in output
    assert GOOD not in output  # not echoed


def test_interactive_mismatch_asks_again(cli_env):
    answers = [GOOD, GOOD + "x", GOOD, GOOD]
    code, output = _interactive(cli_env, "retry@shop.example", answers)
    assert code == 0, output
    assert count_users(cli_env, "retry@shop.example") == 1


def test_interactive_mismatch_three_times_creates_nothing(cli_env):
    code, output = _interactive(cli_env, "mismatch@shop.example", [GOOD, GOOD + "x"] * 3)
    assert code == 1
    assert "The two passwords do not match." in output
    assert "No matching password after 3 tries." in output
    assert count_users(cli_env, "mismatch@shop.example") == 0


@pytest.mark.django_db
class TestInTheSuiteDatabase:
    """The same command in-process, to read what it wrote."""

    def test_groups_inactive_and_audit(self, monkeypatch):
        import io

        from django.core.management import call_command

        monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + "\n"))
        call_command(
            "createuser",
            *base_args("Grace@Shop.Example"),
            "--group",
            "root",
            "--group",
            "backoffice-users",
            "--inactive",
            "--password-stdin",
        )
        user = User.objects.get(email="grace@shop.example")
        assert user.status == "blocked" and not user.is_active
        assert sorted(g.name for g in user.groups.all()) == ["backoffice-users", "root"]
        assert user.check_password(GOOD)
        event = AuditEvent.objects.get(action="user.created")
        assert event.target_label == "grace@shop.example"
        assert event.details["via"] == "cli" and event.details["password"] == "set"
        assert GOOD not in str(event.details)

    def test_no_password_gives_unusable_password(self):
        from django.core.management import call_command

        call_command("createuser", *base_args("sso@shop.example"), "--no-password")
        assert not User.objects.get(email="sso@shop.example").has_usable_password()
