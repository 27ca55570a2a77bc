"""Paired measurement: two sides measured in alternating short blocks.

This machine's speed drifts by ±2× within an hour, so two runs one after the
other cannot show a change of 10 %. Here both sides are up at once and each
phase (say, 200 dashboard views) runs on one side, then the other, the order
flipped every block; each block is a pair measured in the same minute, and
what is reported is the per-pair ratio B / A: its median, middle half and
range. CPU is read before and after each phase from the side's meter (a
server's process tree, or this process for work done in the client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.results import Table, ms, ratio_text, spread


@dataclass
class Side:
    label: str
    cpu: Callable[[], float]


@dataclass
class Phase:
    """`count` repetitions of an action; `make(side)` gives the side's
    action (so it can hold a logged-in browser of that side's server)."""

    name: str
    label: str
    count: int
    make: Callable[[Side], Callable[[], None]]
    # What to read the CPU from, if not the side's own meter (e.g. a second
    # server of that side serving another app).
    meter: Callable[[Side], Callable[[], float]] | None = None


def alternate(sides: list[Side], phases: list[Phase], blocks: int) -> dict:
    """CPU seconds per action: {phase name: {side label: [one per block]}}."""
    actions = {p.name: {s.label: p.make(s) for s in sides} for p in phases}
    meters = {p.name: {s.label: (p.meter(s) if p.meter else s.cpu) for s in sides} for p in phases}
    cpu = {p.name: {s.label: [] for s in sides} for p in phases}
    for block in range(blocks):
        order = sides if block % 2 == 0 else sides[::-1]
        for phase in phases:
            for side in order:
                action = actions[phase.name][side.label]
                meter = meters[phase.name][side.label]
                start = meter()
                for _ in range(phase.count):
                    action()
                cpu[phase.name][side.label].append((meter() - start) / phase.count)
    return cpu


def compare(cpu: dict, phases: list[Phase], a: str, b: str) -> tuple[Table, dict]:
    """The table of medians and B / A per-pair ratios, and its figures."""
    table = Table(
        f"CPU per request, A = {a}, B = {b}",
        ["per …", "A, median block", "B, median block", "B / A per pair"],
    )
    figures = {}
    for phase in phases:
        a_blocks, b_blocks = cpu[phase.name][a], cpu[phase.name][b]
        # A block too short for one 10 ms CPU tick on side A has no ratio.
        ratios = spread([y / x for x, y in zip(a_blocks, b_blocks, strict=True) if x > 0])
        a_stats, b_stats = spread(a_blocks), spread(b_blocks)
        table.rows.append(
            [
                f"{phase.label} (×{phase.count} a block)",
                ms(a_stats["median"]),
                ms(b_stats["median"]),
                ratio_text(ratios),
            ]
        )
        figures[phase.name] = {"a_cpu_s": a_stats, "b_cpu_s": b_stats, "b_over_a": ratios}
    return table, figures
