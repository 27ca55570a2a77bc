"""Audit log: read-only for everyone; filter, page, export as CSV."""

import csv

from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import KNOWN_ACTIONS
from accounts.models import AuditEvent
from accounts.selectors import audit_search
from backoffice.audit_display import details_json
from backoffice.forms import AuditFilterForm
from backoffice.permissions import requires
from iam.paging import page_of

CSV_COLUMNS = [
    "time_utc",
    "action",
    "outcome",
    "actor",
    "target_type",
    "target_id",
    "target",
    "ip",
    "user_agent",
    "details",
    "channel",
]
EXPORT_LIMIT = 100_000


@requires("backoffice:audit:view")
def audit_list(request):
    filters = AuditFilterForm(request.GET or None)
    chosen = filters.filters() if request.GET else {}
    # A filter that is not valid lists nothing (and says why), as the export refuses.
    events = AuditEvent.objects.none() if chosen is None else audit_search(**chosen)
    page = page_of(request, events.select_related(None))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "problems": filters.problems() if request.GET else [],
        "query": query.urlencode(),
        "actions": KNOWN_ACTIONS,
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
    filters = AuditFilterForm(request.GET or None)
    chosen = filters.filters() if request.GET else {}
    if chosen is None:
        # Never "everything" instead of what was asked for.
        body = _("The export was refused: %(problems)s") % {
            "problems": " ".join(filters.problems())
        }
        return HttpResponseBadRequest(body, content_type="text/plain; charset=utf-8")
    events = audit_search(**chosen)[:EXPORT_LIMIT]
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for e in events.iterator(chunk_size=2000):
            yield writer.writerow(
                _safe(v)
                for v in (
                    e.created_at.isoformat(),
                    e.action,
                    e.outcome,
                    e.actor_label,
                    e.target_type,
                    e.target_id,
                    e.target_label,
                    e.ip,
                    e.user_agent,
                    details_json(e.details),
                    e.channel,
                )
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
