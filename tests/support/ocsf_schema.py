"""The OCSF schema, read from the files vendored in tests/ocsf/ (their
version and source: tests/ocsf/README.md), and one check of an event
against it: class, activity, type_uid, every required attribute, the
classes' and objects' "at least one of" constraints, the attributes' names
and their types, through every nested object the dictionary names."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "ocsf"
CLASS_FILES = {
    "authentication": "events/iam/authentication.json",
    "account_change": "events/iam/account_change.json",
    "entity_management": "events/iam/entity_management.json",
    "api_activity": "events/application/api_activity.json",
}
PARENT_FILES = {
    "iam": "events/iam/iam.json",
    "application": "events/application/application.json",
    "base_event": "events/base_event.json",
}
SCALARS = {
    "string_t": str,
    "integer_t": int,
    "long_t": int,
    "timestamp_t": int,
    "boolean_t": bool,
    "float_t": (int, float),
}


@cache
def load(relative: str) -> dict:
    return json.loads((ROOT / relative).read_text())


def version() -> str:
    return load("version.json")["version"]


@cache
def dictionary() -> dict:
    return load("dictionary.json")["attributes"]


def _scalar(type_name: str) -> str:
    types = load("dictionary.json")["types"]["attributes"]
    return types.get(type_name, {}).get("type", type_name)


def _merged(chain: list[dict]) -> dict:
    attributes: dict = {}
    for part in reversed(chain):  # the parent first, each child refining
        for name, spec in part["attributes"].items():
            if name != "$include":
                attributes[name] = {**attributes.get(name, {}), **spec}
    return attributes


@cache
def event_class(name: str) -> dict:
    """A class with what it inherits: uid, caption, category, attributes."""
    own = load(CLASS_FILES[name])
    chain = [own]
    while chain[-1].get("extends"):
        chain.append(load(PARENT_FILES[chain[-1]["extends"]]))
    category = next(part["category"] for part in chain if "category" in part)
    category_spec = load("categories.json")["attributes"][category]
    attributes = _merged(chain)
    activities = {**dictionary()["activity_id"]["enum"], **attributes["activity_id"]["enum"]}
    return {
        "name": name,
        "caption": own["caption"],
        "uid": category_spec["uid"] * 1000 + own["uid"],
        "category_uid": category_spec["uid"],
        "category_caption": category_spec["caption"],
        "attributes": attributes,
        "activities": {int(uid): spec["caption"] for uid, spec in activities.items()},
        "constraints": own.get("constraints", {}),
    }


def class_by_uid(uid: int) -> dict:
    return next(event_class(n) for n in CLASS_FILES if event_class(n)["uid"] == uid)


@cache
def object_schema(name: str) -> dict:
    chain = [load(f"objects/{name}.json")]
    while chain[-1].get("extends") and chain[-1]["extends"] != "object":
        chain.append(load(f"objects/{chain[-1]['extends']}.json"))
    constraints: dict = {}
    for part in chain:
        for kind, names in part.get("constraints", {}).items():
            constraints.setdefault(kind, names)
    return {"attributes": _merged(chain), "constraints": constraints}


def problems(event: dict) -> list[str]:
    """What in `event` the schema does not allow ([] when nothing)."""
    found = []
    try:
        schema = class_by_uid(event.get("class_uid"))
    except StopIteration:
        return [f"class_uid {event.get('class_uid')!r} is none of {sorted(CLASS_FILES)}"]
    activity = event.get("activity_id")
    if activity not in schema["activities"]:
        found.append(f"activity_id {activity!r} not in {sorted(schema['activities'])}")
    else:
        expected_name = schema["activities"][activity]
        if event.get("activity_name") != expected_name:
            found.append(f"activity_name {event.get('activity_name')!r} != {expected_name!r}")
    if event.get("type_uid") != schema["uid"] * 100 + (activity or 0):
        found.append(f"type_uid {event.get('type_uid')!r} != class_uid*100 + activity_id")
    if event.get("category_uid") != schema["category_uid"]:
        found.append(f"category_uid {event.get('category_uid')!r} != {schema['category_uid']}")
    if event.get("class_name") != schema["caption"]:
        found.append(f"class_name {event.get('class_name')!r} != {schema['caption']!r}")
    if event.get("category_name") != schema["category_caption"]:
        found.append(f"category_name {event.get('category_name')!r}")
    for enum_name in ("severity_id", "status_id"):
        allowed = {int(k) for k in dictionary()[enum_name]["enum"]}
        if event.get(enum_name) not in allowed:
            found.append(f"{enum_name} {event.get(enum_name)!r} not in {sorted(allowed)}")
    metadata = event.get("metadata") or {}
    if metadata.get("version") != version():
        found.append(f"metadata.version {metadata.get('version')!r} != {version()!r}")
    found += _check(event, schema["attributes"], schema["constraints"], schema["name"])
    return found


def _check(value: dict, attributes: dict, constraints: dict, where: str) -> list[str]:
    found = []
    for name, spec in attributes.items():
        if spec.get("requirement") == "required" and value.get(name) in (None, "", [], {}):
            found.append(f"{where}: required {name} missing")
    names = constraints.get("at_least_one")
    if names and not any(value.get(n) not in (None, "", [], {}) for n in names):
        found.append(f"{where}: needs at least one of {names}")
    names = constraints.get("just_one")
    if names and sum(value.get(n) is not None for n in names) != 1:
        found.append(f"{where}: needs just one of {names}")
    for name, item in value.items():
        if name not in attributes:
            found.append(f"{where}: {name} is no attribute of it")
            continue
        found += _check_value(item, name, f"{where}.{name}")
    return found


def _check_value(item, name: str, where: str) -> list[str]:
    spec = dictionary().get(name)
    if spec is None:
        return [f"{where}: not in the dictionary"]
    if spec.get("is_array"):
        if not isinstance(item, list):
            return [f"{where}: must be an array"]
        return [p for n, element in enumerate(item) for p in _one(element, spec, f"{where}[{n}]")]
    return _one(item, spec, where)


def _one(item, spec: dict, where: str) -> list[str]:
    type_name = spec["type"]
    if type_name == "object":  # `unmapped`: free-form
        return [] if isinstance(item, dict) else [f"{where}: must be an object"]
    if type_name.endswith("_t"):
        python = SCALARS.get(_scalar(type_name))
        if python is None:
            return [f"{where}: unknown type {type_name}"]
        ok = isinstance(item, python) and not (python is int and isinstance(item, bool))
        return [] if ok else [f"{where}: {item!r} is not {type_name}"]
    if not isinstance(item, dict):
        return [f"{where}: must be a {type_name} object"]
    schema = object_schema(type_name)
    return _check(item, schema["attributes"], schema["constraints"], where)
