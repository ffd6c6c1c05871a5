"""Where a first fit's wall time goes: graph building, nutpie's compilation, sampling (issue 11).

The speed targets of issue 11 (one law on the reference workload in <= 10 s on 2 cores,
compilation included) hinge on what a fresh process pays before the first draw. Each fit runs in
a fresh process, as a user's first ``bimix fit`` does, and splits its wall time into:

- ``graph_s``: PyTensor's rewriting of the logp-and-gradient graph and its numba functions
  (nutpie's ``_make_functions``; the per-op numba code is cached on disk between processes);
- ``wrapper_s``: numba compiling nutpie's C callbacks around that graph (``numba.cfunc``), which
  cannot be cached: they close over the model's data;
- ``sample_s``: ``nutpie.sample`` (4 chains x 1000 + 1000 draws on the package defaults);
- ``rest_s``: the rest of ``BayesianBiMix.fit`` (the design, the model, the posterior object).

A one-parameter model (``floor``) measures the part of ``wrapper_s`` that no model can avoid.
The timers wrap nutpie's and numba's functions in place (instrumentation only; nothing else is
replaced).

    .venv/bin/python benchmarks/fit_phases.py --laws bimix transfer --repeats 2 \\
        --out benchmarks/results/fit_phases.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from reporting import Clock, fresh_process, write_result  # noqa: E402

#: Runs in a fresh process: fit once with timers around nutpie's phases, print one JSON line.
SNIPPET = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import numba, nutpie, nutpie.compile_pymc as cp
spent = {"graph_s": 0.0, "wrapper_s": 0.0, "sample_s": 0.0}

def timed(fn, key):
    def run(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t
    return run

cp._make_functions = timed(cp._make_functions, "graph_s")
cfunc = numba.cfunc
numba.cfunc = lambda *a, **k: timed(cfunc(*a, **k), "wrapper_s")
nutpie.sample = timed(nutpie.sample, "sample_s")
law = sys.argv[2]
t = time.perf_counter()
if law == "floor":
    import pymc as pm
    with pm.Model() as model:
        x = pm.Normal("x")
        pm.Normal("y", x, 1, observed=pm.Data("y_obs", [0.1, -0.2]))
    nutpie.sample(nutpie.compile_pymc_model(model), draws=1000, tune=1000, chains=4, seed=1,
                  progress_bar=False)
    d = {"n_divergent": 0, "max_rhat": float("nan"), "min_ess_bulk": float("nan")}
else:
    from workload import reference_workload
    from bimix_bayes.model import BayesianBiMix
    obs, _, _ = reference_workload(seed=0)
    t = time.perf_counter()
    d = BayesianBiMix(law=law, seed=1).fit(obs).diagnostics_
wall = time.perf_counter() - t
rest = wall - sum(spent.values())
print(json.dumps({"wall_s": wall, **spent, "rest_s": rest, "n_divergent": d["n_divergent"],
                  "max_rhat": d["max_rhat"], "min_ess_bulk": d["min_ess_bulk"]}))
"""



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--laws", nargs="+", default=["bimix", "transfer"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fit_phases.md"))
    args = ap.parse_args()
    clock = Clock()
    tree = Path(__file__).resolve().parent.parent
    rows = []
    for rep in range(args.repeats):
        for law in ["floor", *args.laws]:
            result = fresh_process(tree, SNIPPET, law)
            rows.append({"law": law, "repeat": rep, **result})
            clock.say(f"{law} #{rep}: {result}")
    table = pd.DataFrame(rows)
    phases = ["wall_s", "graph_s", "wrapper_s", "sample_s", "rest_s"]
    median = table.groupby("law", sort=False)[phases].median()
    median["compile share"] = (median["graph_s"] + median["wrapper_s"]) / median["wall_s"]
    write_result(args.out, f"""# Where a first fit's time goes (reference workload, fresh process)

{clock.header('')}
- workload: benchmarks/workload.py reference (7 domains x 48 runs x 11 checkpoints), default
  `BayesianBiMix(law=..., seed=1)` (4 chains x 1000 + 1000 draws, nutpie low-rank, target_accept
  0.95); `floor`: a one-parameter model on nutpie's defaults, the cost no model avoids
- phases: see the script's docstring (graph: PyTensor rewrites and numba functions; wrapper:
  numba compiling nutpie's C callbacks; sample: nutpie.sample; rest: everything else in fit)

## Median seconds per phase

{median.round(2).to_markdown()}

## Every fit

{table.round(2).to_markdown(index=False)}
""")
    print(median.round(2).to_string())


if __name__ == "__main__":
    main()
