"""Model checking: SBC ranks, interval coverage and the PSIS-LOO law comparison.

The slow tests fit one tiny design (2 domains, 6 runs, 4 steps) many times; the sampler's compile
cache compiles it once. Fits use few draws, so the checks are deliberately lenient: they catch a grossly
miscalibrated model (ranks piled at one end, intervals that miss), not small biases. The full runs
are in benchmarks/sbc.py and benchmarks/transfer_vs_bimix.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from tiny_design import COEF, DOMAINS, S_REF
from tiny_design import mixtures as _mixtures
from tiny_design import observations as _observations

from bimix_bayes.calibration import (
    coverage,
    interval_coverage,
    observations_like,
    rank_uniformity,
    sbc,
)
from bimix_bayes.model import BayesianBiMix
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import ModelSpec


@pytest.fixture(scope="session")
def estimator() -> BayesianBiMix:
    return BayesianBiMix(law="bimix", draws=150, tune=250, chains=2)


# ------------------------------------------------------------------------------------ fast
def test_observations_like_puts_losses_on_the_design_grid():
    obs = _observations()
    cube = np.log(np.arange(1, 6 * 2 * 4 + 1, dtype=float)).reshape(6, 2, 4)
    new = observations_like(obs, cube)
    assert new.runs == obs.runs and new.steps == obs.steps
    ds = new.to_dataset()
    np.testing.assert_allclose(ds["loss"].sel(domain=DOMAINS).to_numpy(), np.exp(cube))
    np.testing.assert_allclose(new.frame["proportion"], obs.frame["proportion"])


def test_rank_uniformity_accepts_uniform_and_flags_piled_ranks():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 100, size=(400, 1))
    piled = np.zeros((400, 1), dtype=int)
    ranks = xr.Dataset({"rank": (("replicate", "parameter"), np.hstack([uniform, piled]))},
                       coords={"parameter": ["fine", "biased"]}, attrs={"n_rank_draws": 99})
    table = rank_uniformity(ranks, n_bins=10)
    assert table.loc["fine", "p_value"] > 0.001
    assert table.loc["biased", "p_value"] < 1e-10
    assert table.loc["biased", "max_rank"] == 0
    assert set(table.index) == {"fine", "biased", "all"}


def _constant_posterior(obs, sigma: float) -> Posterior:
    """200 identical draws of the true coefficients with residual scale ``sigma``."""
    values = {k: COEF[k].to_numpy() for k in ("log_c", "alpha", "u", "beta", "eps")}
    values["sigma"] = np.full(len(DOMAINS), sigma)
    values["sigma_run"] = np.zeros(len(DOMAINS))
    draws = xr.Dataset({k: (("chain", "draw", "domain"), np.broadcast_to(v, (1, 200, len(v))))
                        for k, v in values.items()}, coords={"domain": DOMAINS})
    return Posterior.from_draws(draws, obs, spec=ModelSpec(law="bimix"), method="test",
                                s_ref=S_REF)


def test_interval_coverage_counts_observations_inside_the_band():
    obs = _observations(noise=0.02)
    wide = interval_coverage(_constant_posterior(obs, 0.5), obs, 0.9)
    narrow = interval_coverage(_constant_posterior(obs, 1e-6), obs, 0.9)
    assert list(wide.index) == [*DOMAINS, "all"]
    assert wide.loc["all", "n"] == 6 * 2 * 4
    assert wide.loc["all", "coverage"] == 1.0
    assert narrow.loc["all", "coverage"] == 0.0


# ------------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_sbc_ranks_are_not_grossly_miscalibrated(estimator):
    n_rep = 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranks = sbc(_observations(), n_rep, estimator=estimator, n_rank_draws=99, seed=3)
    r = ranks["rank"].to_numpy()
    assert r.shape[0] == n_rep and r.min() >= 0 and r.max() <= 99
    names = [str(p) for p in ranks["parameter"].values]
    assert {"alpha[web]", "beta[code]", "log_c[web]", "sigma[code]"} <= set(names)
    table = rank_uniformity(ranks, n_bins=4)
    # Pooled over all parameters, ranks of a calibrated model spread over the whole range.
    assert table.loc["all", "p_value"] > 1e-3
    # No parameter has every true value beyond all (or below all) of its thinned draws.
    assert not np.any(np.all(r <= 2, axis=0)) and not np.any(np.all(r >= 97, axis=0))


@pytest.mark.slow
def test_heldout_intervals_cover_near_nominal(estimator):
    held = _mixtures(6, seed=9, prefix="h")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov = coverage(_observations(), held, n_worlds=3, estimator=estimator, seed=5)
    assert set(cov["kind"]) == {"mean", "new-run", "parameters"}
    assert (cov.loc[cov["kind"] != "parameters", "n"] == 6 * 2 * 4).all()
    assert (cov.loc[cov["kind"] == "parameters", "n"] == 6 * 2).all()
    mean = cov.groupby(["kind", "prob"])["covered"].mean()
    # 3 worlds x 48 correlated points: lenient bands around 50 % and 90 %.
    for kind in ("mean", "new-run", "parameters"):
        assert 0.2 <= mean[(kind, 0.5)] <= 0.8
        assert mean[(kind, 0.9)] >= 0.7
