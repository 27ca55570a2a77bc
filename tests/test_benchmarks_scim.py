"""The scim-membership benchmark at its smoke size: it runs, and the
statements of a membership PATCH are the same at every size."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scim_membership_smoke(tmp_path):
    out = tmp_path / "scim.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "scim-membership", "--sqlite"]
        + ["--sizes", "10", "50", "--rounds", "2", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    patches = json.loads(out.read_text())["figures"]["patches"]
    assert {p["members"] for p in patches} == {10, 50}
    for op in ("Add", "Remove"):
        assert len({p["sql"] for p in patches if p["op"] == op}) == 1
