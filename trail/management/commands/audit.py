"""`manage.py audit verify [--since DATE] [--archive DIR]` and `manage.py
audit search --archive DIR [filters]`: the auditor's two questions, "is the
trail intact?" and "what does the archive say?".

verify prints one line per kind of problem found (the first of that kind),
then exits 1; or a summary and exit 0. search prints the matching archived
events as JSON lines, straight from the gzip files (no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils.dateparse import parse_date, parse_datetime

from iam.commands import Command as BaseCommand
from trail.archive_files import ArchiveError
from trail.models import AuditAnchor
from trail.selectors import Filters, archive_search, archive_verify, trail_verify


def moment(text: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time (UTC unless it says)."""
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            value = datetime.combine(day, time()) if day else None
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def expected(text: str) -> tuple[int, str]:
    seq, _, mac = text.partition(":")
    if not seq.isdigit() or len(mac) != 64 or not all(c in "0123456789abcdef" for c in mac):
        raise CommandError("--expect takes SEQ:MAC, e.g. 12:3f1a… (64 hex digits)")
    return int(seq), mac


class Command(BaseCommand):
    help = "Verify the audit trail's seals, or verify and search an archive."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="Check the seals; exit 1 on any problem.")
        verify.add_argument("--since", help="Start at the seal covering this date (YYYY-MM-DD).")
        verify.add_argument("--archive", help="Check this archive directory instead.")
        verify.add_argument(
            "--expect",
            metavar="SEQ:MAC",
            help="A seal's MAC recorded outside the database: the chain must still hold it.",
        )
        search = sub.add_parser("search", help="Print archived events (JSON lines).")
        search.add_argument("--archive", required=True, help="The archive directory.")
        search.add_argument("--actor", default="", help="Who acted (part of the name).")
        search.add_argument("--action", default="", help="An action code or its prefix (login).")
        search.add_argument("--target", default="", help="The target (part of its name, or id).")
        search.add_argument("--since", help="From this date or time (UTC).")
        search.add_argument("--until", help="Before this date or time (UTC).")

    def handle(self, *args, subcommand, **options):
        try:
            if subcommand == "search":
                return self._search(**options)
            return self._verify(**options)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CommandError(f"the database could not be read: {first}") from None

    def _verify(self, *, since, archive, expect, **options):
        if archive:
            if since or expect:
                raise CommandError("--since and --expect apply to the database, not to --archive")
            report = archive_verify(directory=Path(archive))
            what = f"archive {archive}"
            self._anchor_note(report)
        else:
            report = trail_verify(
                since=moment(since) if since else None, expect=expected(expect) if expect else None
            )
            what = "audit trail"
        for problem in report.problems():
            self.stdout.write(problem)
        if not report.ok:
            raise CommandError(
                f"{what} NOT verified: {sum(report.counts.values())} problems "
                "(the first of each kind above)"
            )
        summary = f"{report.events} events in {report.seals} seals verified"
        if not archive:
            summary += f", {report.unsealed} newer events not yet sealed"
        notes = "; ".join(report.notes)
        self.stdout.write(f"{what} OK: {summary}" + (f" ({notes})" if notes else ""))

    def _anchor_note(self, report):
        """Where the database's chain continues, so an auditor sees whether
        this archive reaches it (informational: an older copy may not)."""
        try:
            anchor = AuditAnchor.objects.filter(pk=1).values_list("seq", flat=True).first()
        except DatabaseError:
            return
        if anchor is not None:
            report.notes.append(f"the database continues after archived seal {anchor}")

    def _search(self, *, archive, actor, action, target, since, until, **options):
        filters = Filters(
            actor=actor,
            action=action,
            target=target,
            since=moment(since) if since else None,
            until=moment(until) if until else None,
        )
        found = 0
        for event in archive_search(directory=Path(archive), filters=filters):
            self.stdout.write(json.dumps(event, ensure_ascii=False, sort_keys=True))
            found += 1
        self.stderr.write(f"{found} events found (not verified: see `audit verify --archive`)")
