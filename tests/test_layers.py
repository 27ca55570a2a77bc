"""The packages' import graph: no circle between modules, and no import from a
lower package up. Layers, bottom first: iam (the project's plumbing), accounts
(people, access, login), sso (identity providers), api and scim (machine
doors) and stream (the audit trail, out to SIEMs), backoffice (the screens).
The wiring (iam/urls.py, iam/settings.py) names the apps and may import
anything. Imports inside functions count too:
they hide a dependency, they do not remove it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "iam": 0,
    "accounts": 1,
    "sso": 2,
    "api": 3,
    "scim": 3,
    "stream": 3,
    "reviews": 3,
    "backoffice": 4,
}
WIRING = {"iam/urls.py", "iam/settings.py"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, modules) -> set[str]:
    """The project modules a file imports (resolving `from package import module`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n in modules}


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _relative(name: str) -> str:
    return name.replace(".", "/") + ".py"


def test_no_import_from_a_lower_package_up(graph):
    upward = []
    for source, targets in graph.items():
        if _relative(source) in WIRING:
            continue
        for target in targets:
            if LAYERS[target.split(".")[0]] > LAYERS[source.split(".")[0]]:
                upward.append(f"{source} -> {target}")
    assert upward == []


def test_no_circle_between_modules(graph):
    # A module that imports a package imports its __init__ too: leave those
    # edges out (a package importing its own submodules is not a circle).
    edges = {
        s: {t for t in ts if not (s.startswith(t + ".") or t.startswith(s + "."))}
        for s, ts in graph.items()
    }
    seen, stack, circles = set(), [], []

    def visit(node):
        if node in stack:
            circles.append(" -> ".join(stack[stack.index(node) :] + [node]))
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            visit(target)
        stack.pop()

    for node in sorted(edges):
        visit(node)
    assert circles == []


def test_no_test_module_imports_another():
    """What several test modules share is a fixture (tests/conftest.py) or a
    helper in tests/support/; a test module imported by another runs its
    fixtures twice and hides where a helper lives."""
    offenders = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.rsplit(".", 1)[-1].startswith("test_") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


# The parts the rank rule and the grant bound are made of: asked only inside
# accounts/delegation.py, whose Writer methods (writes) and rank_beyond /
# group_beyond / rules_beyond / locked_* (screens) are the one place they
# are decided; a door that computed them itself would be a second copy.
RULE_PARTS = {"user_reach", "scope_of", "group_scopes", "role_scopes"}


def test_the_rank_rule_and_grant_bound_are_decided_in_one_place():
    offenders = []
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "accounts" / "delegation.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "accounts.delegation":
                    used = RULE_PARTS & {a.name for a in node.names}
                    if used:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {sorted(used)}")
    assert not offenders, offenders
