"""The reference workload of the speed benchmark: 7 domains x 48 runs x 11 checkpoints.

Realistic coefficients (losses of 2-4 nats), residual scatter of about 1 % and per-run offsets of
about 1 % on the log-loss scale, Dirichlet(1) mixtures, checkpoints log-spaced from 1k to 20k steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bimix_bayes.observations import Observations
from bimix_bayes.simulate import simulate_observations


def reference_workload(
    n_domains: int = 7, n_runs: int = 48, n_steps: int = 11, *, seed: int = 0,
    zero_fraction: float = 0.0,
) -> tuple[Observations, pd.DataFrame, float]:
    """Simulated observations, the true coefficients (index domain) and their ``s_ref``."""
    rng = np.random.default_rng(seed)
    domains = [f"d{i}" for i in range(n_domains)]
    steps = sorted({int(round(s)) for s in np.geomspace(1000, 20000, n_steps)})
    s_ref = float(np.exp(np.mean(np.log(steps))))
    coef = pd.DataFrame({
        "log_c": np.log(rng.uniform(1.8, 3.0, n_domains)),
        "alpha": rng.uniform(0.02, 0.12, n_domains),
        "u": rng.normal(-1.0, 0.4, n_domains),
        "beta": rng.uniform(0.3, 0.7, n_domains),
        "eps": np.full(n_domains, 1e-3),
    }, index=pd.Index(domains, name="domain"))
    mix = rng.dirichlet(np.ones(n_domains), size=n_runs)
    if zero_fraction:
        mix = np.where(rng.random(mix.shape) < zero_fraction, 0.0, mix)
        mix[mix.sum(axis=1) == 0, 0] = 1.0
        mix /= mix.sum(axis=1, keepdims=True)
    mixtures = pd.DataFrame(mix, columns=domains, index=[f"run{k:03d}" for k in range(n_runs)])
    obs = simulate_observations(coef, mixtures, steps, s_ref=s_ref, noise_sd=0.01, run_sd=0.01,
                                seed=seed + 1)
    return obs, coef, s_ref
