"""Which NUTS target acceptance rate, and is the divergence retry worth it?

Side by side in one process, on two designs:

* ``reference``: the speed benchmark's workload (7 domains x 48 runs x 11 steps, simulated);
* ``demo``: the observations of ``bimix demo`` (6 domains x 8 runs x 8 steps of real proxy training),
  a first-round design where the proportion exponents are weakly identified.

For each setting (target_accept 0.8, 0.9, 0.95, and 0.95 with the retry at 0.99 that is the
estimator's default) and seeds 0..N-1: divergences, max R-hat, min bulk ESS, whether the fit passes
every check, and the seconds of ``fit()`` with the compiled model reused.

Usage::

    .venv/bin/bimix demo --out demo-out
    .venv/bin/python benchmarks/target_accept.py --demo demo-out/observations.csv \\
        --out benchmarks/results/target_accept.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from reporting import write_result  # noqa: E402
from workload import reference_workload  # noqa: E402

from bimix_bayes.model import BayesianBiMix  # noqa: E402
from bimix_bayes.observations import Observations  # noqa: E402

SETTINGS = {"0.8": (0.8, None), "0.9": (0.9, None), "0.95": (0.95, None),
            "0.95, retry 0.99 (default)": (0.95, 0.99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, required=True, help="observations.csv of bimix demo")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/target_accept.md"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    designs = {"reference": reference_workload()[0], "demo": Observations.read_csv(args.demo)}
    rows = []
    for design, obs in designs.items():
        BayesianBiMix(law="bimix", draws=10, tune=10, chains=1).fit(obs)  # compile once, outside the timings
        for setting, (target, retry) in SETTINGS.items():
            for seed in range(args.seeds):
                d = BayesianBiMix(law="bimix", seed=seed, target_accept=target,
                                  retry_target_accept=retry).fit(obs).diagnostics_
                rows.append({"design": design, "setting": setting, "seed": seed,
                             "divergences": d["n_divergent"], "max_rhat": d["max_rhat"],
                             "min_ess_bulk": d["min_ess_bulk"], "trustworthy": d["trustworthy"],
                             "retried": "attempts" in d, "seconds": d["seconds"]})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    table = df.groupby(["design", "setting"], sort=False).agg(
        fits_with_divergences=("divergences", lambda x: int((x > 0).sum())),
        total_divergences=("divergences", "sum"), worst_rhat=("max_rhat", "max"),
        median_min_ess=("min_ess_bulk", "median"), trustworthy=("trustworthy", "sum"),
        retried=("retried", "sum"), median_seconds=("seconds", "median"))
    base = table.xs("0.8", level="setting")["median_seconds"]
    table["time_vs_0.8"] = [row.median_seconds / base[d] for (d, _), row in table.iterrows()]
    load = os.getloadavg()[0]
    text = [
        "# NUTS target acceptance rate and the divergence retry",
        "",
        f"Command: `{' '.join(['.venv/bin/python', *sys.argv])}`  ",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, load {load:.1f} at the end; "
        f"date {datetime.date.today()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}.",
        "",
        f"4 chains x 1000 draws (tune 1000), nutpie low-rank, seeds 0..{args.seeds - 1}; seconds "
        "are those of `fit()` with the compiled model reused (graph building and sampling; the "
        "model is compiled before timing; a retry's second run is included). `trustworthy` "
        "counts fits that pass every check (0 divergences, R-hat <= 1.01, bulk and tail ESS "
        ">= 400, E-BFMI >= 0.3).",
        "",
        table.to_markdown(floatfmt=".3f"),
        "",
        "Per fit:",
        "",
        df.to_markdown(index=False, floatfmt=".3f"),
        "",
    ]
    write_result(args.out, "\n".join(text))
    print("\n".join(text[:11]))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
