"""What the API reads and writes. Serializers parse and shape; every rule
(names, emails, passwords, who may do what) is the services' (accounts)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import AccessRequest, AuditEvent, Group, Membership, Role, User
from accounts.selectors import USER_SORTS, email_change_pending

MAX_ID = 2**63 - 1


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A machine-readable code, e.g. insufficient_scope.")
    error_description = serializers.CharField()
    fields = serializers.DictField(required=False, help_text="Per-field problems (400).")


class UserSerializer(serializers.ModelSerializer):
    groups = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "status",
            "groups",
            "last_login",
            "created_at",
        ]
        read_only_fields = fields

    def get_groups(self, user) -> list[str]:
        listed = getattr(user, "group_list", None)
        if listed is None:
            # Not ended (an end past but not yet swept gives nothing).
            listed = Group.objects.filter(
                pk__in=Membership.objects.current().filter(user=user).values("group_id")
            ).order_by("name")
        return [g.name for g in listed]


class MembershipSerializer(serializers.Serializer):
    """One of the account's groups: its end, and where the group is
    eligible-only, whether it is activated (a membership there is an
    eligibility: it gives nothing until its member activates it at the
    screens; the API cannot activate)."""

    group = serializers.CharField(source="group.name")
    source = serializers.CharField(
        help_text="manual (given by hand or the API), sso:<provider> or scim:<client>."
    )
    ends_at = serializers.DateTimeField(
        allow_null=True, help_text="When the membership ends; null: it does not end by time."
    )
    eligible = serializers.BooleanField(
        source="group.eligible_only",
        help_text="The group is eligible-only: this membership gives its rights only while "
        "activated (`active_until`).",
    )
    active_until = serializers.SerializerMethodField(
        help_text="Until when an eligibility is activated; null when it is not (or the group "
        "is not eligible-only)."
    )
    effective = serializers.SerializerMethodField(
        help_text="Whether this membership gives the group's rights now."
    )

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_active_until(self, membership):
        until = membership.active_until
        if membership.group.eligible_only and until and until > timezone.now():
            return serializers.DateTimeField().to_representation(until)
        return None

    def get_effective(self, membership) -> bool:
        now = timezone.now()
        if membership.ends_at is not None and membership.ends_at <= now:
            return False
        if membership.group.eligible_only:
            return bool(membership.active_until and membership.active_until > now)
        return True


class AccessRequestSerializer(serializers.Serializer):
    """A request for access that is not settled: a grant that waits for a
    second admin's approval (four eyes), or an activation, waiting or active."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AccessRequest.Kind.choices)
    status = serializers.ChoiceField(choices=AccessRequest.Status.choices)
    group = serializers.CharField(source="group.name")
    ends_at = serializers.DateTimeField(
        allow_null=True, help_text="A grant: when the membership asked for would end."
    )
    active_until = serializers.DateTimeField(
        allow_null=True, help_text="An active activation: when it ends."
    )
    requested_by = serializers.CharField(source="requested_by_label")
    source = serializers.CharField()
    created_at = serializers.DateTimeField()


def memberships_of(user) -> list[Membership]:
    return list(
        Membership.objects.current()
        .filter(user=user)
        .select_related("group")
        .order_by("group__name")
    )


def pending_grants_of(user) -> list[AccessRequest]:
    return list(
        AccessRequest.objects.filter(
            user=user, kind=AccessRequest.Kind.GRANT, status=AccessRequest.Status.PENDING
        )
        .select_related("group")
        .order_by("created_at", "id")
    )


class UserDetailSerializer(UserSerializer):
    """One user, with the change of address that waits for its link, each
    membership's end and eligibility, and the grants that wait for approval."""

    pending_email = serializers.SerializerMethodField(
        help_text=(
            "A new address asked for and not yet confirmed: it replaces `email` only when "
            "the link mailed to it is followed (within 24 hours); null when none waits."
        )
    )

    memberships = serializers.SerializerMethodField(
        help_text="The account's groups that have not ended, each with its end and, for an "
        "eligible-only group, its activation."
    )
    pending_grants = serializers.SerializerMethodField(
        help_text=(
            "Memberships given in a group that asks for a second administrator's approval "
            "(four eyes): they do not take effect, and are not in `groups`, until another "
            "qualified administrator approves them at the screens (the API cannot approve)."
        )
    )

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "pending_email", "memberships", "pending_grants"]
        read_only_fields = fields

    def get_pending_email(self, user) -> str | None:
        change = email_change_pending(user)
        return change.new_email if change is not None else None

    @extend_schema_field(MembershipSerializer(many=True))
    def get_memberships(self, user):
        return MembershipSerializer(memberships_of(user), many=True).data

    @extend_schema_field(AccessRequestSerializer(many=True))
    def get_pending_grants(self, user):
        return AccessRequestSerializer(pending_grants_of(user), many=True).data


class UserFilterSerializer(serializers.Serializer):
    """The users screen's filters (accounts.selectors.user_search)."""

    q = serializers.CharField(required=False, max_length=100, allow_blank=True)
    status = serializers.ChoiceField(required=False, choices=User.Status.choices)
    group = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="A group id."
    )
    sort = serializers.ChoiceField(required=False, choices=list(USER_SORTS))
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**6)


class MembershipInputSerializer(serializers.Serializer):
    group = serializers.CharField(max_length=100, help_text="A group's name.")
    ends_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the membership ends (ISO 8601, in the future); null or left out: "
        "it does not end by time.",
    )

    def validate_ends_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("A membership's end must lie in the future.")
        return value


MEMBERSHIPS_HELP = (
    "The account's groups with their ends, instead of `groups` (give one or the other): "
    '[{"group": NAME, "ends_at": ISO 8601 or null}]. In a group that asks for a second '
    "administrator's approval, a new membership, or a later end, becomes a request (see "
    "`pending_grants` in the answer)."
)


def _one_of(serializer, data: dict) -> dict:
    given = getattr(serializer, "initial_data", {})
    if "memberships" in data and hasattr(given, "get") and given.get("groups") is not None:
        raise serializers.ValidationError(
            {"memberships": ["Give groups or memberships, not both."]}
        )
    names = [m["group"] for m in data.get("memberships", [])]
    if len(set(names)) != len(names):
        raise serializers.ValidationError({"memberships": ["A group is given twice."]})
    return data


class UserCreateSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    groups = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=100, default=list
    )
    status = serializers.ChoiceField(
        choices=User.Status.choices, required=False, default=User.Status.ACTIVE
    )
    password = serializers.CharField(
        required=False,
        write_only=True,
        max_length=4096,
        trim_whitespace=False,
        help_text="Initial password; else none (SSO, or invite).",
    )
    invite = serializers.BooleanField(
        required=False, default=False, help_text="Mail a set-password link (valid 72 hours)."
    )
    memberships = MembershipInputSerializer(
        many=True, required=False, max_length=100, help_text=MEMBERSHIPS_HELP
    )

    def validate(self, data):
        return _one_of(self, data)


class UserUpdateSerializer(serializers.Serializer):
    email = serializers.CharField(
        max_length=254,
        required=False,
        help_text=(
            "A new address (needs users:edit). It does not change `email` at once: a link is "
            "mailed to the new address and the change waits in `pending_email` until it is "
            "followed (the answer is 200, `email` unchanged). An account that SCIM or single "
            "sign-on manages follows its provider: 400."
        ),
    )
    first_name = serializers.CharField(max_length=150, required=False)
    last_name = serializers.CharField(max_length=150, required=False)
    groups = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=100
    )
    memberships = MembershipInputSerializer(
        many=True, required=False, max_length=100, help_text=MEMBERSHIPS_HELP
    )
    status = serializers.ChoiceField(choices=User.Status.choices, required=False)

    def validate(self, data):
        return _one_of(self, data)


class GroupSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Group
        fields = ["id", "name", "description", "roles", "member_count"]
        read_only_fields = fields

    def get_roles(self, group) -> list[str]:
        return sorted(r.name for r in group.roles.all())


class RoleSerializer(serializers.ModelSerializer):
    rules = serializers.SerializerMethodField()
    group_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Role
        fields = ["id", "name", "description", "rules", "group_count"]
        read_only_fields = fields

    def get_rules(self, role) -> list[str]:
        return [f"{r.effect} {r.pattern}" for r in role.rules.all()]


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    target = serializers.CharField(source="target_label")
    details = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "action",
            "outcome",
            "actor",
            "target_type",
            "target_id",
            "target",
            "ip",
            "user_agent",
            "details",
            "request_id",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "request_id": {
                "help_text": "The X-Request-ID of the request (or command run, or worker "
                "task) that wrote the event, as its log lines show it; empty for "
                "events written before ids were kept."
            }
        }


class AuditFilterSerializer(serializers.Serializer):
    actor = serializers.CharField(required=False, max_length=254, allow_blank=True)
    action = serializers.CharField(required=False, max_length=64, allow_blank=True)
    target = serializers.CharField(required=False, max_length=254, allow_blank=True)
    since = serializers.DateField(required=False, help_text="First day (UTC), inclusive.")
    until = serializers.DateField(required=False, help_text="Last day (UTC), inclusive.")
    request_id = serializers.CharField(
        required=False,
        max_length=64,
        allow_blank=True,
        help_text="The events of one request: its X-Request-ID, a log line's request_id.",
    )
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**6)


class PageSerializer(serializers.Serializer):
    page = serializers.IntegerField(
        required=False, min_value=1, max_value=10**6, help_text="Page number (50 a page)."
    )


class TokenInfoSerializer(serializers.Serializer):
    client = serializers.CharField()
    scope = serializers.CharField()
    expires = serializers.DateTimeField()
    permissions = serializers.ListField(child=serializers.CharField())


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    groups = serializers.ListField(child=serializers.CharField())
    memberships = MembershipSerializer(
        many=True,
        help_text="Each group with its end; an eligible-only group's activation (read-only: "
        "activations are asked for at the screens, with a second factor).",
    )
    access_requests = AccessRequestSerializer(
        many=True, help_text="The account's requests that wait for approval or are active."
    )
    permissions = serializers.ListField(
        child=serializers.CharField(), help_text="The account's effective permissions."
    )
    token = TokenInfoSerializer(help_text="This token: its client, scopes and what it may do.")


def page_of(serializer_class, name: str):
    """The shape of a page of `serializer_class` items (for the schema)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(help_text="Matches, counted up to 10,000."),
            "count_capped": serializers.BooleanField(help_text="More than 10,000 match."),
            "page": serializers.IntegerField(),
            "pages": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


def uncounted_page_of(serializer_class, name: str):
    """A page that is never counted (the audit trail): follow `next`."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(allow_null=True, help_text="Always null: uncounted."),
            "count_capped": serializers.BooleanField(allow_null=True, help_text="Always null."),
            "page": serializers.IntegerField(help_text="At most 200; narrow the filters for more."),
            "pages": serializers.IntegerField(allow_null=True, help_text="Always null."),
            "next": serializers.CharField(
                allow_null=True, help_text="The next (older) page; null on the oldest."
            ),
            "previous": serializers.CharField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
