"""`manage.py reviews`: access reviews for operators and auditors (README
"Access reviews"). Starting, deciding and stopping happen at the screens,
where the bound of the person who acts is known.

    manage.py reviews list                               # one line per review
    manage.py reviews report ID [--format csv|json] [--output FILE]
    manage.py reviews sweep                              # what the worker does each minute
"""

from __future__ import annotations

from django.core.management.base import CommandError

from iam import commands as base
from reviews import report
from reviews.models import AccessReview
from reviews.selectors import reviews_list
from reviews.services import reviews_sweep


class Command(base.Command):
    help = "List access reviews, print a review's report, or run the worker's sweep now."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="every review: id, status, decided/items, dates, name")
        rep = sub.add_parser("report", help="a review's report (CSV or JSON)")
        rep.add_argument("id", help="the review's id (from `reviews list`)")
        rep.add_argument(
            "--format", choices=["csv", "json"], default="csv", help="csv (default) or json"
        )
        rep.add_argument("--output", help="write to this file instead of standard output")
        sub.add_parser(
            "sweep", help="reminders, ends (and automatic applying), next recurring instances"
        )

    def handle(self, *args, action, **options):
        if action == "list":
            for r in reviews_list():
                self.stdout.write(
                    f"{r.pk} {r.status} {r.decided_count}/{r.item_count} "
                    f"{r.starts_at:%Y-%m-%d}..{r.ends_at:%Y-%m-%d} {r.recurrence} "
                    f"{r.name} ({r.scope_label})"
                )
        elif action == "report":
            self._report(options["id"], options["format"], options.get("output"))
        else:
            done = reviews_sweep()
            self.stdout.write(f"access reviews: {done} reminders, ends or new instances")

    def _report(self, ident: str, fmt: str, output: str | None) -> None:
        if not ident.isdigit() or len(ident) > 18:
            raise CommandError(f"{ident[:40]!r} is not a review id (see `reviews list`).")
        review = AccessReview.objects.filter(pk=int(ident)).first()
        if review is None:
            raise CommandError(f"No access review has the id {ident}.")
        try:
            out = open(output, "w", encoding="utf-8", newline="") if output else None  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from None
        target = out or self.stdout
        try:
            if fmt == "json":
                target.write(report.json_text(review) + "\n")
            else:
                report.write_csv(review, out or _Lines(self.stdout))
        finally:
            if out is not None:
                out.close()
        if out is not None:
            self.stderr.write(f"report of review {review.pk} written to {output}")


class _Lines:
    """csv.writer into a command's stdout (which adds its own line ends)."""

    def __init__(self, stdout):
        self.stdout = stdout

    def write(self, text):
        self.stdout.write(text, ending="")
