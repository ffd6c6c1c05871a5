"""Speed of the paper's summed-loss optimum over posterior draws: vectorised bisection vs brentq.

:func:`bimix_bayes.laws.summed_loss_optimum` solves the Lagrange condition for all draws at once by
bisection on ``log lambda``. The textbook alternative, :func:`scipy.optimize.brentq` on the same
monotone function one draw at a time, is timed side by side on the same inputs (4000 draws x 22
domains, per-domain bounds), and the two answers are compared. Results go to
``benchmarks/results/summed_optimum_speed.md``.

    .venv/bin/python benchmarks/summed_optimum_speed.py
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from reporting import write_result
from scipy.optimize import brentq

from bimix_bayes.laws import bimix as laws

RESULTS = Path(__file__).resolve().parent / "results" / "summed_optimum_speed.md"
N_DRAWS, N_DOMAINS, STEP, S_REF = 4000, 22, 5000.0, 1000.0
LOWER, UPPER = 0.005, 0.3


def draws(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (N_DRAWS, N_DOMAINS)
    return {"log_c": rng.normal(1.0, 0.3, shape), "alpha": rng.uniform(0.02, 0.5, shape),
            "u": rng.normal(0.0, 1.0, shape), "beta": rng.uniform(0.2, 1.0, shape),
            "eps": rng.uniform(0.0, 0.01, shape)}


def brentq_per_draw(c: dict[str, np.ndarray]) -> np.ndarray:
    """The same stationarity condition, one scalar root per draw."""
    log_a = c["log_c"] + np.logaddexp(0, c["u"] - c["beta"] * np.log(STEP / S_REF)) + np.log(
        c["alpha"])
    power = 1 / (c["alpha"] + 1)
    out = np.empty_like(log_a)
    for i in range(len(log_a)):
        def excess(t, i=i):
            r = np.clip(np.exp((log_a[i] - t) * power[i]) - c["eps"][i], LOWER, UPPER)
            return r.sum() - 1.0
        lo = (log_a[i] - (c["alpha"][i] + 1) * np.log(UPPER + c["eps"][i])).min()
        hi = (log_a[i] - (c["alpha"][i] + 1) * np.log(LOWER + c["eps"][i])).max()
        t = brentq(excess, lo - 1, hi + 1, xtol=1e-14)
        out[i] = np.clip(np.exp((log_a[i] - t) * power[i]) - c["eps"][i], LOWER, UPPER)
    return out


def best_of(fn, repeats: int = 3) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    c = draws()
    t_vec, r_vec = best_of(lambda: laws.summed_loss_optimum(STEP, **c, s_ref=S_REF, lower=LOWER,
                                                            upper=UPPER))
    t_brent, r_brent = best_of(lambda: brentq_per_draw(c))
    diff = float(np.abs(r_vec - r_brent).max())
    load = os.getloadavg()
    text = f"""# Summed-loss optimum over posterior draws: vectorised bisection vs per-draw brentq

- command: `python {" ".join(shlex.quote(a) for a in sys.argv)}`
- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC
- machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores (`nproc`), load average
  {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared with other jobs; timings are best of 3)
- workload: {N_DRAWS} draws x {N_DOMAINS} domains, bounds [{LOWER}, {UPPER}] per domain

| method | seconds | ratio to vectorised |
|---|---|---|
| `laws.summed_loss_optimum` (vectorised bisection) | {t_vec:.3f} | 1.0 |
| `scipy.optimize.brentq`, one draw at a time | {t_brent:.3f} | {t_brent / t_vec:.1f} |

Largest difference between the two answers: {diff:.2e} (proportions).
"""
    write_result(RESULTS, text)
    print(text)


if __name__ == "__main__":
    main()
