"""A benchmark's result: tables printed as Markdown and, with --json, written
to a file with what is needed to judge it later (machine, commit, command
line, time), so no figure has to be copied by hand."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", ""] if self.title else []
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("| --- |" + " ---: |" * (len(self.columns) - 1))
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Result:
    """What a benchmark returns: human tables, machine-readable figures
    (`figures`: name → number or dict), free notes, and an exit status
    (non-zero when a check inside the benchmark failed)."""

    name: str
    tables: list[Table] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed: bool = False

    def markdown(self) -> str:
        parts = [table.markdown() for table in self.tables] + self.notes
        return "\n\n".join(parts)

    def write_json(self, path: Path, context: dict) -> None:
        document = {
            "benchmark": self.name,
            **context,
            "finished": now(),
            "figures": self.figures,
            "tables": [table.__dict__ for table in self.tables],
            "notes": self.notes,
            "failed": self.failed,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def context(argv: list[str]) -> dict:
    """Where and on what a run starts: taken before it runs, so a commit
    made meanwhile is not credited with it."""
    return {
        "when": now(),
        "command": " ".join(["python -m benchmarks", *argv]),
        "commit": git("rev-parse", "--short", "HEAD"),
        "tree_clean": git("status", "--porcelain", "--untracked-files=no") == "",
        "machine": machine(),
    }


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def spread(values: list[float]) -> dict:
    """Median, middle half (quartiles) and range of a list of figures (NaN
    each when there are none, e.g. no pair had CPU on side A to divide by)."""
    if not values:
        nan = float("nan")
        return {"median": nan, "middle_half": [nan, nan], "range": [nan, nan], "n": 0}
    ordered = sorted(values)
    quarter = len(ordered) // 4
    return {
        "median": statistics.median(ordered),
        "middle_half": [ordered[quarter], ordered[-1 - quarter]],
        "range": [ordered[0], ordered[-1]],
        "n": len(ordered),
    }


def ratio_text(stats: dict) -> str:
    low, high = stats["middle_half"]
    return f"{stats['median']:.2f} (middle half {low:.2f}–{high:.2f}, n={stats['n']})"
