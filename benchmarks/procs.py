"""What the kernel says about a server's processes: CPU time and memory,
read from /proc, so a figure is the server's own and not the client's.

CPU is user + system time of every live process of the server's tree (its
master or main process and its workers, all their threads). The main
processes idle between requests; counting them keeps gunicorn and granian,
whose process layouts differ, on the same footing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads, live or gone)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(p) for p in (task / "children").read_text().split()]
    return kids


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(FileNotFoundError):  # exited meanwhile
            todo += children(current)
    return found


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in tree(pid):
        with contextlib.suppress(FileNotFoundError):
            total += cpu_seconds(member)
    return total


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
