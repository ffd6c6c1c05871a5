"""Fit speed and diagnostics of this tree against another checkout of the package, side by side.

Each repetition runs one fresh process per tree (so compilation is included, as a user's first
``bimix fit`` pays it), alternating the trees so that the shared machine's load hits both alike, on
the reference workload (benchmarks/workload.py: 7 domains x 48 runs x 11 checkpoints). Reports
wall time including compilation, divergences, worst R-hat and bulk ESS per fit, and the ratio of
median wall times.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/side_by_side.py --other /tmp/before --laws bimix transfer \\
        --repeats 2 --out benchmarks/results/side_by_side.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from reporting import Clock, fresh_process, write_result  # noqa: E402

#: Runs in the tree under test: fit the reference workload once, print one JSON line.
SNIPPET = """
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1] + "/benchmarks")
warnings.simplefilter("ignore")
from workload import reference_workload
from bimix_bayes.model import BayesianBiMix
obs, _, _ = reference_workload(seed=0)
t = time.perf_counter()
d = BayesianBiMix(law=sys.argv[2], seed=1).fit(obs).diagnostics_
print(json.dumps({"wall_s": time.perf_counter() - t, "n_divergent": d["n_divergent"],
                  "max_rhat": d["max_rhat"], "min_ess_bulk": d["min_ess_bulk"],
                  "trustworthy": d["trustworthy"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", type=Path, required=True, help="another checkout (the baseline)")
    ap.add_argument("--laws", nargs="+", default=["bimix"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/side_by_side.md"))
    args = ap.parse_args()
    clock = Clock()
    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here, f"baseline ({args.other})": args.other.resolve()}
    rows = []
    for rep in range(args.repeats):
        for law in args.laws:
            for name, tree in trees.items():
                result = fresh_process(tree, SNIPPET, law)
                rows.append({"tree": name, "law": law, "repeat": rep, **result})
                clock.say(f"{name} {law} #{rep}: {result}")
    table = pd.DataFrame(rows)
    median = table.groupby(["law", "tree"])["wall_s"].median().unstack("tree")
    median["ratio (this / baseline)"] = median["this tree"] / median[f"baseline ({args.other})"]
    write_result(args.out, f"""# Fit speed side by side with another checkout

{clock.header('')}
- workload: benchmarks/workload.py reference (7 domains x 48 runs x 11 checkpoints), default
  `BayesianBiMix(law=..., seed=1)` (4 chains x 1000 draws, nutpie low-rank, target_accept 0.95
  with the retry); each fit in a fresh process (compilation included), trees alternating

## Median wall time (s, including compilation)

{median.round(2).to_markdown()}

## Every fit

{table.round({"wall_s": 1, "max_rhat": 3, "min_ess_bulk": 0}).to_markdown(index=False)}
""")
    print(median.round(2).to_string())


if __name__ == "__main__":
    main()
