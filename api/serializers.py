"""What the API reads and writes. Serializers parse and shape; every rule
(names, emails, passwords, who may do what) is the services' (accounts)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import AuditEvent, Group, Role, User
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
            listed = user.groups.order_by("name")
        return [g.name for g in listed]


class UserDetailSerializer(UserSerializer):
    """One user, with the change of address that waits for its link."""

    pending_email = serializers.SerializerMethodField(
        help_text=(
            "A new address asked for and not yet confirmed: it replaces `email` only when "
            "the link mailed to it is followed (within 24 hours); null when none waits."
        )
    )

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "pending_email"]
        read_only_fields = fields

    def get_pending_email(self, user) -> str | None:
        change = email_change_pending(user)
        return change.new_email if change is not None else None


class UserFilterSerializer(serializers.Serializer):
    """The users screen's filters (accounts.selectors.user_search)."""

    q = serializers.CharField(required=False, max_length=100, allow_blank=True)
    status = serializers.ChoiceField(required=False, choices=User.Status.choices)
    group = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="A group id."
    )
    sort = serializers.ChoiceField(required=False, choices=list(USER_SORTS))
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**6)


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
    status = serializers.ChoiceField(choices=User.Status.choices, required=False)


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
