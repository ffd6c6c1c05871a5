"""Observations simulated from a law with known coefficients (tests, examples, recovery).

Each run's log-loss curve is the law's mean curve (:mod:`bimix_bayes.laws`) plus the normal noise
model's deviation (:mod:`bimix_bayes.noise`): a per-run offset (constant along the run: seed and data
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

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bimix_bayes import laws, noise
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
    law: str = "bimix",
    matrices: Mapping[str, np.ndarray] | None = None,
) -> Observations:
    """Simulate the tidy observations of training every mixture and evaluating at ``steps``.

    Parameters
    ----------
    coefficients : pandas.DataFrame
        Index ``domain`` (the evaluated domains); one column per per-domain parameter of the law
        (``log_c, alpha, u, beta, eps`` for BiMix).
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
    law : str
        A registered law; its per-domain parameters come from ``coefficients``.
    matrices : mapping, optional
        Its ``(domain, source)`` parameters (``transfer``, ``linear``, ``t``), columns in the order
        of ``mixtures``' columns.
    """
    rng = np.random.default_rng(seed)
    c = coefficients
    domains = list(c.index)
    component = laws.get(law)
    matrices = dict(matrices or {})
    params = {k: np.asarray(matrices[k], float) if k in matrices else c[k].to_numpy(dtype=float)
              for k in component.parameters}
    own = mixtures[domains].to_numpy(dtype=float)[:, None, :]  # (run, 1, domain)
    mix = mixtures.to_numpy(dtype=float)[:, None, :]
    s = np.asarray(steps, dtype=float)[None, :, None]  # (1, step, 1)
    log_l = component.log_loss(params, own, mix, s, s_ref)  # (run, step, domain)
    log_l = log_l + noise.get("normal").sample(
        {"sigma": np.full(len(domains), noise_sd), "sigma_run": np.full(len(domains), run_sd)},
        log_l.shape, rng)
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
