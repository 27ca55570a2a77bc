"""`manage.py access export [FILE]` / `access apply FILE [--dry-run] [--prune]`:
the access model (groups, roles, rules) as a reviewed YAML file (README
"Access as code"; the format: accounts.accessfile).

`access requests` / `access approve ID [--note TEXT]` / `access deny ID
[--note TEXT]`: the requests for privileged access that wait for approval,
decided by the operator. The break-glass: a shop whose every root member is
eligible-only with activation approval has nobody left to approve the last
manager's activation but the command line.

The command line is the operator (Actor.system, channel `cli`): it may write
anything, within the root invariant and without weakening the group root
(accounts.services.access_model)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from accounts.accessfile import MAX_BYTES, FileError, parse, render
from accounts.audit import Actor
from accounts.errors import AccountError
from accounts.services import access_model_apply, access_model_snapshot
from iam import commands as base


class Command(base.Command):
    help = "Export the access model (groups, roles, rules) as YAML, or apply such a file."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="Write the access model as YAML.")
        export.add_argument(
            "file", nargs="?", default=None, help="where to write it (default: stdout)"
        )
        apply = sub.add_parser(
            "apply", help="Make the access model match a YAML file; prints the diff."
        )
        apply.add_argument("file", help="the YAML file (as `access export` writes it)")
        apply.add_argument(
            "--dry-run", action="store_true", help="show the diff and check it; change nothing"
        )
        apply.add_argument(
            "--prune",
            action="store_true",
            help="also delete the groups and roles the file does not name (default: keep them)",
        )
        sub.add_parser("requests", help="List the requests for access that wait for approval.")
        for verb, doing in (("approve", "Approve"), ("deny", "Deny")):
            decide = sub.add_parser(verb, help=f"{doing} a waiting request, as the operator.")
            decide.add_argument("id", help="the request's number (`access requests` lists them)")
            decide.add_argument("--note", default="", help="why (kept with the decision)")

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _requests(self, **_):
        from django.utils import timezone

        from accounts.models import AccessRequest

        waiting = (
            AccessRequest.objects.filter(status=AccessRequest.Status.PENDING)
            .select_related("user", "group")
            .order_by("created_at", "id")
        )
        now = timezone.now()
        rows = 0
        for request in waiting:
            age = int((now - request.created_at).total_seconds() // 60)
            age_text = f"{age // 60}h{age % 60:02d}m" if age >= 60 else f"{age}m"
            why = " ".join(request.justification.split())[:80] or "-"
            self.stdout.write(
                f"{request.pk}\t{request.kind}\t{request.user.email}\t{request.group.name}"
                f"\t{age_text}\t{why}"
            )
            rows += 1
        if not rows:
            self.stdout.write("No requests wait for approval.")

    def _decide(self, *, id, note, verb):
        from accounts.models import AccessRequest
        from accounts.services import privileged

        request = None
        if id.isascii() and id.isdigit() and len(id) < 19:
            request = (
                AccessRequest.objects.filter(pk=int(id)).select_related("user", "group").first()
            )
        if request is None:
            raise CommandError(f"No access request {id[:20]!r}.")
        decide = {
            "approve": privileged.access_request_approve,
            "deny": privileged.access_request_deny,
        }[verb]
        try:
            decide(request=request, note=note, by=Actor.system(label="cli"))
        except AccountError as exc:
            raise CommandError(f"{exc}".replace("\n", " ")) from None
        done = "approved" if verb == "approve" else "denied"
        self.stdout.write(
            f"Request {request.pk} ({request.kind} of {request.group.name} for "
            f"{request.user.email}) {done}."
        )

    def _approve(self, *, id, note, **_):
        self._decide(id=id, note=note, verb="approve")

    def _deny(self, *, id, note, **_):
        self._decide(id=id, note=note, verb="deny")

    def _export(self, *, file, **_):
        text = render(access_model_snapshot())
        if file is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(file).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{file}: cannot write it ({exc.strerror}).") from None
        self.stderr.write(f"Wrote {file}.")

    def _apply(self, *, file, dry_run, prune, **_):
        spec = parse_file(file)
        try:
            result = access_model_apply(
                spec=spec,
                prune=prune,
                dry_run=dry_run,
                by=Actor.system(label="cli"),
                source=Path(file).name,
            )
        except FileError as exc:
            raise CommandError(f"{file}: {exc}") from None
        except AccountError as exc:
            raise CommandError(f"{exc}".replace("\n", " ")) from None
        for change in result.changes:
            self.stdout.write(str(change))
        for kept in result.kept:
            self.stdout.write(f"  {kept}: not in the file, kept (--prune deletes it)")
        for warning in result.warnings:
            self.stderr.write(f"Warning: {warning}.")
        live = access_model_snapshot()["references"]
        if spec.references and spec.references != live:
            self.stderr.write(
                "Note: the file's references differ from this instance's configuration; "
                "they are read-only here (the environment and `scimtoken` own them)."
            )
        if not result.changes:
            self.stdout.write("No changes.")
            return
        created, changed, removed = (result.count(sign) for sign in "+~-")
        counts = f"{created} created, {changed} changed, {removed} removed"
        if dry_run:
            self.stdout.write(f"Dry run: {counts}; nothing was applied.")
        else:
            self.stdout.write(f"Applied: {counts}.")


def parse_file(file: str):
    """The file's access model, or a one-line CommandError naming the file."""
    path = Path(file)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise CommandError(f"{file}: no such file.") from None
    except OSError as exc:
        raise CommandError(f"{file}: cannot read it ({exc.strerror}).") from None
    if len(data) > MAX_BYTES:
        raise CommandError(f"{file}: larger than {MAX_BYTES // 1000} kB; not an access model.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{file}: not UTF-8 text.") from None
    try:
        return parse(text)
    except FileError as exc:
        raise CommandError(f"{file}: {exc}") from None
