"""Every operator command the README shows in a code block runs as written
(from the repository root, in the virtualenv `make run` made) on a fresh
instance like `make run`'s: the README cannot rot."""

import re
import shlex
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

README = Path(__file__).resolve().parent.parent / "README.md"
PREFIX = ".venv/bin/python manage.py "
# Commands that serve, need a provider on the network, production settings
# or a translator's tools: run elsewhere (the server and worker by the
# browser and worker tests, `check --deploy` by tests/test_deploy_checks.py).
ELSEWHERE = {
    "runserver",
    "db_worker",
    "worker",
    "sso",
    "check",
    "migrate",
    "collectstatic",
    "makemessages",
}
# Placeholders a reader fills in.
PLACEHOLDER = re.compile(r"…|\.\.\.|<[a-z_]+>|\bID\b")


def readme_commands() -> list[str]:
    """The manage.py lines of the README's code blocks, continuation lines
    joined and comments dropped, in the README's order."""
    commands, block = [], None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            block = [] if block is None else None
            continue
        if block is None:
            continue
        line = line.removeprefix("$ ")
        if commands and commands[-1].endswith("\\"):
            commands[-1] = commands[-1][:-1] + " " + line.strip()
        elif line.startswith(PREFIX) or line.startswith("echo ") and PREFIX in line:
            commands.append(line)
    return commands


def runnable():
    for line in readme_commands():
        command, _, comment = line.partition(" #")
        args = shlex.split(command.split(PREFIX, 1)[1])
        if args[0] in ELSEWHERE or PLACEHOLDER.search(command) or "prompts" in comment:
            continue  # a prompt needs a terminal
        yield pytest.param(command, args, id=" ".join(args[:2]))


def test_the_readme_shows_the_operator_commands():
    names = {shlex.split(c.split(" #")[0].split(PREFIX, 1)[1])[0] for c in readme_commands()}
    assert {"createuser", "apiclient", "scimtoken", "mailqueue"} <= names
    assert not [c for c in README.read_text().splitlines() if c.startswith("python manage.py")]


@pytest.mark.django_db
def test_every_readme_command_runs_as_written(monkeypatch):
    """In the README's order, on one database (a token is created, then
    listed, then revoked)."""
    ran = []
    for param in runnable():
        command, args = param.values
        stdin = re.match(r'echo "([^"]*)" \|', command)
        monkeypatch.setattr("sys.stdin", StringIO((stdin.group(1) if stdin else "") + "\n"))
        call_command(*args, stdout=StringIO(), stderr=StringIO())  # a CommandError fails the test
        ran.append(" ".join(args[:2]))
    assert {
        "createuser --email",
        "scimtoken create",
        "scimtoken revoke",
        "apiclient create",
    } <= set(ran)


@pytest.mark.parametrize(
    "name",
    ["createuser", "demoadmin", "mailqueue", "apiclient", "scimtoken", "audit", "reviews"],
)
def test_every_option_of_our_commands_has_help(name):
    """`manage.py <command> --help` explains every option (an operator's only manual)."""
    import argparse

    from django.core.management import load_command_class

    app = {"apiclient": "api", "scimtoken": "scim", "audit": "trail", "reviews": "reviews"}.get(
        name, "accounts"
    )
    parser = load_command_class(app, name).create_parser("manage.py", name)
    parsers = [parser] + [
        sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
    ]
    ours = {"-h", "--help", "--version", "-v", "--verbosity", "--settings", "--pythonpath"}
    ours |= {"--traceback", "--no-color", "--force-color", "--skip-checks"}
    silent = [
        f"{p.prog} {a.option_strings or a.dest}"
        for p in parsers
        for a in p._actions
        if not (set(a.option_strings) & ours)
        and not isinstance(a, argparse._SubParsersAction)
        and not a.help
    ]
    assert silent == []
