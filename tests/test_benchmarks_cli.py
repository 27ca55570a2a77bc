"""The benchmarks' command line parses: `python -m benchmarks --help` lists
every benchmark, and each one's --help works. Nothing is timed or served."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import BENCHMARKS, parser

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_every_benchmark():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in BENCHMARKS:
        assert f"    {name}" in result.stdout


@pytest.mark.parametrize("name", BENCHMARKS)
def test_each_benchmark_help_parses(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args([name, "--help"])
    assert exit_.value.code == 0
    assert "--json FILE" in capsys.readouterr().out


def test_options_parse_without_running():
    args = parser().parse_args(["ab", "ee5f1c5", "--servers", "gunicorn", "granian", "--tls"])
    assert (args.base, args.servers, args.tls) == ("ee5f1c5", ["gunicorn", "granian"], True)
    args = parser().parse_args(["p2", "--base", "ee5f1c5", "--json", "out.json"])
    assert (args.base, args.json) == ("ee5f1c5", Path("out.json"))


def test_every_patch_citing_patches_kept_is_there():
    """A docstring that says "Kept by measurement (benchmarks/README.md,
    "Patches kept")" points at a row of that section naming its module."""
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    section = readme.split("## Patches kept", 1)[1].split("\n## ", 1)[0]
    citing = [
        path.relative_to(ROOT)
        for app in ("accounts", "api", "backoffice", "iam", "scim", "sso")
        for path in (ROOT / app).rglob("*.py")
        if '"Patches kept"' in path.read_text()
    ]
    assert len(citing) >= 3
    for path in citing:
        named = (f"`{path}`", f"`{path.parent}/`")  # the module or its package
        assert any(n in section for n in named), f"{path}: no row in 'Patches kept'"
