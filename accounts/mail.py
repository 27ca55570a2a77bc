"""Mail: every message leaves through one durable queue, never in a request.

Why a queue: building and sending a mail inside the request made "Forgot
password?" measurably slower for an address with an account than for one
without (an enumeration oracle), and a failing SMTP server lost the mail. A
request now only adds a task row (django-tasks, database backend), in the
request's transaction; the worker (`manage.py worker`, maintenance.worker)
renders and sends it.

Four doors in, one task per mail:
- `queue_reset_request`: "Forgot password?". The request does the same work
  for every address: one task holding the typed address. The worker looks
  the account up and decides: active and not SSO-only → audit and a reset
  mail; SSO-only → audit `password.reset.refused`; unknown or blocked →
  nothing.
- `queue_password_link`: a reset or invitation link sent by an admin.
- `queue_email_change_link`: the link that confirms a new address, to it.
- `queue_template_mail`: allauth's notifications (password changed or reset,
  MFA changes), through `AccountAdapter.send_mail`.

No secret in the task table: a link mail holds its kind, the user id and the
site's base URL, and the worker makes the token when it sends, so a link
lives from send time (a retry makes a fresh one). It is sent only if the
account is still active and still has the address it was meant for.

Retries: django-tasks has none, so a failed send (SMTP down, refusing or
timing out) queues the same mail again with `run_after` = now +
IAM_MAIL_RETRY_SECONDS × 2^(attempt-1) (1, 2, 4, 8, 16 minutes by default)
and ends its own task normally ("retrying"). The last of
IAM_MAIL_MAX_ATTEMPTS raises: the task stays FAILED and one `iam.mail`
error line names the recipient, never the link. `manage.py mailqueue` lists
queued and failed mails and queues a failed one again.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django_tasks import task

log = logging.getLogger("iam.mail")

QUEUE = "mail"

# Link mails: kind → template. The worker makes the link.
LINK_TEMPLATES = {
    "password_reset": "account/email/password_reset_key",
    "invitation": "account/email/invitation",
    "email_change": "account/email/email_change_confirm",
}
# Context the worker rebuilds itself (the request is gone by then).
_REBUILT = {"request", "current_site", "email", "user"}
# Never stored in a task: anything that opens an account.
_SECRETS = {"password_reset_url", "key", "uid", "code", "activate_url", "token"}


class MailNotSent(Exception):
    """The last attempt failed too: the task stays FAILED."""


# --- in the request: queue ------------------------------------------------------


def _site(by) -> dict:
    """What the worker needs of the request (an accounts.audit.Actor): where
    links point, which host the mail names, and the request's language (the
    mail's language when the recipient chose none, see `mail_language`)."""
    site = by.site if by is not None else ""
    return {
        "base_url": site,
        "host": site.split("://", 1)[-1],
        "language": translation.get_language() or "",
    }


def _storable(context: dict) -> dict:
    """The template context as JSON, minus what the worker rebuilds. A secret
    or an object JSON cannot hold is a programming error, refused loudly."""
    stored = {}
    for key, value in context.items():
        if key in _REBUILT:
            continue
        if key in _SECRETS:
            raise ValueError(f"mail context {key!r} is a secret: the worker must make it")
        if isinstance(value, datetime):
            value = {"datetime": value.isoformat()}
        elif not (value is None or isinstance(value, str | int | float | bool)):
            raise TypeError(f"mail context {key!r} cannot be queued ({type(value).__name__})")
        stored[key] = value
    return stored


def queue_template_mail(*, by, template: str, to: str, context: dict) -> None:
    """A mail rendered from `template` (allauth's notifications)."""
    user = context.get("user")
    mail = {
        "template": template,
        "to": to,
        "user_id": user.pk if user is not None else None,
        **_site(by),
        "context": _storable(context),
    }
    deliver.enqueue(mail=mail)


def queue_password_link(*, by, user, kind: str) -> None:
    """A link to choose a password: `password_reset` (1 hour) or `invitation`
    (72 hours), made by the worker when it sends."""
    if kind not in LINK_TEMPLATES:
        raise ValueError(f"unknown link kind {kind!r}")
    deliver.enqueue(mail={"link": kind, "user_id": user.pk, "to": user.email, **_site(by)})


def queue_email_change_link(*, by, change) -> None:
    """The link that confirms a new address (accounts.services.emails), to
    that address; made by the worker, sent only while the change is still
    pending as asked (same account, same addresses)."""
    deliver.enqueue(
        mail={
            "link": "email_change",
            "user_id": change.user_id,
            "change_id": change.pk,
            "to": change.new_email,
            **_site(by),
        }
    )


def queue_reset_request(*, by, email: str) -> None:
    """Forgot password: one task whatever the address, no lookup here."""
    password_reset_requested.enqueue(
        email=email, **_site(by), ip=by.ip or "", user_agent=by.user_agent
    )


def mail_language(user, mail: dict) -> str:
    """A mail speaks its recipient's language: the account's own choice,
    else the language of the request that caused it (a reset asked for from
    a German browser), else the default."""
    chosen = getattr(user, "language", "") or mail.get("language") or ""
    codes = {code for code, _name in settings.LANGUAGES}
    return chosen if chosen in codes else settings.LANGUAGE_CODE


# --- in the worker: decide, render, send, retry -------------------------------------


@task(queue_name=QUEUE)
def password_reset_requested(*, email, base_url, host, ip, user_agent, language="") -> dict:
    """Decide a "Forgot password?" request. Someone switched off at the
    identity provider (SSO-only) must not come back through a local password."""
    from accounts.audit import Actor, AuditAction, audit
    from accounts.extensions import no_self_service_password
    from accounts.selectors import user_get_by_email

    user = user_get_by_email(email)
    # may_log_in: active, and a person (a service account has no password).
    if user is None or not user.may_log_in:
        return {"outcome": "nothing"}
    # Asked for on the "Forgot password?" page: the screens' channel.
    facts = {"by": Actor(ip=ip or None, user_agent=user_agent, channel="web"), "target": user}
    if no_self_service_password(user):
        audit(
            AuditAction.PASSWORD_RESET_REFUSED,
            success=False,
            details={"reason": "sso_only"},
            **facts,
        )
        return {"outcome": "refused"}
    with transaction.atomic():
        audit(AuditAction.PASSWORD_RESET_REQUESTED, **facts)
        mail = {"link": "password_reset", "user_id": user.pk, "to": user.email}
        deliver.enqueue(mail={**mail, "base_url": base_url, "host": host, "language": language})
    return {"outcome": "queued"}


@task(queue_name=QUEUE)
def deliver(*, mail: dict, attempt: int = 1) -> dict:
    """Render and send one mail; a failed send queues the next attempt."""
    try:
        message = _render(mail)
    except Exception:
        log.exception("mail %s to %s not sent: it cannot be rendered", describe(mail), mail["to"])
        raise
    if message is None:
        log.info(
            "mail %s to %s dropped: the account is gone, blocked or has another address",
            describe(mail),
            mail["to"],
        )
        return {"outcome": "dropped"}
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        return _failed(mail, attempt, exc)
    log.info("mail %s sent to %s (attempt %d)", describe(mail), mail["to"], attempt)
    return {"outcome": "sent", "attempt": attempt}


def describe(mail: dict) -> str:
    """A mail's name in logs and listings: its link kind or template."""
    return mail.get("link") or mail.get("template", "?")


def _render(mail: dict):
    from allauth.account.adapter import get_adapter

    from accounts.models import User

    user_id = mail.get("user_id")
    user = User.objects.filter(pk=user_id).first() if user_id is not None else None
    context = {key: _restored(value) for key, value in mail.get("context", {}).items()}
    if mail.get("link") == "email_change":
        change = _pending_change(user, mail)
        if change is None:
            return None
        context["confirm_url"] = mail["base_url"] + _email_change_path(change)
        context["old_email"], context["new_email"] = change.old_email, change.new_email
        template = LINK_TEMPLATES["email_change"]
    elif kind := mail.get("link"):
        if user is None or not user.is_active or user.email != mail["to"]:
            return None
        context["password_reset_url"] = mail["base_url"] + _link_path(user, kind)
        template = LINK_TEMPLATES[kind]
    else:
        template = mail["template"]
    # The mail names the product, and the host only as where it came from.
    site = {"name": settings.IAM_PRODUCT_NAME, "domain": mail.get("host", "")}
    context.update(user=user, email=mail["to"], current_site=site)
    with translation.override(mail_language(user, mail)):
        return get_adapter().render_mail(template, mail["to"], context)


def _restored(value):
    if isinstance(value, dict) and set(value) == {"datetime"}:
        return datetime.fromisoformat(value["datetime"])
    return value


def _link_path(user, kind: str) -> str:
    from allauth.account.utils import user_pk_to_url_str
    from django.urls import reverse

    from accounts.tokens import InvitationTokens, PasswordResetTokens

    tokens = InvitationTokens() if kind == "invitation" else PasswordResetTokens()
    return reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": tokens.make_token(user)},
    )


def _pending_change(user, mail: dict):
    """The change a confirmation mail is for, if it still waits as asked."""
    from accounts.models import EmailChange

    if user is None or not user.is_active:
        return None
    change = EmailChange.objects.filter(pk=mail.get("change_id"), user=user).first()
    if change is None or change.new_email != mail["to"] or change.old_email != user.email:
        return None
    return change


def _email_change_path(change) -> str:
    from django.urls import reverse

    from accounts.tokens import EmailChangeLinks

    return reverse("email_change_link", kwargs={"token": EmailChangeLinks().make(change)})


def _failed(mail: dict, attempt: int, exc: Exception) -> dict:
    reason = f"{type(exc).__name__}: {exc}"[:300]
    if attempt >= settings.IAM_MAIL_MAX_ATTEMPTS:
        log.error(
            "mail %s to %s not sent: gave up after %d attempts (%s)",
            describe(mail),
            mail["to"],
            attempt,
            reason,
        )
        raise MailNotSent(f"gave up after {attempt} attempts: {reason}") from exc
    delay = settings.IAM_MAIL_RETRY_SECONDS * 2 ** (attempt - 1)
    run_after = timezone.now() + timedelta(seconds=delay)
    retry = deliver.using(run_after=run_after).enqueue(mail=mail, attempt=attempt + 1)
    log.warning(
        "mail %s to %s failed (attempt %d of %d: %s); next attempt in %d s",
        describe(mail),
        mail["to"],
        attempt,
        settings.IAM_MAIL_MAX_ATTEMPTS,
        reason,
        delay,
    )
    return {"outcome": "retrying", "attempt": attempt, "error": reason, "next": retry.id}
