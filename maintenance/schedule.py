"""IAM_MAINTENANCE_EVERY: how often the worker runs the cleanup."""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PATTERN = re.compile(r"(\d+)([smhd])")


def parse_every(text: str) -> timedelta | None:
    """`1h`, `30m`, `15s`, `2d` → a timedelta; `0`, `off` → None (no
    schedule). Anything else is a ValueError that says what is accepted."""
    value = text.strip().lower()
    if value in {"0", "off"}:
        return None
    match = _PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(
            f"IAM_MAINTENANCE_EVERY={text!r} is not a period: write a number and a unit "
            "(15s, 30m, 1h, 1d), or 0 / off to turn the schedule off."
        )
    every = timedelta(**{UNITS[match[2]]: int(match[1])})
    return every or None
