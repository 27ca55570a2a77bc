"""Accounts, groups, roles, access rules and the audit trail.

Business rules live in `services.py` (writes) and `selectors.py` (reads);
these classes hold data and the few invariants the database can keep.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.inputs import normalize_email
from accounts.resources import validate_pattern
from accounts.seeds import SeededDescription
from accounts.tokens import EMAIL_CHANGE_TIMEOUT

__all__ = ["normalize_email"]  # the one comparison key of addresses (accounts.inputs)


def new_access_stamp() -> int:
    """Random, so a stamp never repeats for a reused primary key either."""
    return secrets.randbits(62)


class UserQuerySet(models.QuerySet):
    def people(self):
        """Accounts of people: service accounts (an API client's own
        principal, `User.Kind.SERVICE`) never log in, so they never count
        as someone who can repair access at the screens."""
        return self.filter(kind=User.Kind.PERSON)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, email):
        return self.get(email=normalize_email(email))

    def create_user(self, email, password=None, **fields):
        user = self.model(email=normalize_email(email), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A Back Office account. The email address is the login."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")

    class Kind(models.TextChoices):
        # A person logs in at the screens. A service account is a
        # client-credentials API client's own principal (api.services): no
        # password, no interactive login of any kind, groups given like a
        # person's (grant bound, rank), never counted by the root invariant.
        PERSON = "person", _("Person")
        SERVICE = "service", _("Service account")

    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERSON)
    # The interface language (settings.LANGUAGES); blank: the browser decides.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True, default="")
    # Changes with every write that may change what this user may do (their
    # groups, a group's roles, a role's rules: accounts.access.changed). Read
    # with the user on every request, it keys the compiled rules, so every
    # app server sees a change on the user's next request.
    access_stamp = models.BigIntegerField(default=new_access_stamp, editable=False)
    groups = models.ManyToManyField(
        "accounts.Group", through="accounts.Membership", related_name="users", blank=True
    )
    # The address whose mailbox chose the usable password (through a mailed
    # reset or invitation link; a change in a session keeps it, as whoever
    # changed it knew the old one). Only a password chosen at the account's
    # current address proves an SSO link (sso.services): an initial password
    # an admin or createuser set ("") is known to them too, and an address
    # changed since means the password was chosen by someone else's mailbox.
    password_proven_for = models.EmailField(max_length=254, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["first_name", "last_name"]

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        # The users list sorts by each of these; `id` breaks ties so pages are stable.
        indexes = [
            models.Index(fields=["status"], name="accounts_user_status"),
            models.Index(fields=["last_name", "first_name", "id"], name="accounts_user_name"),
            models.Index(fields=["created_at", "id"], name="accounts_user_created"),
            models.Index(fields=["last_login", "id"], name="accounts_user_last_login"),
        ]

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        """A full save never writes the access stamp back: an object loaded
        before an access change would put the old stamp, and with it the old
        compiled rules, back. Only accounts.access.changed moves it."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "access_stamp"
            ]
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        """Only active accounts may log in or keep a session (Django's
        backends and session checks read this)."""
        return self.status == self.Status.ACTIVE

    @property
    def is_service(self) -> bool:
        return self.kind == self.Kind.SERVICE

    @property
    def may_log_in(self) -> bool:
        """Interactive login (password, passkey, SSO, a session): active
        people only; a service account acts through its client's tokens."""
        return self.is_active and not self.is_service

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.first_name

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)


class Role(models.Model):
    """A named bundle of access rules, given to users through groups."""

    name = models.CharField(max_length=100, unique=True)
    description = SeededDescription(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Rule(models.Model):
    """`allow` or `deny` on a resource pattern `area:screen:action`."""

    class Effect(models.TextChoices):
        ALLOW = "allow", _("Allow")
        DENY = "deny", _("Deny")

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="rules")
    effect = models.CharField(max_length=5, choices=Effect.choices)
    pattern = models.CharField(max_length=200, validators=[validate_pattern])

    class Meta:
        ordering = ["role", "effect", "pattern"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "effect", "pattern"], name="accounts_rule_unique"
            )
        ]

    def __str__(self):
        return f"{self.effect} {self.pattern}"


class Group(models.Model):
    """Users belong to groups; groups hold roles.

    Privileged access on demand (accounts.privileged): an *eligible-only*
    group gives its members nothing until they activate it, for at most
    `max_activation_hours`, with a justification and a fresh second factor,
    and with another person's approval when `activation_approval` is set. A
    group with `grant_approval` makes every new membership a request that a
    second admin must approve (four eyes). Every new column has a database
    default, so the previous release keeps writing during an upgrade."""

    name = models.CharField(max_length=100, unique=True)
    description = SeededDescription(max_length=255, blank=True)
    roles = models.ManyToManyField(Role, related_name="groups", blank=True)
    eligible_only = models.BooleanField(default=False, db_default=False)
    max_activation_hours = models.PositiveSmallIntegerField(default=8, db_default=8)
    activation_approval = models.BooleanField(default=False, db_default=False)
    grant_approval = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class MembershipQuerySet(models.QuerySet):
    def current(self, now=None):
        """Memberships that have not ended: what a person holds or could
        activate (rank and the root invariant count these)."""
        return self.filter(Membership.current_q(now=now))

    def effective(self, now=None):
        """Memberships that give their group's rules now: not ended, and
        activated while their group is eligible-only (accounts.access)."""
        return self.filter(Membership.effective_q(now=now))


class Membership(models.Model):
    """A user's place in a group, and where it came from.

    `source` is `manual` for memberships an admin or developer gave, or
    `sso:<provider>` for those derived from identity-provider roles, so SSO
    logins can bring their own memberships in line without touching the
    ones given by hand.

    `ends_at` ends a time-bound membership: from then on it gives nothing,
    whether or not the worker has removed it yet (accounts.privileged). In
    an eligible-only group a membership is an eligibility: it gives the
    group's rules only while `active_until` lies ahead (an activation).
    """

    MANUAL = "manual"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    source = models.CharField(max_length=80, default=MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "group"], name="accounts_membership_unique")
        ]
        indexes = [
            models.Index(
                fields=["ends_at"],
                name="membership_ends_at",
                condition=models.Q(ends_at__isnull=False),
            ),
            models.Index(
                fields=["active_until"],
                name="membership_active_until",
                condition=models.Q(active_until__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.user_id} in {self.group_id} ({self.source})"

    @staticmethod
    def current_q(prefix: str = "", now=None) -> models.Q:
        """Not ended (`prefix` reaches a membership from another model,
        e.g. "memberships__")."""
        now = now or timezone.now()
        return models.Q(**{f"{prefix}ends_at__isnull": True}) | models.Q(
            **{f"{prefix}ends_at__gt": now}
        )

    @staticmethod
    def effective_q(prefix: str = "", now=None) -> models.Q:
        """Not ended, and activated now where the group is eligible-only."""
        now = now or timezone.now()
        return Membership.current_q(prefix, now) & (
            models.Q(**{f"{prefix}group__eligible_only": False})
            | models.Q(**{f"{prefix}active_until__gt": now})
        )

    def effective_until(self):
        """When this membership stops giving rights (None: not by time)."""
        ends = [self.ends_at]
        if self.group.eligible_only:
            ends.append(self.active_until)
        ends = [e for e in ends if e is not None]
        return min(ends) if ends else None


class AccessRequest(models.Model):
    """A request for access that someone must act on (accounts.privileged).

    - `activation`: a member of an eligible-only group asks to hold its
      rights for `hours`, with a justification; approved at once, or by
      another person when the group asks for approval. While active, the
      membership's `active_until` carries the end.
    - `grant`: a membership given in a group with `grant_approval` waits
      here until a second admin approves it; then it becomes a membership
      ending at `ends_at` (None: standing).

    Rows are kept after their decision: they are the history the screens
    and the auditors read."""

    class Kind(models.TextChoices):
        ACTIVATION = "activation", _("Activation")
        GRANT = "grant", _("Grant")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        ACTIVE = "active", _("Active")
        APPROVED = "approved", _("Approved")
        DENIED = "denied", _("Denied")
        CANCELLED = "cancelled", _("Withdrawn")
        ENDED = "ended", _("Ended early")
        EXPIRED = "expired", _("Expired")

    OPEN = (Status.PENDING, Status.ACTIVE)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_requests")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="access_requests")
    requested_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, blank=True)
    justification = models.TextField(max_length=1000, blank=True)
    ticket = models.CharField(max_length=64, blank=True)
    hours = models.PositiveSmallIntegerField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=80, default=Membership.MANUAL)
    active_until = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=254, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open request per person and group: two tabs, two admins or
            # a replayed form cannot queue a second one.
            models.UniqueConstraint(
                fields=["user", "group"],
                condition=models.Q(status__in=["pending", "active"]),
                name="accessrequest_one_open",
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="accessrequest_status")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.group_id} for {self.user_id} ({self.status})"


class EmailChange(models.Model):
    """A change of an account's address asked for by a person (on the
    screens or through the API), waiting for the new address to confirm it
    through the link mailed there (accounts.services.emails). At most one per
    account: a new request replaces it. `old_email` is the address it was
    asked from: once the account's address is something else, the request
    is void."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="email_change")
    new_email = models.EmailField(max_length=254)
    old_email = models.EmailField(max_length=254)
    requested_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.old_email} -> {self.new_email}"

    @property
    def expires_at(self):
        return self.created_at + timedelta(seconds=EMAIL_CHANGE_TIMEOUT)


class AuditEvent(models.Model):
    """One security-relevant event. Rows are never edited.

    Actor and target keep a text copy of the email they were about, so the
    trail stays readable after an account is deleted.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Success")
        FAILURE = "failure", _("Failure")

    # Indexed with what each filter asks for (Meta.indexes), not alone.
    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True)
    # The door the actor came through: web, api, scim, sso, cli (accounts.audit).
    channel = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    # The request (or command run, or worker task) that wrote it: the
    # X-Request-ID of its response and of its log lines (iam.logs). A
    # database default, so a server of the previous release, which does
    # not name the column, still writes during a rolling upgrade.
    request_id = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        # Each filter of the audit screen and the API (accounts.selectors.
        # audit_search) has an index that leads with what it matches and
        # then holds the order shown (created_at, id), so the newest page
        # of ten million events is read like that of a hundred thousand.
        # Three more, on PostgreSQL only, are made by migration 0013 and
        # not declared here: action, upper(actor_label), upper(target_label),
        # each in its pattern operator class (it serves both `=` and
        # `LIKE 'X%'`), then created_at, id. Declared, they would be rebuilt
        # by SQLite's table remakes, which know no operator class.
        indexes = [
            models.Index(
                fields=["request_id"],
                name="auditevent_request_id",
                condition=~models.Q(request_id=""),
            ),
            models.Index(fields=["created_at", "id"], name="auditevent_time"),
            # Failures are a few percent: two small partial indexes serve
            # "failure" alone and with an action ("success" is nearly all
            # rows: the time index finds its pages at once).
            models.Index(
                fields=["created_at", "id"],
                name="auditevent_failure_time",
                condition=models.Q(outcome="failure"),
            ),
            models.Index(
                fields=["action", "created_at", "id"],
                name="auditevent_failure_action",
                condition=models.Q(outcome="failure"),
            ),
            models.Index(fields=["channel", "created_at", "id"], name="auditevent_channel_time"),
            # A user's Events tab (accounts.selectors.user_recent_events).
            models.Index(
                fields=["target_type", "target_id", "created_at", "id"],
                name="auditevent_about_time",
            ),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_label}"
