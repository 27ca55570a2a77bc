"""Reading a /metrics answer back: samples by name and labels."""

from __future__ import annotations

import ipaddress
import re

from prometheus_client.parser import text_string_to_metric_families

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.I)


def samples(text: str) -> list[tuple[str, dict, float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.append((sample.name, dict(sample.labels), sample.value))
    return found


def total(found, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        value
        for sample, have, value in found
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


def label_values(found) -> set[str]:
    return {value for _name, labels, _value in found for value in labels.values()}


def unbounded_labels(found) -> list[str]:
    """Label values that look like an email, an address or a raw path."""
    bad = []
    for name, labels, _value in found:
        for key, value in labels.items():
            if key == "le":
                continue
            if EMAIL.search(value) or value.startswith("/") or _is_address(value):
                bad.append(f"{name}{{{key}={value!r}}}")
    return bad


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
