"""Forms of the admin screens: parse and validate input, nothing more.

Rules that need the database state (last root, groups in use) live in
`accounts.services`; their refusals come back as AccountError and are shown
on the form.
"""

from datetime import date

from django import forms
from django.contrib.auth import password_validation

from accounts.delegation import names
from accounts.inputs import InvalidInput, clean_email, clean_name
from accounts.models import Group, Role, User
from accounts.selectors import USER_SORTS, user_get_by_email
from accounts.services import AccountError, parse_rules

STATUS_CHOICES = [("active", "Active"), ("blocked", "Blocked")]
MAX_ID = 2**63 - 1  # the largest primary key any of our databases stores


def _in_range(value) -> bool:
    try:
        return 0 < int(str(value)) <= MAX_ID
    except (TypeError, ValueError):
        return False


class ModelChoiceField(forms.ModelChoiceField):
    """An id too large for the database is "not a valid choice", not a 500."""

    def to_python(self, value):
        if value not in self.empty_values and not _in_range(value):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        for pk in value:
            if not _in_range(pk):
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": str(pk)[:30]},
                )
        return super()._check_values(value)


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
            option["reason"] = f"needs {names(extra, limit=3)}, which you do not hold"
        return option


class GrantField(ModelMultipleChoiceField):
    widget = GrantChoices

    def lock(self, locked: dict) -> None:
        self.widget.locked = locked


class GroupsField(GrantField):
    def __init__(self, **kwargs):
        super().__init__(queryset=Group.objects.order_by("name"), required=False, **kwargs)


class UserFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *STATUS_CHOICES])
    group = ModelChoiceField(
        required=False, queryset=Group.objects.order_by("name"), empty_label="Any group"
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for key in USER_SORTS],
    )

    def filters(self) -> dict:
        """Valid filters only: a bad value is dropped, never a 500."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "q": data.get("q") or "",
            "status": data.get("status") or "",
            "group": data.get("group"),
            "sort": data.get("sort") or "email",
        }


def _parsed(clean, *args):
    """accounts.inputs' rules, their refusal as this field's error."""
    try:
        return clean(*args)
    except InvalidInput as exc:
        raise forms.ValidationError(str(exc)) from None


class _UserFields(forms.Form):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.EmailField(max_length=254)
    groups = GroupsField()
    status = forms.ChoiceField(choices=STATUS_CHOICES, widget=forms.RadioSelect, initial="active")

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
            status.help_text = "Blocking and unblocking needs backoffice:users:block."
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_status(self):
        return self.cleaned_data.get("status") or self.get_initial_for_field(
            self.fields["status"], "status"
        )

    def clean_first_name(self):
        return _parsed(clean_name, self.cleaned_data["first_name"], "First name")

    def clean_last_name(self):
        return _parsed(clean_name, self.cleaned_data["last_name"], "Last name")

    def clean_email(self):
        email = _parsed(clean_email, self.cleaned_data["email"])
        existing = user_get_by_email(email)
        if existing is not None and (self.instance is None or existing.pk != self.instance.pk):
            raise forms.ValidationError("A user with this email already exists.")
        return email


class UserCreateForm(_UserFields):
    password_mode = forms.ChoiceField(
        label="Password",
        choices=[
            ("invite", "Send a set-password email (the link is valid 72 hours)"),
            ("password", "Set an initial password now"),
        ],
        widget=forms.RadioSelect,
        initial="invite",
    )
    password1 = forms.CharField(
        label="Initial password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Initial password (again)",
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
            self.add_error("password1", "Type the initial password, or choose the email.")
        elif p1 != p2:
            self.add_error("password2", "The two passwords do not match.")
        else:
            probe = User(
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
            )
            try:
                password_validation.validate_password(p1, user=probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class UserEditForm(_UserFields):
    pass


class _ReadOnlyWhenAsked(forms.Form):
    def __init__(self, *args, read_only: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if read_only:
            for field in self.fields.values():
                field.disabled = True


class GroupForm(_ReadOnlyWhenAsked):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=255, required=False)
    roles = GrantField(queryset=Role.objects.order_by("name"), required=False)

    def __init__(self, *args, locked_roles: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].lock(locked_roles or {})


class RoleForm(_ReadOnlyWhenAsked):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=255, required=False)
    rules = forms.CharField(
        required=False,
        max_length=20_000,  # a role's rules, not a place to upload megabytes
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=(
            "One rule per line: allow or deny, then area:screen:action. Each part is a "
            "lower-case name or * for any, e.g. 'allow backoffice:users:*' or "
            "'deny backoffice:users:delete'. Deny wins over allow."
        ),
    )

    def clean_rules(self):
        try:
            return parse_rules(self.cleaned_data["rules"])
        except AccountError as exc:
            raise forms.ValidationError(str(exc)) from None


class AuditFilterForm(forms.Form):
    # The oldest and newest day a filter may name: dates beyond either are a
    # typo, and the day after 9999-12-31 does not exist.
    FIRST_DAY = date(2000, 1, 1)
    LAST_DAY = date(9998, 12, 31)

    actor = forms.CharField(required=False, max_length=254, label="Actor")
    action = forms.CharField(required=False, max_length=64, label="Action")
    target = forms.CharField(required=False, max_length=254, label="Target")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def _day(self, name: str):
        day = self.cleaned_data.get(name)
        if day is not None and not self.FIRST_DAY <= day <= self.LAST_DAY:
            raise forms.ValidationError(
                f"Enter a day between {self.FIRST_DAY:%Y-%m-%d} and {self.LAST_DAY:%Y-%m-%d}."
            )
        return day

    def clean_since(self):
        return self._day("since")

    def clean_until(self):
        return self._day("until")

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end day is before the start day.")
        return data

    def problems(self) -> list[str]:
        """Each error with the label people see next to the field."""
        self.is_valid()
        return [
            f"{self.fields[name].label if name in self.fields else 'Filter'}: {error}"
            for name, errors in self.errors.items()
            for error in errors
        ]

    def filters(self) -> dict | None:
        """The filters, or None when one of them is not valid."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        return {key: data.get(key) or "" for key in ("actor", "action", "target")} | {
            "since": data.get("since"),
            "until": data.get("until"),
        }
