"""Report: the latest results (benchmarks/results/*.json) as Markdown, or into the README.

Each JSON file is one run written by `--json`; this prints, per file, where
and when it ran and its tables. With --write the section of
benchmarks/README.md between the results markers is replaced, so the README
shows what the files hold and no figure is copied by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks.results import Result, Table

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def add_arguments(parser) -> None:
    parser.add_argument("--results", type=Path, default=HERE / "results", metavar="DIR")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")


def section(path: Path) -> str:
    run = json.loads(path.read_text())
    machine = run["machine"]
    head = (
        f"#### `{path.name}`\n\n`{run['command']}`: {run['when']}, commit {run['commit']}"
        f"{'' if run['tree_clean'] else ' (with uncommitted changes)'}, "
        f"{machine['cores']} × {machine['cpu']}, load {machine['load_average_1_5_15'][0]}"
    )
    # Untitled tables restate the command's settings: the command line says them.
    tables = [
        Table(t["title"], t["columns"], t["rows"]).markdown() for t in run["tables"] if t["title"]
    ]
    return "\n\n".join([head, *tables, *run["notes"]])


def run(args) -> Result:
    files = sorted(args.results.glob("*.json"))
    text = "\n\n".join(section(path) for path in files) or "(no results yet)"
    if args.write:
        readme = HERE / "README.md"
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
        updated = pattern.sub(lambda _: f"{START}\n\n{text}\n\n{END}", readme.read_text())
        readme.write_text(updated)
    return Result("report", notes=[text])
