"""The tiny simulated design the calibration and comparison tests fit many times.

2 domains, a few Dirichlet(2) mixtures, 4 checkpoints, plain BiMix with 1 % run and residual noise:
small enough that the sampler's compile cache makes every refit cost about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bimix_bayes.observations import Observations
from bimix_bayes.simulate import simulate_observations

DOMAINS = ["web", "code"]
COEF = pd.DataFrame({"log_c": [1.0, 0.7], "alpha": [0.06, 0.12], "u": [-0.8, -1.0],
                     "beta": [0.5, 0.4], "eps": [1e-3, 1e-3]}, index=DOMAINS)
STEPS = [100, 300, 1000, 3000]
S_REF = float(np.exp(np.mean(np.log(STEPS))))


def mixtures(n: int, seed: int, prefix: str) -> pd.DataFrame:
    """``n`` seeded Dirichlet(2) mixtures named ``prefix0``, ``prefix1``, ..."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.ones(len(DOMAINS)) * 2, size=n)
    return pd.DataFrame(mix, columns=DOMAINS, index=[f"{prefix}{i}" for i in range(n)])


def observations(n_runs: int = 6, seed: int = 0, noise: float = 0.01) -> Observations:
    """Simulated runs of ``n_runs`` mixtures at every checkpoint."""
    return simulate_observations(COEF, mixtures(n_runs, seed, "r"), STEPS, s_ref=S_REF,
                                 noise_sd=noise, run_sd=noise, seed=seed + 1)
