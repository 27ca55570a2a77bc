"""Audit log: read-only for everyone; filter, page, export as CSV."""

import csv
import unicodedata

from django import forms
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.audit import CHANNELS, KNOWN_ACTIONS, action_label
from accounts.models import AuditEvent
from accounts.selectors import audit_search, audit_stream
from backoffice.audit_display import details_json
from backoffice.forms import AuditFilterForm
from backoffice.permissions import requires
from iam.paging import uncounted_page_of

# The export's columns: a stable name (the header in English, and what a
# script reads) and the header in the reader's language. The action's code
# stays beside its label, so tools can parse it.
CSV_COLUMNS = [
    ("time_utc", gettext_lazy("Time (UTC)")),
    ("action", gettext_lazy("Action code")),
    ("action_label", gettext_lazy("Action")),
    ("outcome", gettext_lazy("Outcome")),
    ("actor", gettext_lazy("Actor")),
    ("target_type", gettext_lazy("Target type")),
    ("target_id", gettext_lazy("Target ID")),
    ("target", gettext_lazy("Target")),
    ("ip", gettext_lazy("IP")),
    ("user_agent", gettext_lazy("User agent")),
    ("details", gettext_lazy("Details (JSON)")),
    ("channel", gettext_lazy("Channel")),
    ("request_id", gettext_lazy("Request ID")),
]


class AuditScreenFilter(AuditFilterForm):
    """The shared audit filters, and two the screens offer as lists: the
    outcome and the door (channel). A value not in the list is an error
    that lists nothing, as every other filter's."""

    outcome = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Outcome"),
        choices=[("", gettext_lazy("Any outcome")), *AuditEvent.Outcome.choices],
        widget=forms.Select(attrs={"aria-label": gettext_lazy("Outcome")}),
    )
    channel = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Channel"),
        choices=[("", gettext_lazy("Any channel")), *((c, c) for c in sorted(CHANNELS))],
        widget=forms.Select(attrs={"aria-label": gettext_lazy("Channel")}),
    )

    def search(self):
        """The events these filters name, or None when one is not valid."""
        if not self.data:
            return audit_search()
        chosen = self.filters()
        if chosen is None:
            return None
        lists = {n: self.cleaned_data[n] for n in ("outcome", "channel") if self.cleaned_data[n]}
        return audit_search(**chosen).filter(**lists)


def _sort_key(text: str) -> str:
    """Ä sorts with A, as a reader looks for it."""
    plain = unicodedata.normalize("NFKD", text)
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold()


def action_choices(chosen: str = "") -> list[tuple[str, str]]:
    """The Action filter's options: every action, named in the reader's
    language and sorted by that name. A code that is not one of them (an
    old link's prefix, such as "mfa.") stays offered, and chosen."""
    choices = sorted(
        ((a, str(action_label(a))) for a in KNOWN_ACTIONS), key=lambda c: _sort_key(c[1])
    )
    if chosen and chosen not in KNOWN_ACTIONS:
        choices.insert(0, (chosen, chosen))
    return choices


@requires("backoffice:audit:view")
def audit_list(request):
    filters = AuditScreenFilter(request.GET or None)
    events = filters.search()
    # A filter that is not valid lists nothing (and says why), as the export refuses.
    events = AuditEvent.objects.none() if events is None else events
    # Not counted: at ten million events a count is what would cost
    # (iam.paging.UncountedPage, benchmarks/audit_scale.py).
    page = uncounted_page_of(request, events.select_related(None))
    query = request.GET.copy()
    query.pop("page", None)
    action = (request.GET.get("action") or "").strip()[:64]
    context = {
        "page": page,
        "filters": filters,
        "problems": filters.problems() if request.GET else [],
        "query": query.urlencode(),
        "actions": action_choices(action),
        "action": action,
    }
    return render(request, "backoffice/audit_list.html", context)


class _Echo:
    def write(self, value):
        return value


def _safe(value) -> str:
    """Spreadsheets run cells that start with = + - @: defuse them."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@requires("backoffice:audit:export")
def audit_export(request):
    filters = AuditScreenFilter(request.GET or None)
    events = filters.search()
    if events is None:
        # Never "everything" instead of what was asked for.
        body = _("The export was refused: %(problems)s") % {
            "problems": " ".join(filters.problems())
        }
        return HttpResponseBadRequest(body, content_type="text/plain; charset=utf-8")
    # No limit: the rows stream from a cursor (accounts.selectors.audit_stream),
    # so a million cost the server no more memory than a thousand, and an
    # export that stopped at a limit would say less than was asked, silently.
    # Where a comma is the decimal separator (German), spreadsheets split on
    # ";" and read UTF-8 only after a byte order mark.
    comma = formats.get_format("DECIMAL_SEPARATOR") == ","
    writer = csv.writer(_Echo(), delimiter=";" if comma else ",")
    english = not comma and (getattr(request, "LANGUAGE_CODE", "") or "en").startswith("en")
    header = [name if english else str(title) for name, title in CSV_COLUMNS]
    # Named now, in this request's language: the rows are written later.
    labels = {code: str(action_label(code)) for code in KNOWN_ACTIONS}

    def rows():
        yield ("\ufeff" if comma else "") + writer.writerow(header)
        for e in audit_stream(events):
            yield writer.writerow(
                _safe(v)
                for v in (
                    e.created_at.isoformat(),
                    e.action,
                    labels.get(e.action, e.action),
                    e.outcome,
                    e.actor_label,
                    e.target_type,
                    e.target_id,
                    e.target_label,
                    e.ip,
                    e.user_agent,
                    details_json(e.details),
                    e.channel,
                    e.request_id,
                )
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
