"""Run the README's five-minute tour verbatim in an empty folder and record what it takes.

The commands are read from README.md itself (the ```bash blocks under "A five-minute tour": the
timed tour, then its continuation with ``bimix loop``), so what is measured is what a newcomer
types. Each runs in a fresh temporary folder with the
``bimix`` script of this interpreter's environment on PATH and this checkout first on PYTHONPATH;
the script records each command's wall time, exit status and the load beside it, then the verdict
of every fit the tour made (the diagnostics stored in the posterior files) and the plan's numbers.

    python benchmarks/readme_tour.py --out benchmarks/results/readme_tour.md

Budget: the tour block in at most 5 minutes on two cores (issue 14); the loop block is timed
too. Timings on a shared machine are upper bounds; the load average is recorded beside each command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reporting import Clock, uptime, write_result

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300.0


def tour_blocks(readme: Path) -> list[list[str]]:
    """The ```bash blocks of the tour section: the tour, then its continuation (bimix loop).

    Backslash continuations are joined; comments are left to bash.
    """
    text = readme.read_text(encoding="utf-8")
    section = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    if not blocks:
        raise SystemExit("README.md: no ```bash block under 'A five-minute tour'")
    joined = [re.sub(r"\\\n\s*", "", b) for b in blocks]
    return [[line.strip() for line in b.splitlines() if line.strip()] for b in joined]


def verdicts(folder: Path) -> list[tuple[str, str]]:
    """(posterior file, first line of its diagnostics summary) for every fit the tour wrote."""
    from bimix_bayes.diagnostics import summary_text
    from bimix_bayes.posterior import Posterior

    found = []
    for path in sorted(folder.rglob("*.nc")):
        post = Posterior.load(path)
        found.append((str(path.relative_to(folder)),
                      summary_text(post.diagnostics).replace("\n", "; ")))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/readme_tour.md")
    parser.add_argument("--keep", type=Path, help="Keep the tour's folder here.")
    args = parser.parse_args()

    clock = Clock()
    blocks = tour_blocks(ROOT / "README.md")
    commands = [c for block in blocks for c in block]
    in_tour = len(blocks[0])  # the first block is the timed tour
    work = Path(tempfile.mkdtemp(prefix="readme-tour-"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}".rstrip(":")}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)  # as a newcomer's shell: no thread settings
    rows, logs = [], []
    for k, command in enumerate(commands, start=1):
        load = os.getloadavg()[0]
        clock.say(f"{k}/{len(commands)} {command}")
        t0 = time.perf_counter()
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                              text=True, check=False)
        seconds = time.perf_counter() - t0
        rows.append((command, seconds, done.returncode, load, os.getloadavg()[0]))
        logs.append(f"$ {command}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        if done.returncode != 0:
            clock.say(f"FAILED ({done.returncode}):\n{done.stderr[-3000:]}")
            break
    total = sum(r[1] for r in rows[:in_tour])
    rest = sum(r[1] for r in rows[in_tour:])
    fits = verdicts(work)
    plan = work / "plan.json"
    summary = json.loads(plan.read_text()) if plan.is_file() else {}
    ok = all(r[2] == 0 for r in rows) and len(rows) == len(commands)
    within = ok and total <= BUDGET_S
    trusted = bool(fits) and all("NOT trustworthy" not in v for _, v in fits)

    table = "\n".join(f"| {'tour' if k < in_tour else 'loop'} | `{c}` | {s:.1f} | {rc} | "
                      f"{a:.2f} / {b:.2f} |" for k, (c, s, rc, a, b) in enumerate(rows))
    fit_lines = "\n".join(f"- `{p}`: {v}" for p, v in fits) or "- (no fit written)"
    gain = (f"gain {summary['gain_mean']:.4g} nats/token [{summary['gain_lower']:.4g}, "
            f"{summary['gain_upper']:.4g}], P(gain > 0) = {summary['prob_improvement']:.3f}"
            if summary else "(no plan)")
    text = f"""# README tour, run verbatim from an empty folder

{clock.header(f" (tour block {total / 60:.1f} min, budget {BUDGET_S / 60:.0f} min; loop block "
              f"{rest / 60:.1f} min)")}
- uptime at the end: `{uptime()}`
- verdict: {"all commands succeeded" if ok else "a command FAILED"}; the tour block took
  {total:.0f} s, {"within" if within else "OVER"} the {BUDGET_S:.0f} s budget; the loop block
  {rest:.0f} s; fits {"all trustworthy" if trusted else "NOT all trustworthy"}

| block | command | wall s | exit | load (1 min) before / after |
| --- | --- | ---: | ---: | --- |
{table}

Fits (each posterior file's stored diagnostics):

{fit_lines}

Plan (`plan.json`): {gain}

<details><summary>last lines of each command's output</summary>

```
{chr(10).join(logs)}
```
</details>
"""
    write_result(args.out, text)
    if args.keep:
        shutil.copytree(work, args.keep, dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    clock.say(f"wrote {args.out}: {total:.0f} s, ok={ok}, trustworthy={trusted}")


if __name__ == "__main__":
    main()
