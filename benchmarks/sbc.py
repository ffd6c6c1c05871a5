"""Simulation-based calibration and held-out interval coverage of the Bayesian BiMix model.

Design: 3 domains x 8 runs (Dirichlet(2) mixtures) x 6 checkpoints (500-20000 steps), normal noise.
SBC: replicates drawn from the prior, simulated with the model's own prior predictive, refitted
with nutpie (one compilation, data swapped), ranks of the true values among 99 thinned posterior
draws, chi-square uniformity test per parameter, rank histograms. Coverage: worlds drawn from the
prior, fitted on the 8 runs, 50 % / 90 % intervals scored on 20 held-out mixtures at every
checkpoint (mean curve vs the true mean; a new run vs a simulated new run).

Usage::

    .venv/bin/python benchmarks/sbc.py [--replicates 100] [--worlds 20] [--budget-min 13]

Writes benchmarks/results/sbc.md and benchmarks/results/sbc_ranks.png.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from leastsq_mixinglaws import markdown  # noqa: E402
from reporting import uptime, write_result  # noqa: E402

from bimix_bayes.calibration import coverage, rank_uniformity, sbc  # noqa: E402
from bimix_bayes.model import BayesianBiMix  # noqa: E402
from bimix_bayes.simulate import simulate_observations  # noqa: E402

DOMAINS = ["web", "code", "books"]
STEPS = [500, 1000, 2000, 5000, 10000, 20000]


def design(n_runs: int, seed: int):
    """A design of ``n_runs`` mixtures (its losses, from arbitrary coefficients, are unused)."""
    rng = np.random.default_rng(seed)
    mix = pd.DataFrame(rng.dirichlet(np.full(len(DOMAINS), 2.0), size=n_runs), columns=DOMAINS,
                       index=[f"run{i:02d}" for i in range(n_runs)])
    coef = pd.DataFrame({"log_c": [1.0, 0.5, 1.1], "alpha": [0.05, 0.1, 0.08],
                         "u": [-1.0, -0.8, -1.2], "beta": [0.5, 0.4, 0.6], "eps": [1e-3] * 3},
                        index=DOMAINS)
    s_ref = float(np.exp(np.mean(np.log(STEPS))))
    return simulate_observations(coef, mix, STEPS, s_ref=s_ref, noise_sd=0.01, run_sd=0.01,
                                 seed=seed), rng


def rank_figure(ranks: xr.Dataset, table: pd.DataFrame, n_bins: int, path: Path) -> None:
    from matplotlib.figure import Figure
    from scipy.stats import binom

    params = [str(p) for p in ranks["parameter"].values]
    cols = 6
    rows = -(-len(params) // cols)
    fig = Figure(figsize=(2.2 * cols, 1.7 * rows), layout="constrained")
    n = ranks.sizes["replicate"]
    lo, hi = binom.ppf([0.005, 0.995], n, 1 / n_bins)
    edges = np.linspace(0, ranks.attrs["n_rank_draws"] + 1, n_bins + 1)
    for k, name in enumerate(params):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.hist(ranks["rank"].sel(parameter=name).to_numpy(), bins=edges, color="C0")
        ax.set_title(f"{name}  p={table.loc[name, 'p_value']:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.tick_params(labelsize=6)
    fig.suptitle(f"SBC rank histograms ({n} replicates; grey: 99% band of a uniform bin count)",
                 fontsize=9)
    fig.savefig(path, dpi=90)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=100)
    p.add_argument("--worlds", type=int, default=20)
    p.add_argument("--heldout", type=int, default=20)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--tune", type=int, default=300)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--budget-min", type=float, default=13.0,
                   help="stop adding SBC replicates when this much wall time is spent in all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    load_at_start = uptime()
    obs, rng = design(8, a.seed)
    estimator = BayesianBiMix(law="bimix", draws=a.draws, tune=a.tune, chains=a.chains)

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {text}", flush=True)

    # Coverage first (fixed size), then SBC replicates until the budget is spent.
    held = pd.DataFrame(rng.dirichlet(np.full(len(DOMAINS), 2.0), size=a.heldout),
                        columns=DOMAINS, index=[f"held{i:02d}" for i in range(a.heldout)])
    cov = coverage(obs, held, a.worlds, estimator=estimator, seed=a.seed + 7, progress=say)
    ranks = sbc(obs, a.replicates, estimator=estimator, n_rank_draws=99, seed=a.seed + 100,
                progress=say, max_seconds=a.budget_min * 60 - (time.perf_counter() - start))
    table = rank_uniformity(ranks, n_bins=a.bins)
    seconds = time.perf_counter() - start

    a.out.mkdir(parents=True, exist_ok=True)
    rank_figure(ranks, table, a.bins, a.out / "sbc_ranks.png")
    summ = (cov.groupby(["kind", "prob"])
            .apply(lambda g: pd.Series({"coverage": np.average(g["covered"], weights=g["n"]),
                                        "worlds_min": g["covered"].min(),
                                        "worlds_max": g["covered"].max(),
                                        "points": g["n"].sum()}), include_groups=False)
            .reset_index())
    summ["error_points"] = 100 * (summ["coverage"] - summ["prob"])
    params = table.drop(index="all")
    world_div = cov.groupby("world")["n_divergent"].first()
    n_params = len(params)
    lines = [
        "# Simulation-based calibration and held-out interval coverage",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: "
        f"`nproc` = {os.cpu_count()}, `uptime` at start: `{load_at_start}`",
        f"- command: `.venv/bin/python {' '.join(['benchmarks/sbc.py', *sys.argv[1:]])}`",
        f"- design: {len(DOMAINS)} domains x 8 runs (Dirichlet(2)) x {len(STEPS)} checkpoints "
        f"({STEPS[0]}-{STEPS[-1]}), law bimix, normal noise, default priors; nutpie "
        f"{a.chains} chains x {a.draws} draws (tune {a.tune}), the estimator's target_accept 0.95 "
        "with one retry at 0.99, one "
        f"compilation for all fits; wall time {seconds / 60:.1f} min",
        "",
        "## Held-out interval coverage (worlds drawn from the prior)",
        "",
        f"{a.worlds} worlds, {a.heldout} held-out mixtures x {len(DOMAINS)} domains x "
        f"{len(STEPS)} checkpoints each. `mean`: interval of the mean curve "
        "(`predict(band=\"mean\")`) vs the world's true mean loss; `new-run`: interval "
        "of a new run (`predict(band=\"new-run\")`) vs a newly simulated run (own run offset and "
        "residual noise); `parameters`: parameter recovery, the true log_c, alpha, u, beta, "
        "sigma, sigma_run of every domain inside their central posterior interval. Points "
        "within a world are correlated, so the spread between worlds is the honest "
        "uncertainty.",
        "",
        markdown(summ.round(3)),
        "",
        f"Divergent transitions per coverage fit: median {world_div.median():.0f}, "
        f"max {world_div.max()}.",
        "",
        "## SBC",
        "",
        f"{ranks.sizes['replicate']} replicates, ranks among 99 evenly thinned draws "
        f"(0-99), {a.bins} bins; chi-square test of uniformity per parameter "
        f"({n_params} parameters; with {n_params} tests about {0.05 * n_params:.1f} fall "
        "below p = 0.05 by chance). Histograms: `benchmarks/results/sbc_ranks.png`.",
        "",
        f"- parameters with p < 0.05: {int((params['p_value'] < 0.05).sum())}; p < 0.01: "
        f"{int((params['p_value'] < 0.01).sum())}; Bonferroni p < {0.05 / n_params:.4f}: "
        f"{int((params['p_value'] < 0.05 / n_params).sum())}",
        f"- divergent transitions per replicate: median {np.median(ranks['n_divergent']):.0f}, "
        f"max {int(ranks['n_divergent'].max())}; replicates with any: "
        f"{int((ranks['n_divergent'] > 0).sum())}/{ranks.sizes['replicate']}; max R-hat median "
        f"{float(ranks['max_rhat'].median()):.3f}",
        f"- sampling seconds per replicate: median {float(ranks['seconds'].median()):.1f}",
        "",
        markdown(table.round(3).reset_index()),
        "",
    ]
    write_result(a.out / "sbc.md", "\n".join(lines))
    say(f"wrote {a.out / 'sbc.md'} and {a.out / 'sbc_ranks.png'}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
