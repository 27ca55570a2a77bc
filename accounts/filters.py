"""The filters of the users list and the audit trail, parsed once for every
door that lists them (the screens and the API): a bad value is a clear error
with the field's label, never a 500 and never "everything" instead."""

from datetime import date

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Group, User
from accounts.selectors import USER_SORTS
from iam.logs import REQUEST_ID_PATTERN

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


class UserFilterForm(forms.Form):
    # The search matches every word in email or names; a longer one is
    # refused (and says so) rather than silently cut or ignored.
    MAX_LENGTH = 100
    MAX_WORDS = 5

    q = forms.CharField(
        required=False,
        max_length=MAX_LENGTH,
        label=_("Search"),
        error_messages={
            "max_length": format_lazy(
                _("A search is {count} characters at most."), count=MAX_LENGTH
            )
        },
    )
    status = forms.ChoiceField(
        required=False, label=_("Status"), choices=[("", _("Any status")), *User.Status.choices]
    )
    group = ModelChoiceField(
        required=False,
        label=_("Group"),
        queryset=Group.objects.order_by("name"),
        empty_label=_("Any group"),
    )
    ending = forms.BooleanField(required=False, label=_("Membership ends within 7 days"))
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for key in USER_SORTS],
    )

    def clean_q(self):
        q = self.cleaned_data.get("q") or ""
        if len(q.split()) > self.MAX_WORDS:
            raise forms.ValidationError(
                _("Search with %(count)s words at most.") % {"count": self.MAX_WORDS}
            )
        return q

    def search_refused(self) -> bool:
        """A search that was typed but not valid: list nobody rather than everyone."""
        self.is_valid()
        return "q" in self.errors

    def filters(self) -> dict:
        """Valid filters only: a bad value is dropped, never a 500."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "q": data.get("q") or "",
            "status": data.get("status") or "",
            "group": data.get("group"),
            "ending": bool(data.get("ending")),
            "sort": data.get("sort") or "email",
        }


class AuditFilterForm(forms.Form):
    # The oldest and newest day a filter may name: dates beyond either are a
    # typo, and the day after 9999-12-31 does not exist.
    FIRST_DAY = date(2000, 1, 1)
    LAST_DAY = date(9998, 12, 31)

    actor = forms.CharField(required=False, max_length=254, label=_("Actor"))
    action = forms.CharField(required=False, max_length=64, label=_("Action"))
    target = forms.CharField(required=False, max_length=254, label=_("Target"))
    # The X-Request-ID of a response, the request_id of a log line.
    request_id = forms.RegexField(
        required=False,
        max_length=64,
        regex=rf"^{REQUEST_ID_PATTERN}$",
        label=_("Request ID"),
        error_messages={"invalid": _("Enter a request ID as a log line shows it.")},
    )
    # A date input sends and shows ISO days whatever the page's language.
    since = forms.DateField(
        required=False,
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    until = forms.DateField(
        required=False,
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def _day(self, name: str):
        day = self.cleaned_data.get(name)
        if day is not None and not self.FIRST_DAY <= day <= self.LAST_DAY:
            raise forms.ValidationError(
                _("Enter a day between %(first)s and %(last)s.")
                % {"first": f"{self.FIRST_DAY:%Y-%m-%d}", "last": f"{self.LAST_DAY:%Y-%m-%d}"}
            )
        return day

    def clean_since(self):
        return self._day("since")

    def clean_until(self):
        return self._day("until")

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end day is before the start day."))
        return data

    def problems(self) -> list[str]:
        """Each error with the label people see next to the field."""
        self.is_valid()
        return [
            f"{self.fields[name].label if name in self.fields else _('Filter')}: {error}"
            for name, errors in self.errors.items()
            for error in errors
        ]

    def filters(self) -> dict | None:
        """The filters, or None when one of them is not valid."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        return {key: data.get(key) or "" for key in ("actor", "action", "target", "request_id")} | {
            "since": data.get("since"),
            "until": data.get("until"),
        }
