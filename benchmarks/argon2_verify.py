"""Time one Argon2id password verification at our parameters (19 MiB, t=2, p=1).

    .venv/bin/python benchmarks/argon2_verify.py [--rounds 50]

This is the floor of a password login's server CPU: every successful or
failed login with a known email pays it once.
"""

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import check_password, make_password  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    encoded = make_password("correct horse battery staple")
    check_password("correct horse battery staple", encoded)  # warm-up
    wall, cpu = [], []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        assert check_password("correct horse battery staple", encoded)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"hash prefix          {encoded.split('$')[2]} {encoded.split('$')[3]}")
    print(f"rounds               {rounds}")
    print(f"median wall ms       {statistics.median(wall) * 1000:.1f}")
    print(f"median CPU ms        {statistics.median(cpu) * 1000:.1f}")
    print(f"p95 wall ms          {sorted(wall)[int(rounds * 0.95) - 1] * 1000:.1f}")
    print(f"verifications/s/core {1 / statistics.median(cpu):.0f}")
    print(f"peak RSS MiB         {rss:.0f}")


if __name__ == "__main__":
    main()
