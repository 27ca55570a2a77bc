"""The security-event stream's OCSF (stream.ocsf) against the schema files
of its version (tests/ocsf/, read by tests/support/ocsf_schema.py): every
audit action maps to a class and activity, and what goes out has every
attribute the schema requires. The main kinds come through their real
doors (a login form, the token endpoint, SCIM, the command line); the rest
are written by accounts.audit.audit directly, as their services do."""

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.audit import Actor, AuditAction, audit
from accounts.models import AuditEvent
from stream.ocsf import MAPPING, VERSION, event_to_ocsf
from tests.api_support import client_token, make_client
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory
from tests.support import ocsf_schema
from tests.support.scim import Scim, entra_user, make_token

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent

# What each kind of event must be (the words): class, activity.
AUTHENTICATION, ACCOUNT_CHANGE, ENTITY_MANAGEMENT, API_ACTIVITY = 3002, 3001, 3004, 6003


@pytest.fixture
def stream(settings):
    """The OCSF lines the logger `iam.ocsf` writes, parsed (what
    IAM_EVENTS_LOG routes to a file or stream)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("iam.ocsf")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def events(lines, action=None):
    parsed = [json.loads(line) for line in lines]
    return [e for e in parsed if action is None or e["metadata"]["event_code"] == action]


def valid(event: dict) -> dict:
    assert ocsf_schema.problems(event) == [], json.dumps(event, indent=1)
    return event


def test_the_stream_speaks_the_vendored_schema_version():
    assert ocsf_schema.version() == VERSION


def test_every_action_has_a_class_and_activity_of_the_schema():
    assert set(MAPPING) == set(AuditAction)
    for action, (kind, activity) in MAPPING.items():
        schema = ocsf_schema.class_by_uid(kind.class_uid)
        assert schema["category_uid"] == kind.category_uid, action
        assert schema["activities"][activity] == kind.activities[activity], action


@pytest.mark.parametrize("action", list(AuditAction), ids=str)
@pytest.mark.parametrize("who", ["user", "anonymous", "operator"])
def test_each_action_as_ocsf_has_what_the_schema_requires(action, who, user, root_user):
    by = {
        "user": Actor(user=root_user, ip="203.0.113.7", user_agent="Firefox/140", channel="web"),
        "anonymous": Actor(ip="2001:db8::1", channel="api"),
        "operator": Actor.system(),
    }[who]
    kind, activity = MAPPING[action]
    target = GroupFactory(name="ops") if kind.class_uid == ENTITY_MANAGEMENT else user
    for success in (True, False):
        event = audit(action, by=by, target=target, success=success, details={"reason": "x: y"})
        ocsf = valid(event_to_ocsf(event))
        assert (ocsf["class_uid"], ocsf["activity_id"]) == (kind.class_uid, activity)
        assert ocsf["status_id"] == (1 if success else 2)
        assert ocsf["metadata"]["uid"] == str(event.pk)
        assert ocsf["metadata"]["event_code"] == action.value
        assert ocsf["time"] == int(event.created_at.timestamp() * 1000)
        assert ocsf["status_detail"] == "x"  # a reason code, never the provider's words after it
    # A target that no longer exists is named by its copy, and still valid.
    event = audit(action, by=by, target_type="user", target_id="999", target_label="gone@x.example")
    valid(event_to_ocsf(event))
    event = audit(action, by=Actor())  # nobody known, nothing targeted
    valid(event_to_ocsf(event))


def test_a_login_through_the_form_is_an_authentication_logon(
    stream, user, django_capture_on_commit_callbacks
):
    browser = Client(HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.4")
    with django_capture_on_commit_callbacks(execute=True):
        login(browser, user.email, "wrong password 1")
    with django_capture_on_commit_callbacks(execute=True):
        login(browser, user.email, PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/logout/")
    failed, succeeded = events(stream, "login.failed")[0], events(stream, "login.succeeded")[0]
    for event in (failed, succeeded):
        valid(event)
        assert (event["class_uid"], event["activity_id"], event["type_uid"]) == (3002, 1, 300201)
        assert event["user"]["email_addr"] == user.email
        assert event["src_endpoint"] == {"ip": "198.51.100.4"}
        assert event["http_request"] == {"user_agent": "Firefox/140"}
        assert event["metadata"]["labels"] == ["channel:web"]
        assert event["metadata"]["correlation_uid"]  # the request's X-Request-ID
    assert (failed["status_id"], succeeded["status_id"]) == (2, 1)
    logout = valid(events(stream, "logout")[0])
    assert (logout["class_uid"], logout["activity_id"]) == (3002, 2)
    # The stream carries what the trail holds: never a password.
    assert PASSWORD not in "\n".join(stream) and "wrong password 1" not in "\n".join(stream)


def test_the_request_id_of_the_response_is_the_events_correlation_uid(
    stream, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(Client(), user.email, PASSWORD)
    event = events(stream, "login.succeeded")[0]
    assert event["metadata"]["correlation_uid"] == response["X-Request-ID"]


def test_an_api_token_is_an_api_activity_create(stream, django_capture_on_commit_callbacks):
    client, secret = make_client()
    with django_capture_on_commit_callbacks(execute=True):
        assert client_token(Client(), client, secret).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client_token(Client(), client, "not-the-secret").status_code == 401
    issued = valid(events(stream, "api.token.issued")[0])
    assert (issued["class_uid"], issued["activity_id"], issued["status_id"]) == (6003, 1, 1)
    assert issued["api"]["operation"] == "api.token.issued"
    assert issued["src_endpoint"] == {"ip": "127.0.0.1"}
    assert issued["metadata"]["labels"] == ["channel:api"]
    refused = valid(events(stream, "api.token.refused")[0])
    assert refused["status_id"] == 2 and refused["severity_id"] == 2
    text = "\n".join(stream)
    assert secret not in text and "not-the-secret" not in text


def test_a_scim_call_is_an_api_activity(stream, django_capture_on_commit_callbacks):
    token = make_token()
    scim = Scim(Client(), token)
    with django_capture_on_commit_callbacks(execute=True):
        assert scim.post("Users", entra_user()).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        Client().get("/scim/v2/Users", HTTP_AUTHORIZATION="Bearer scim_wrong")
    created = valid(events(stream, "scim.user_created")[0])
    assert (created["class_uid"], created["activity_id"]) == (6003, 1)
    assert created["actor"] == {"app_name": "scim:entra"}
    assert created["resources"][0]["name"] == "jo@shop.example"
    assert created["metadata"]["labels"] == ["channel:scim"]
    # The account it made, as an account change.
    account = valid(events(stream, "user.created")[0])
    assert (account["class_uid"], account["activity_id"]) == (3001, 1)
    refused = valid(events(stream, "scim.auth_failed")[0])
    assert (refused["class_uid"], refused["status_id"], refused["severity_id"]) == (6003, 2, 3)
    assert token not in "\n".join(stream)


def test_a_user_made_on_the_command_line_is_an_account_change_create(
    stream, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "createuser",
            "--email=bo@shop.example",
            "--first-name=Bo",
            "--last-name=B",
            "--no-password",
            stdout=io.StringIO(),
        )
    event = valid(events(stream, "user.created")[0])
    assert (event["class_uid"], event["activity_id"], event["type_uid"]) == (3001, 1, 300101)
    assert event["user"]["email_addr"] == "bo@shop.example"
    assert event["actor"] == {"app_name": "cli"}  # the audit trail's principal
    assert event["metadata"]["labels"] == ["channel:cli"]
    assert "src_endpoint" not in event  # no address on the command line


def test_a_rolled_back_write_sends_no_line(stream, user):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        audit(AuditAction.USER_BLOCKED, by=Actor.system(), target=user)
        raise RuntimeError
    assert stream == []


def test_nothing_is_built_when_the_logger_is_off(user, django_capture_on_commit_callbacks):
    """The default: IAM_EVENTS_LOG unset leaves the logger at CRITICAL."""
    assert not logging.getLogger("iam.ocsf").isEnabledFor(logging.INFO)
    with django_capture_on_commit_callbacks(execute=True):
        audit(AuditAction.USER_BLOCKED, by=Actor.system(), target=user)
    assert AuditEvent.objects.filter(action="user.blocked").count() == 1


@pytest.mark.parametrize("where", ["file", "stderr"])
def test_iam_events_log_routes_bare_json_lines(tmp_path, where):
    """IAM_EVENTS_LOG, read by iam/settings.py at start: one OCSF object a
    line, nothing around it (a file a SIEM agent tails, or the process's
    stderr), and the usual log lines are not mixed into it."""
    target = tmp_path / "events.jsonl"
    script = (
        "import django, logging; django.setup()\n"
        "from django.utils import timezone\n"
        "from accounts.models import AuditEvent\n"
        "from stream.listener import STREAM\n"
        "logging.getLogger('iam.audit').info('an ordinary line')\n"
        "event = AuditEvent(pk=7, action='user.blocked', channel='cli', actor_label='cli',"
        " target_type='user', target_id='3', target_label='ada@shop.example',"
        " created_at=timezone.now(), details={})\n"
        "STREAM.committed(event, {})\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "iam.settings",
        "IAM_EVENTS_LOG": str(target) if where == "file" else "stderr",
        "IAM_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = (target.read_text() if where == "file" else result.stderr).splitlines()
    ocsf = [json.loads(line) for line in lines if '"class_uid"' in line]
    assert len(ocsf) == 1
    assert valid(ocsf[0])["metadata"]["uid"] == "7"
    if where == "file":
        assert len(lines) == 1  # only the stream


def test_a_hostile_login_cannot_forge_or_split_a_stream_line(
    stream, user, django_capture_on_commit_callbacks
):
    """What a client sends (a user agent with a newline and a fake event)
    stays inside its own event's strings: one line, one event."""
    fake = '\n{"class_uid":3002,"activity_id":1,"status_id":1}\n'
    with django_capture_on_commit_callbacks(execute=True):
        login(Client(HTTP_USER_AGENT=f"ua{fake}"), user.email, "wrong" + fake)
    assert len(stream) == len(events(stream)) == 1
    assert "\n" not in stream[0]
    event = valid(events(stream)[0])
    assert event["status_id"] == 2 and event["http_request"]["user_agent"] == f"ua{fake}"
    assert "wrong" not in stream[0]


def test_the_message_is_english_whatever_the_language_of_the_request(user):
    from django.utils import translation

    with translation.override("de"):
        event = audit(AuditAction.LOGIN_SUCCEEDED, by=Actor(user=user), target=user)
        assert event_to_ocsf(event)["message"] == "Logged in"
