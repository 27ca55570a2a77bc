"""`python -m benchmarks <name> [--json FILE] [options]`: run one benchmark,
print its tables as Markdown, and with --json write them and their figures
to FILE with the machine, commit, command line and time."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks.results import context

# name → module of this package; each has a docstring (its first line is the
# summary shown by --help), add_arguments(parser) and run(args) -> Result.
BENCHMARKS = {
    "argon2": "argon2",
    "ab": "ab",
    "observability": "observability",
    "p1": "p1",
    "p2": "p2",
    "keepalive": "keepalive",
    "users-list": "users_list",
    "audit-scale": "audit_scale",
    "scim-membership": "scim_membership",
    "sso-callback": "sso_callback",
    "saml-acs": "saml_acs",
    "reset-timing": "reset_timing",
    "token-grants": "token_grants",
    "load": "load",
    "memory": "memory",
    "faults": "faults",
    "profile": "profile",
    "report": "report",
    "audit-seal": "audit_seal",
}


def module(name: str):
    return importlib.import_module(f"benchmarks.{BENCHMARKS[name]}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of the IAM service; see benchmarks/README.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", type=Path, metavar="FILE", help="also write the result here")
    subparsers = top.add_subparsers(dest="benchmark", required=True, metavar="<name>")
    for name in BENCHMARKS:
        mod = module(name)
        doc = (mod.__doc__ or "").strip()
        sub = subparsers.add_parser(
            name,
            parents=[common],
            help=doc.splitlines()[0].replace("%", "%%"),
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    started = context(argv)
    result = module(args.benchmark).run(args)
    print(result.markdown())
    if args.json:
        result.write_json(args.json, started)
        print(f"\nwritten: {args.json}", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
