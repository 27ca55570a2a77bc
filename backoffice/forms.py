"""Forms of the admin screens: parse input, nothing more.

Every rule (unique and canonical email, names, the password policy, what an
admin may give) lives in `accounts.services`; its refusals come back as
AccountError, shown on the field they name (backoffice.views.named).
"""

from collections import Counter

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.delegation import names
from accounts.errors import AccountError
from accounts.filters import (  # noqa: F401  (the screens' filters come from there)
    AuditFilterForm,
    ModelChoiceField,
    ModelMultipleChoiceField,
    UserFilterForm,
)
from accounts.models import Group, Role, User
from accounts.resources import REGISTRY, matching, parse_rules


class GrantChoices(forms.CheckboxSelectMultiple):
    """Checkboxes for the groups or roles an admin gives. Those beyond the
    admin's permissions (`locked`: id → what lies beyond) are disabled and say
    why; a checked one is also posted as a hidden input, so the browser sends
    the whole wanted set and only real changes reach the service, which
    refuses (and audits) any other."""

    option_template_name = "backoffice/widgets/grant_option.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.locked: dict = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        extra = self.locked.get(getattr(value, "value", value))
        if extra:
            option["attrs"]["disabled"] = True
            option["reason"] = _("needs %(permissions)s, which you do not hold") % {
                "permissions": names(extra, limit=3)
            }
        return option


class GrantField(ModelMultipleChoiceField):
    widget = GrantChoices

    def lock(self, locked: dict) -> None:
        self.widget.locked = locked


class GroupsField(GrantField):
    def __init__(self, **kwargs):
        super().__init__(queryset=Group.objects.order_by("name"), required=False, **kwargs)


def language_choices():
    return [("", _("The browser's language"))] + list(settings.LANGUAGES)


class LanguageField(forms.ChoiceField):
    """The interface language of an account (blank: the browser decides)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Language"))
        super().__init__(choices=language_choices, required=False, **kwargs)


class _UserFields(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    email = forms.EmailField(label=_("Email"), max_length=254)
    groups = GroupsField(label=_("Groups"))
    status = forms.ChoiceField(
        label=_("Status"),
        choices=User.Status.choices,
        widget=forms.RadioSelect,
        initial=User.Status.ACTIVE,
    )
    language = LanguageField()

    def __init__(
        self,
        *args,
        instance: User | None = None,
        locked_groups: dict | None = None,
        may_set_status: bool = True,
        read_only: bool = False,
        **kwargs,
    ):
        """`locked_groups`, `may_set_status` and `read_only` say what this
        admin may change (accounts.delegation decides; the form only shows it)."""
        self.instance = instance
        super().__init__(*args, **kwargs)
        self.fields["groups"].lock(locked_groups or {})
        if not may_set_status:
            # Shown, not offered. A status posted anyway still reaches the
            # service, which refuses it (and audits the attempt).
            status = self.fields["status"]
            status.required = False
            status.widget.attrs["disabled"] = True
            status.help_text = _("Blocking and unblocking needs backoffice:users:block.")
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_status(self):
        return self.cleaned_data.get("status") or self.get_initial_for_field(
            self.fields["status"], "status"
        )


class UserCreateForm(_UserFields):
    password_mode = forms.ChoiceField(
        label=_("Password"),
        choices=[
            ("invite", _("Send a set-password email (the link is valid 72 hours)")),
            ("password", _("Set an initial password now")),
        ],
        widget=forms.RadioSelect,
        initial="invite",
    )
    password1 = forms.CharField(
        label=_("Initial password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Initial password (again)"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password_mode") != "password":
            data["password1"] = data["password2"] = ""
            return data
        p1, p2 = data.get("password1", ""), data.get("password2", "")
        if not p1:
            self.add_error("password1", _("Type the initial password, or choose the email."))
        elif p1 != p2:
            self.add_error("password2", _("The two passwords do not match."))
        return data


class UserEditForm(_UserFields):
    def __init__(self, *args, address_manager: str = "", **kwargs):
        """`address_manager` names who keeps the address (its provider, or an
        API client for its service account): said beside it (a change is
        refused, with the same words)."""
        super().__init__(*args, **kwargs)
        self.fields["email"].help_text = _(
            "A new address takes effect when the link mailed to it is followed."
        )
        if address_manager:
            self.fields["email"].help_text = _(
                "The address of this account is managed by %(manager)s; change it there."
            ) % {"manager": address_manager}


END_FORMAT = "%Y-%m-%dT%H:%M"


class EndField(forms.DateTimeField):
    """When a membership ends: a date and time in the server's time zone
    (settings.TIME_ZONE); blank is no end."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=END_FORMAT),
            **kwargs,
        )


class UserGroupsForm(forms.Form):
    """The Groups tab: the account's groups alone (its other fields stay),
    each with an optional end (`end-<group pk>`). `ends` ({group pk: end})
    are the stored ends; `ends()` returns only those the admin changed, for
    the groups kept or given, so saving the tab for another change moves no
    end (the input shows minutes, the stored end may hold seconds)."""

    groups = GroupsField(label=_("Groups"))

    def __init__(
        self, *args, locked_groups: dict | None = None, ends: dict | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.locked = locked_groups or {}
        self.stored_ends = ends or {}
        self.fields["groups"].lock(self.locked)
        for group in self.fields["groups"].queryset:
            field = EndField(label=_("End of membership in %(name)s") % {"name": group.name})
            field.initial = self.stored_ends.get(group.pk)
            if group.pk in self.locked:
                field.widget.attrs["disabled"] = True
            self.fields[self.end_name(group.pk)] = field

    @staticmethod
    def end_name(pk) -> str:
        return f"end-{pk}"

    def end_field(self, pk):
        return self[self.end_name(pk)]

    def ends(self) -> dict:
        """{group pk: aware datetime or None} for the ends changed here."""
        from django.utils import timezone

        def minute(when):
            return timezone.localtime(when).strftime(END_FORMAT) if when else None

        changed = {}
        for group in self.cleaned_data.get("groups") or ():
            if group.pk in self.locked:
                continue  # shown, not offered (a disabled input posts nothing)
            posted = self.cleaned_data.get(self.end_name(group.pk))
            if group.pk in self.stored_ends:
                if minute(posted) == minute(self.stored_ends[group.pk]):
                    continue
            elif posted is None:
                continue
            changed[group.pk] = posted
        return changed


class LanguageForm(forms.Form):
    """My account: the user's own interface language."""

    language = LanguageField()


class _ReadOnlyWhenAsked(forms.Form):
    def __init__(self, *args, read_only: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if read_only:
            for field in self.fields.values():
                field.disabled = True


class GroupForm(_ReadOnlyWhenAsked):
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), max_length=255, required=False)
    roles = GrantField(label=_("Roles"), queryset=Role.objects.order_by("name"), required=False)
    # The privileged-access settings (accounts.services.groups.POLICY); the
    # service checks them (range, the four-eyes rule).
    eligible_only = forms.BooleanField(
        label=_("Eligible only (members activate it when they need it)"), required=False
    )
    max_activation_hours = forms.IntegerField(
        label=_("Longest activation (hours)"),
        initial=8,
        min_value=1,
        max_value=24 * 7,
        required=False,  # left empty: kept (a new group: the default)
    )
    activation_approval = forms.BooleanField(
        label=_("Activation needs another person's approval"), required=False
    )
    grant_approval = forms.BooleanField(
        label=_("Every new membership needs a second administrator's approval (four eyes)"),
        required=False,
    )
    POLICY = ("eligible_only", "max_activation_hours", "activation_approval", "grant_approval")

    @classmethod
    def with_policy(cls, save):
        """`save(**cleaned_data)` as the group services take it: the
        settings gathered in `policy={...}`."""

        def run(**data):
            data["policy"] = {field: data.pop(field, None) for field in cls.POLICY}
            return save(**data)

        return run

    def __init__(self, *args, locked_roles: dict | None = None, name_fixed: str = "", **kwargs):
        """`name_fixed` says why the name cannot change (a group the
        configuration names): shown, not offered."""
        super().__init__(*args, **kwargs)
        self.fields["roles"].lock(locked_roles or {})
        if name_fixed:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = _("This group %(why)s: its name cannot change.") % {
                "why": _(name_fixed)
            }


class RoleForm(_ReadOnlyWhenAsked):
    """A role's rules: the grid holds the rules on single resources (one
    cell each), the text the others (wildcards); saved together, the text's
    rules added to the grid's. Cells the actor may not give are disabled and
    say why; a forged value still reaches the service, which refuses it."""

    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), max_length=255, required=False)
    rules = forms.CharField(
        label=_("Rules"),
        required=False,
        max_length=20_000,  # a role's rules, not a place to upload megabytes
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=_(
            "One rule per line: allow or deny, then area:screen:action. Each part is a "
            "lower-case name or * for any, e.g. 'allow backoffice:users:*' or "
            "'deny backoffice:users:delete'. Deny wins over allow. Only the rules are "
            "stored: text after # (a comment) is not kept, and a repeated rule is kept once."
        ),
    )

    def __init__(self, *args, held: frozenset | None = None, **kwargs):
        initial = dict(kwargs.pop("initial", None) or {})
        grid, text = split_rules(initial.pop("rule_rows", ()))
        initial.setdefault("rules", text)
        initial.update({cell_name(r): effect for r, effect in grid.items()})
        super().__init__(*args, initial=initial, **kwargs)
        self.held = held
        for resource in GRID:
            _area, screen, action = resource.split(":")
            label = f"{SCREENS.get(screen, screen)}: {ACTIONS.get(action, action)}"
            field = forms.ChoiceField(label=label, required=False, choices=CELL_CHOICES)
            field.disabled = self.fields["name"].disabled
            field.widget.attrs["aria-label"] = label
            if held is not None and resource not in held:
                field.widget.attrs["disabled"] = True
                field.reason = _("you do not hold it")
                field.widget.attrs["aria-describedby"] = f"{cell_name(resource)}-why"
            self.fields[cell_name(resource)] = field

    def clean_rules(self):
        try:
            return parse_rules(self.cleaned_data["rules"])
        except AccountError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        cells = [(data.pop(cell_name(r), "") or "", r) for r in GRID]
        grid = [(effect, r) for effect, r in cells if effect]
        if "rules" in data:
            data["rules"] = grid + [rule for rule in data["rules"] if rule not in grid]
        return data

    def grid(self):
        """Rows of the picker: a screen and, per action, its cell (or None)."""
        text = self["rules"].value() or ""
        try:
            extra = parse_rules(text)
        except AccountError:
            extra = []
        rows = []
        for screen, screen_label in SCREENS.items():
            cells = []
            for action in ACTIONS:
                resource = f"backoffice:{screen}:{action}"
                if resource not in GRID:
                    cells.append(None)
                    continue
                field = self[cell_name(resource)]
                # A cell set in the grid says so itself; an empty one shows the text rule.
                cells.append(
                    {
                        "field": field,
                        "by": "" if field.value() else _granted_by(resource, extra),
                        "reason": getattr(field.field, "reason", ""),
                    }
                )
            rows.append({"label": screen_label, "cells": cells})
        return rows

    def actions(self):
        return list(ACTIONS.values())


SCREENS = {
    "users": _("Users"),
    "groups": _("Groups"),
    "roles": _("Roles"),
    "audit": _("Audit log"),
    "api-clients": _("API clients"),
}
ACTIONS = {
    "view": _("View"),
    "create": _("Create"),
    "edit": _("Edit"),
    "block": _("Block"),
    "delete": _("Delete"),
    "reset-password": _("Reset password"),
    "reset-mfa": _("Reset two-factor authentication"),
    "export": _("Export"),
}
# The resources the grid shows; any other (a future area) stays in the text.
GRID = tuple(
    r
    for r in REGISTRY
    if r.startswith("backoffice:") and r.split(":")[1] in SCREENS and r.split(":")[2] in ACTIONS
)
CELL_CHOICES = (("", "—"), ("allow", _("Allow")), ("deny", _("Deny")))


def cell_name(resource: str) -> str:
    """The grid field of one resource: `cell-users-view`."""
    return "cell-" + resource.split(":", 1)[1].replace(":", "-")


def split_rules(rows) -> tuple[dict, str]:
    """A role's stored rules as the form shows them: one rule per single
    resource to the grid, the rest (wildcards, or a resource with both an
    allow and a deny) to the text, so nothing is lost or expanded."""
    rows = list(rows)
    count = Counter(pattern for _effect, pattern in rows)
    grid = {p: e for e, p in rows if p in GRID and count[p] == 1}
    text = "\n".join(f"{e} {p}" for e, p in rows if p not in grid)
    return grid, text


def _granted_by(resource: str, rules) -> str:
    """What a text rule does to a resource, for the grid to show: 'deny P'
    when a deny matches, else 'allow P', else ''."""
    hits = [(e, p) for e, p in rules if resource in matching(p)]
    for effect in ("deny", "allow"):
        for e, p in hits:
            if e == effect:
                return f"{e} {p}"
    return ""
