"""Write the bundled example dataset (simulated from the BiMix law; not real training runs).

Four domains, twelve runs (mixtures drawn from a Dirichlet, three of them leaving one domain out
entirely), eight checkpoints from 500 to 20000 steps, 1 % residual scatter and 1 % per-run offsets
on the log-loss scale. Coefficients are chosen to give losses like small proxy models: about
5-7 nats at step 500 falling to 1.5-4 nats at step 20000. Rerun to regenerate the files exactly (seeded):

    .venv/bin/python scripts/make_example_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bimix_bayes.mixtures import write_mixtures
from bimix_bayes.simulate import simulate_observations

OUT = Path(__file__).resolve().parent.parent / "bimix_bayes" / "data" / "example"
DOMAINS = ["web", "code", "books", "math"]
STEPS = [500, 1000, 2000, 3000, 5000, 8000, 12000, 20000]
S_REF = 4000.0
COEFFICIENTS = pd.DataFrame(
    {   # log_c: irreducible log-loss at r = 1; alpha: proportion exponent; u: log ratio of the
        # reducible to the irreducible loss at S_REF; beta: step exponent; eps: proportion floor.
        "log_c": np.log([2.9, 1.1, 2.7, 1.4]),
        "alpha": [0.04, 0.12, 0.06, 0.10],
        "u": [-1.2, -0.8, -1.4, -1.0],
        "beta": [0.55, 0.70, 0.50, 0.60],
        "eps": [0.01, 0.005, 0.01, 0.005],
    },
    index=pd.Index(DOMAINS, name="domain"),
)


def main() -> None:
    rng = np.random.default_rng(20240514)
    mix = rng.dirichlet(np.ones(len(DOMAINS)), size=12)
    for run, left_out in ((3, 1), (7, 3), (10, 2)):  # three runs never train on one domain
        mix[run, left_out] = 0.0
    mix = np.round(mix / mix.sum(axis=1, keepdims=True), 4)
    mix[:, 0] = 1.0 - mix[:, 1:].sum(axis=1)  # exact sums after rounding
    runs = pd.DataFrame(mix, columns=DOMAINS, index=[f"run{i:02d}" for i in range(len(mix))])
    obs = simulate_observations(COEFFICIENTS, runs, STEPS, s_ref=S_REF, noise_sd=0.01,
                                run_sd=0.01, seed=1)
    obs.frame.loc[:, "loss"] = obs.frame["loss"].round(5)
    obs.to_csv(OUT / "observations.csv")
    candidates = pd.DataFrame(
        [[0.25, 0.25, 0.25, 0.25], [0.55, 0.15, 0.2, 0.1], [0.3, 0.4, 0.1, 0.2],
         [0.4, 0.0, 0.4, 0.2]],
        columns=DOMAINS, index=pd.Index(["uniform", "web-heavy", "code-heavy", "no-code"],
                                        name="mixture"))
    write_mixtures(candidates, OUT / "mixtures.csv")
    print(f"wrote {OUT / 'observations.csv'} ({len(obs)} rows) and {OUT / 'mixtures.csv'}")


if __name__ == "__main__":
    main()
