"""Wall time and peak memory of every plot, and of the HTML report, on a realistically sized posterior.

A synthetic transfer-law posterior of the DESIGN §3 workload size (7 domains, 48 runs x 11
checkpoints, 4 chains x 1000 draws) is built directly from draws (no sampling), then each plot
function runs once, timed, with ``tracemalloc`` recording the peak of numpy's allocations.

Usage: .venv/bin/python benchmarks/plots_speed.py [--draws 1000] [--out benchmarks/results/plots_speed.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from reporting import uptime, write_result

from bimix_bayes import laws, plots
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.report import write_report
from bimix_bayes.spec import ModelSpec


def build(n_domains: int = 7, n_runs: int = 48, n_draws: int = 1000, seed: int = 0) -> Posterior:
    rng = np.random.default_rng(seed)
    domains = [f"d{i}" for i in range(n_domains)]
    steps = sorted({int(round(s)) for s in np.geomspace(1000, 20000, 11)})
    s_ref = float(np.exp(np.mean(np.log(steps))))
    coef = {"log_c": np.log(rng.uniform(1.8, 3.2, n_domains)), "alpha": rng.uniform(0.02, 0.12, n_domains),
            "u": rng.normal(-1, 0.4, n_domains), "beta": rng.uniform(0.3, 0.7, n_domains),
            "eps": np.full(n_domains, 1e-3)}
    mix = rng.dirichlet(np.ones(n_domains), n_runs)
    log_l = laws.log_loss(mix[:, None, :] + coef["eps"],
                          np.asarray(steps, float)[None, :, None], s_ref=s_ref,
                          **{k: coef[k] for k in ("log_c", "alpha", "u", "beta")})
    log_l += 0.01 * rng.standard_normal(log_l.shape)
    rows = pd.DataFrame({"run": np.repeat([f"run{k:02d}" for k in range(n_runs)], len(steps) * n_domains),
                         "domain": np.tile(domains, n_runs * len(steps)),
                         "proportion": np.repeat(mix, len(steps), axis=0).ravel(),
                         "step": np.tile(np.repeat(steps, n_domains), n_runs),
                         "loss": np.exp(log_l).ravel()})
    shape = (4, n_draws, n_domains)
    dims = ("chain", "draw", "domain")
    draws = xr.Dataset({k: (dims, v + 0.02 * np.abs(v) * rng.standard_normal(shape))
                        for k, v in coef.items()}, coords={"domain": domains, "source": domains})
    draws["sigma"] = (dims, np.full(shape, 0.01))
    draws["sigma_run"] = (dims, np.full(shape, 0.01))
    w = np.abs(0.01 * rng.standard_normal((*shape, n_domains)))
    w[..., range(n_domains), range(n_domains)] = 0
    draws["transfer"] = ((*dims, "source"), w)
    return Posterior.from_draws(draws, Observations.from_frame(rows),
                                spec=ModelSpec(law="transfer"), method="synthetic",
                                s_ref=s_ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=1000, help="draws per chain (4 chains)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/plots_speed.md"))
    args = ap.parse_args()
    post = build(n_draws=args.draws)
    d = post.domains
    regret = pd.DataFrame([dict(strategy=s, runs=r, seed=k, regret=np.exp(-r / 10) * (1 + i))
                           for i, s in enumerate(["random", "planner"]) for r in range(4, 25, 2)
                           for k in range(5)])
    cases = {
        "plot_loss_curves (4 runs x 7 domains x 60 steps)": lambda p: plots.plot_loss_curves(post, path=p),
        "plot_predicted_vs_observed (48 runs x 7 x 11)":
            lambda p: plots.plot_predicted_vs_observed(post, path=p),
        "plot_coefficients (+ transfer map)": lambda p: plots.plot_coefficients(post, path=p),
        "plot_simplex expected_loss (861 mixtures)": lambda p: plots.plot_simplex(post, d[:3], 20000, path=p),
        "plot_simplex prob_improvement": lambda p: plots.plot_simplex(post, d[:3], 20000,
                                                                      quantity="prob_improvement", path=p),
        "plot_regret (2 strategies x 11 x 5 seeds)": lambda p: plots.plot_regret(regret, path=p),
        "plot_residuals (48 runs x 7 x 11)": lambda p: plots.plot_residuals(post, path=p),
        "write_report (4 figures, no prior)": lambda p: write_report(post, p.with_suffix(".html"),
                                                                     prior=False),
    }
    lines = ["| plot | wall s | peak traced MiB |", "| --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in cases.items():
            tracemalloc.start()
            t0 = time.perf_counter()
            fn(Path(tmp) / "fig.png")
            wall = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            lines.append(f"| {name} | {wall:.2f} | {peak:.0f} |")
            print(lines[-1], flush=True)
    load = uptime()
    text = (f"# Plot speed\n\nCommand: `.venv/bin/python benchmarks/plots_speed.py --draws {args.draws}`\n\n"
            f"Posterior: transfer law, 7 domains, 48 runs x 11 checkpoints, {post.n_samples} draws "
            f"(synthetic, built from draws). PNG written at 150 dpi.\n\n"
            f"Machine: {os.cpu_count()} cores; `uptime`: {load}; date: "
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. The machine is shared, so wall "
            f"times are noisy upper bounds.\n\n" + "\n".join(lines) + "\n")
    write_result(args.out, text)


if __name__ == "__main__":
    main()
