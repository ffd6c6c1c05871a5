"""Observations simulated from the BiMix law with known coefficients (tests, examples, recovery).

Each run's log-loss curve is the law's plus a per-run offset (constant along the run: seed and data
order) plus independent residual noise at each checkpoint, the minimum noise model of DESIGN §3.

Examples
--------
>>> import pandas as pd
>>> coef = pd.DataFrame({"log_c": [0.8, 0.3], "alpha": [0.1, 0.3], "u": [0.5, 0.5],
...                      "beta": [0.6, 0.6], "eps": [0.01, 0.01]}, index=["web", "code"])
>>> mix = pd.DataFrame({"web": [0.7, 0.2], "code": [0.3, 0.8]}, index=["a", "b"])
>>> obs = simulate_observations(coef, mix, steps=[100, 200], s_ref=100, seed=0)
>>> len(obs), obs.domains
(8, ['web', 'code'])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bimix_bayes import laws
from bimix_bayes.observations import Observations


def simulate_observations(
    coefficients: pd.DataFrame,
    mixtures: pd.DataFrame,
    steps: Sequence[int],
    *,
    s_ref: float,
    noise_sd: float = 0.0,
    run_sd: float = 0.0,
    seed: int = 0,
) -> Observations:
    """Simulate the tidy observations of training every mixture and evaluating at ``steps``.

    Parameters
    ----------
    coefficients : pandas.DataFrame
        Index ``domain`` (the evaluated domains); columns ``log_c, alpha, u, beta, eps``.
    mixtures : pandas.DataFrame
        Index run name; one column per training domain (a superset of the evaluated domains);
        rows sum to 1. Training domains without coefficients get proportion-only rows.
    steps : sequence of int
        Evaluation steps of every run.
    s_ref : float
        Reference step of the coefficients.
    noise_sd, run_sd : float
        Residual sd of log-loss per checkpoint and sd of the per-run log-loss offset.
    seed : int
        Seed of the noise.
    """
    rng = np.random.default_rng(seed)
    c = coefficients
    domains = list(c.index)
    own = mixtures[domains].to_numpy(dtype=float)[:, None, :]  # (run, 1, domain)
    s = np.asarray(steps, dtype=float)[None, :, None]  # (1, step, 1)
    log_l = laws.log_loss(
        laws.effective_proportion(own, eps=c["eps"].to_numpy()), s,
        log_c=c["log_c"].to_numpy(), alpha=c["alpha"].to_numpy(), u=c["u"].to_numpy(),
        beta=c["beta"].to_numpy(), s_ref=s_ref,
    )
    n_runs, n_steps, n_dom = log_l.shape
    log_l = (log_l + run_sd * rng.standard_normal((n_runs, 1, n_dom))
             + noise_sd * rng.standard_normal(log_l.shape))
    rows = []
    for i, run in enumerate(mixtures.index):
        for dom in mixtures.columns:
            prop = float(mixtures.loc[run, dom])
            if dom not in domains:
                rows.append((run, dom, prop, None, None))
                continue
            j = domains.index(dom)
            rows.extend((run, dom, prop, int(st), float(np.exp(log_l[i, k, j])))
                        for k, st in enumerate(steps))
    frame = pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"])
    return Observations.from_frame(frame, source="<simulated>")
