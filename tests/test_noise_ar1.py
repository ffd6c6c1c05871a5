"""The AR(1) residual noise: its closed form against dense algebra, its sampler, fits through it.

The closed-form curve likelihood (tridiagonal precision + rank-one run offset) is checked against
scipy's dense multivariate normal with masks, uneven and unsorted steps, in numpy and PyTensor;
the sampler's covariance against the model's. The slow tests fit the tiny design with
``noise="ar1"`` (one compilation, shared through the sampler's cache).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
from tiny_design import STEPS
from tiny_design import observations as _observations

from bimix_bayes import sampling
from bimix_bayes.noise import CurveStructure, ar1_curve_logp
from bimix_bayes.noise import get as get_noise
from bimix_bayes.observations import Observations

AR1 = get_noise("ar1")
STEPS_UNEVEN = np.array([100, 150, 400, 1000, 1100, 5000, 20000])
SIGMA, SIGMA_RUN, RHO = np.array([0.02, 0.05, 0.01]), np.array([0.03, 0.01, 0.02]), 0.3


def _dense(resid: np.ndarray, mask: np.ndarray, steps: np.ndarray, sigma, sigma_run, rho):
    """Log-density of each (curve, domain) by scipy on the dense covariance of its observed
    checkpoints: sigma^2 rho^|log2 s - log2 s'| + sigma_run^2."""
    t = np.log2(steps)
    out = np.zeros((resid.shape[0], resid.shape[-1]))
    for r in range(resid.shape[0]):
        for d in range(resid.shape[-1]):
            keep = mask[r, :, d] > 0
            if keep.any():
                tt = t[keep]
                cov = sigma[d] ** 2 * rho ** np.abs(tt[:, None] - tt[None]) + sigma_run[d] ** 2
                out[r, d] = scipy.stats.multivariate_normal(np.zeros(keep.sum()), cov).logpdf(
                    resid[r, keep, d])
    return out


@pytest.fixture
def curves():
    """Four curves x three domains on uneven steps; missing checkpoints inside, at the ends,
    a curve with one observation and one with none."""
    rng = np.random.default_rng(0)
    resid = rng.normal(size=(4, len(STEPS_UNEVEN), 3)) * 0.03
    mask = (rng.random(resid.shape) > 0.3).astype(float)
    mask[1, :, 0] = 0
    mask[2, :, 1] = 0
    mask[2, 3, 1] = 1
    return resid, mask


def test_closed_form_matches_dense_normal_in_numpy(curves):
    resid, mask = curves
    t = np.log2(STEPS_UNEVEN)
    assert CurveStructure.of(np.swapaxes(mask, -1, -2), t).gap_dt.size > 0  # gaps exercised
    want = _dense(resid, mask, STEPS_UNEVEN, SIGMA, SIGMA_RUN, RHO)
    params = {"sigma": SIGMA, "sigma_run": SIGMA_RUN, "rho": np.array(RHO)}
    got = AR1.curve_log_likelihood(params, resid, mask, STEPS_UNEVEN)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert got[1, 0] == 0.0  # no observation
    # Steps in any order, and parameters shaped per draw (sample, 1, 1, domain).
    perm = np.random.default_rng(1).permutation(len(STEPS_UNEVEN))
    np.testing.assert_allclose(
        AR1.curve_log_likelihood(params, resid[:, perm], mask[:, perm], STEPS_UNEVEN[perm]),
        want, rtol=1e-10, atol=1e-10)
    shaped = {"sigma": np.broadcast_to(SIGMA, (2, 1, 1, 3)),
              "sigma_run": np.broadcast_to(SIGMA_RUN, (2, 1, 1, 3)),
              "rho": np.array([RHO, 0.7]).reshape(2, 1, 1, 1)}
    both = AR1.curve_log_likelihood(shaped, np.broadcast_to(resid, (2, *resid.shape)), mask,
                                    STEPS_UNEVEN)
    np.testing.assert_allclose(both[0], want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(both[1], _dense(resid, mask, STEPS_UNEVEN, SIGMA, SIGMA_RUN, 0.7),
                               rtol=1e-10, atol=1e-10)


def test_closed_form_matches_dense_normal_in_pytensor(curves):
    """The model's likelihood: the same expression on (run, domain, step) tensors, with the
    padded structure (a placeholder gap of weight 0) the compiled model carries."""
    import pytensor.tensor as pt

    resid, mask = curves
    structure = CurveStructure.of(mask.transpose(0, 2, 1), np.log2(STEPS_UNEVEN), pad=True)
    got = ar1_curve_logp(pt.as_tensor(resid.transpose(0, 2, 1)), structure,
                         pt.as_tensor(SIGMA)[:, None], pt.as_tensor(SIGMA_RUN)[:, None],
                         pt.as_tensor(RHO), xp=pt)[..., 0].eval()
    np.testing.assert_allclose(got, _dense(resid, mask, STEPS_UNEVEN, SIGMA, SIGMA_RUN, RHO),
                               rtol=1e-10, atol=1e-10)
    # No gap at all: the placeholder alone.
    full = CurveStructure.of(np.ones((4, 3, len(STEPS_UNEVEN))), np.log2(STEPS_UNEVEN), pad=True)
    got = ar1_curve_logp(pt.as_tensor(resid.transpose(0, 2, 1)), full,
                         pt.as_tensor(SIGMA)[:, None], pt.as_tensor(SIGMA_RUN)[:, None],
                         pt.as_tensor(RHO), xp=pt)[..., 0].eval()
    np.testing.assert_allclose(got, _dense(resid, np.ones_like(mask), STEPS_UNEVEN, SIGMA,
                                           SIGMA_RUN, RHO), rtol=1e-10)


def test_one_checkpoint_needs_no_steps_and_is_the_normal_marginal():
    params = {"sigma": SIGMA, "sigma_run": SIGMA_RUN, "rho": np.array(RHO)}
    resid = np.array([[[0.01, -0.02, 0.03]]])
    got = AR1.curve_log_likelihood(params, resid, 1.0)
    want = scipy.stats.norm(0, np.hypot(SIGMA, SIGMA_RUN)).logpdf(resid[0, 0])
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    with pytest.raises(ValueError, match="needs the steps"):
        AR1.curve_log_likelihood(params, np.zeros((1, 2, 3)), 1.0)


def test_sample_has_the_model_covariance():
    """A new run's curve: stationary OU in log2 step plus the run offset; steps unsorted and
    repeated (a repeated step is the same checkpoint: the same value)."""
    steps = np.array([5000, 100, 400, 400, 20000])
    rng = np.random.default_rng(2)
    params = {"sigma": SIGMA, "sigma_run": SIGMA_RUN, "rho": np.array(RHO)}
    x = AR1.sample(params, (100_000, len(steps), 3), rng, steps)
    np.testing.assert_array_equal(x[:, 2], x[:, 3])
    t = np.log2(steps)
    for d in range(3):
        cov = SIGMA[d] ** 2 * RHO ** np.abs(t[:, None] - t[None]) + SIGMA_RUN[d] ** 2
        np.testing.assert_allclose(np.cov(x[:, :, d].T), cov, atol=0.02 * cov.max())
    assert abs(x.mean()) < 1e-3


# ------------------------------------------------------------------------------------ slow
@pytest.fixture(scope="module")
def ar1_fit(tmp_path_factory):
    from bimix_bayes.model import BayesianBiMix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BayesianBiMix(law="bimix", noise="ar1", draws=200, tune=300, chains=2, seed=1).fit(
            _observations())


@pytest.mark.slow
def test_fit_file_round_trip_and_new_run_band(ar1_fit, tmp_path):
    import arviz as az
    import xarray as xr

    from bimix_bayes.posterior import Posterior

    post = ar1_fit.posterior_
    assert post.noise == "ar1" and post.draws["rho"].dims == ("chain", "draw")
    assert 0 < float(post.draws["rho"].mean()) < 1
    assert ar1_fit.diagnostics_["n_divergent"] <= 5
    path = tmp_path / "fit.nc"
    post.save(path)
    loaded = Posterior.load(path)
    np.testing.assert_allclose(loaded.draws["rho"], post.draws["rho"])
    loo = az.loo(xr.open_datatree(path), pointwise=True)
    assert np.asarray(loo.pareto_k).size == 6 * 2  # one LOO unit per curve
    obs = _observations()
    pred = loaded.predict(obs.mixtures().iloc[:2], steps=STEPS, prob=0.9, seed=3)
    assert pred.attrs["band"] == "new-run"
    mean_band = loaded.predict(obs.mixtures().iloc[:2], steps=STEPS, prob=0.9, band="mean")
    assert bool(((pred["upper"] - pred["lower"]) > (mean_band["upper"] - mean_band["lower"])).all())


@pytest.mark.slow
def test_mask_is_data_a_cached_model_refits_another_mask_exactly(ar1_fit):
    """Dropping a checkpoint inside a curve (a gap) reuses the compiled model of the design, and
    its draws equal those of a fresh compilation: the structure travels as data."""
    from bimix_bayes.model import BayesianBiMix

    obs = _observations()
    f = obs.frame
    gap = f[(f["run"] == obs.runs[0]) & (f["domain"] == "web") & (f["step"] == STEPS[1])].index
    dropped = Observations.from_frame(f.drop(gap), source="<gap>")
    settings = {"law": "bimix", "noise": "ar1", "draws": 100, "tune": 100, "chains": 1, "seed": 4,
                "retry_target_accept": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cached = BayesianBiMix(**settings).fit(dropped).posterior_
        sampling._COMPILED.clear()
        fresh = BayesianBiMix(**settings).fit(dropped).posterior_
    np.testing.assert_allclose(cached.draws["rho"], fresh.draws["rho"])
    np.testing.assert_allclose(cached.tree["log_likelihood"]["log_loss"],
                               fresh.tree["log_likelihood"]["log_loss"], rtol=1e-5)


@pytest.mark.slow
def test_cli_fit_with_ar1_noise(cli, tmp_path):
    obs_path = tmp_path / "obs.csv"
    _observations().frame.to_csv(obs_path, index=False)
    out = tmp_path / "fit.nc"
    result = cli("fit", obs_path, "--noise", "ar1", "--draws", "100", "--tune", "100",
                 "--chains", "1", "--no-progress", "--out", out)
    assert result.code == 0, result.err
    from bimix_bayes.posterior import Posterior

    assert Posterior.load(out).noise == "ar1"


@pytest.mark.slow
def test_sbc_ranks_of_ar1_noise_are_not_grossly_miscalibrated():
    from bimix_bayes.calibration import rank_uniformity, sbc
    from bimix_bayes.model import BayesianBiMix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranks = sbc(_observations(), 6, n_rank_draws=49, seed=5,
                    estimator=BayesianBiMix(law="bimix", noise="ar1", draws=100, tune=200, chains=2))
    r = ranks["rank"].to_numpy()
    names = [str(p) for p in ranks["parameter"].values]
    assert "rho" in names and "sigma[web]" in names
    assert r.min() >= 0 and r.max() <= 49
    assert rank_uniformity(ranks, n_bins=4).loc["all", "p_value"] > 1e-3
    assert not np.any(np.all(r <= 1, axis=0)) and not np.any(np.all(r >= 48, axis=0))
