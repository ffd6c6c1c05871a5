"""What every benchmark's results file needs: the machine's load, a clock, and a safe write.

Usage from a benchmark in this folder::

    from reporting import Clock, uptime, write_result
    clock = Clock()
    ...
    write_result(Path("benchmarks/results/x.md"), f"# X\n\n{clock.header('')}\n...")
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bimix_bayes._io import atomic_path


def uptime() -> str:
    """What ``uptime`` prints: the clock, the uptime and the 1, 5 and 15 minute load averages."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def fresh_process(tree: Path, snippet: str, *args: str) -> dict:
    """Run ``snippet`` in a fresh Python process on the package in ``tree`` (compilation
    included, as a user's first command pays it); the last line it prints, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", snippet, str(tree), *args], env=env, cwd=tree,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_result(path: Path, text: str) -> None:
    """Write a results file (and its folder) atomically: a killed benchmark leaves the old one."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


class Clock:
    """Wall time and load since the benchmark started: progress lines and the results header."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.load0 = os.getloadavg()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def say(self, text: str) -> None:
        print(f"[{self.seconds:6.0f} s] {text}", flush=True)

    def header(self, total: str) -> str:
        """The command, date, machine and load lines of a results file, ending with ``total``."""
        load, load0 = os.getloadavg(), self.load0
        command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
        return f"""- command: `{command}`
- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC
- machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores (`nproc`), load average at
  start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}
  (shared with other jobs)
- total time: {self.seconds / 60:.1f} min{total}"""
