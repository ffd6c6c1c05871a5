"""The law family beyond BiMix: the Data Mixing Laws form (``dml``) and transfer plus a linear
cross-domain term (``transfer_linear``).

Fast tests check each law's formula against itself (numpy and PyTensor), its derivatives against
finite differences of the full law, the loss surface's gradient and Hessian, its priors and its
place in the registry and the CLI. The slow ones fit the tiny design once per law (the sampler's
compile cache serves the SBC replicates) and round-trip the fit through the posterior file.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import optimize as sopt
from tiny_design import COEF, DOMAINS, S_REF, STEPS
from tiny_design import observations as tiny_observations

from bimix_bayes import laws
from bimix_bayes.calibration import rank_uniformity, sbc
from bimix_bayes.constraints import Constraints
from bimix_bayes.laws.dml import helmert
from bimix_bayes.laws.transfer_linear import fixed_columns
from bimix_bayes.model import BayesianBiMix, prior_predictive
from bimix_bayes.optimizer import optimize
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations
from bimix_bayes.spec import ModelSpec
from bimix_bayes.surface import LossSurface

NEW = ("dml", "transfer_linear")
ALL = ("bimix", "transfer", *NEW)
SOURCES = ["web", "code", "math", "books"]  # books is trained on but never evaluated
EVALUATED = SOURCES[:3]
OWN = np.array([0, 1, 2])
STEP, REF_STEP = 2000.0, 1000.0


def random_params(name: str, rng: np.random.Generator, n: int | None = None) -> dict:
    """Plausible parameters of law ``name`` for the 3 evaluated of 4 sources (``n`` draws first)."""
    lead = () if n is None else (n,)
    d, s = len(EVALUATED), len(SOURCES)
    off_own = np.ones((d, s))
    off_own[np.arange(d), OWN] = 0.0
    if name == "dml":
        return {"log_c": rng.normal(0.8, 0.2, (*lead, d)), "log_k": rng.normal(0.0, 0.5, (*lead, d)),
                "beta": rng.uniform(0.2, 1.0, (*lead, d)),
                "t": rng.normal(0.0, 1.0, (*lead, d, s - 1)) @ helmert(s).T}
    p = {"log_c": rng.normal(1.0, 0.3, (*lead, d)), "alpha": rng.uniform(0.02, 0.5, (*lead, d)),
         "u": rng.normal(-0.5, 0.5, (*lead, d)), "beta": rng.uniform(0.2, 1.0, (*lead, d)),
         "eps": rng.uniform(1e-3, 0.02, (*lead, d))}
    if name in ("transfer", "transfer_linear"):
        p["transfer"] = rng.uniform(0.0, 0.3, (*lead, d, s)) * off_own
    if name == "transfer_linear":
        p["linear"] = rng.normal(0.0, 0.1, (*lead, d, s)) * off_own
    return p


def mixtures(rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` interior mixtures over SOURCES, away from zero shares."""
    return rng.dirichlet(np.full(len(SOURCES), 3.0), size=m)


# ------------------------------------------------------------------------- registry and CLI
def test_the_new_laws_are_registered_and_offered_by_the_cli(cli):
    from typing import get_args

    from bimix_bayes import cli as cli_module

    assert set(NEW) <= set(laws.names())
    assert laws.names()[:2] == ["bimix", "transfer"]  # registration order: simplest first
    assert set(NEW) <= set(get_args(cli_module.Law))  # --law's choices
    for name in NEW:
        assert laws.get(name).summary
        ModelSpec.from_dict(ModelSpec(law=name).to_dict())  # its spec (priors) round-trips
    cli("fit", "missing.csv", "--law", "dml", "--method", "leastsq", "--out", "x.nc"
        ).assert_user_error("missing.csv")


# ------------------------------------------------------------------------- the formula
@pytest.mark.parametrize("name", NEW)
def test_numpy_and_pytensor_give_the_same_log_loss(name):
    import pytensor.tensor as pt

    law = laws.get(name)
    rng = np.random.default_rng(1)
    params = random_params(name, rng)
    mix = mixtures(rng, 5)[:, None, :]  # (mixture, 1, source), as build_model lays them out
    steps = np.array([200.0, 1000.0, 20000.0])[None, :, None]
    own = mix[..., OWN]
    expect = law.log_loss(params, own, mix, steps, REF_STEP)
    symbolic = {k: pt.as_tensor_variable(v) for k, v in params.items()}
    got = law.log_loss(symbolic, own, mix, steps, REF_STEP, xp=pt).eval()
    assert expect.shape == (5, 3, 3)
    np.testing.assert_allclose(got, expect, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_d_log_loss_matches_finite_differences(name):
    law = laws.get(name)
    rng = np.random.default_rng(2)
    params = random_params(name, rng)
    mix = mixtures(rng, 4)
    r_eff = law.effective_proportion(params, mix[:, OWN], mix)
    d1, d2 = law.d_log_loss(params, r_eff, STEP, REF_STEP)
    h = 1e-5

    def f(x):
        return law.log_loss_at(params, x, STEP, REF_STEP)

    np.testing.assert_allclose(d1, (f(r_eff + h) - f(r_eff - h)) / (2 * h), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(d2, (f(r_eff + h) - 2 * f(r_eff) + f(r_eff - h)) / h**2,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_rows_and_linear_term_give_the_mixture_gradient_of_the_full_law(name):
    """d log L_i / d r_j = f'_i R_ij + G_ij, against finite differences of ``Law.log_loss``."""
    law = laws.get(name)
    rng = np.random.default_rng(3)
    params = random_params(name, rng)
    onehot = np.eye(len(SOURCES))[OWN]
    rows = law.mixing_rows(params, onehot)
    rows = onehot if rows is None else rows
    linear = law.linear_rows(params)
    assert (linear is not None) == (name == "transfer_linear")
    for x in mixtures(rng, 3):
        d1, _ = law.d_log_loss(params, law.effective_proportion(params, x[OWN], x), STEP, REF_STEP)
        grad = d1[:, None] * rows + (0.0 if linear is None else linear)
        h = 1e-6
        for j in range(len(SOURCES)):
            e = np.zeros(len(SOURCES))
            e[j] = h
            fd = (law.log_loss(params, (x + e)[OWN], x + e, STEP, REF_STEP)
                  - law.log_loss(params, (x - e)[OWN], x - e, STEP, REF_STEP)) / (2 * h)
            np.testing.assert_allclose(grad[:, j], fd, rtol=1e-6, atol=1e-9)


def test_dml_is_invariant_to_a_constant_row_shift_and_its_basis_sums_to_zero():
    """The redundancy the sum-zero constraint removes: ``t_i + a`` with ``log_k_i - a``."""
    law = laws.get("dml")
    rng = np.random.default_rng(4)
    params = random_params("dml", rng)
    np.testing.assert_allclose(params["t"].sum(axis=-1), 0.0, atol=1e-12)
    shift = rng.normal(size=3)
    moved = {**params, "t": params["t"] + shift[:, None], "log_k": params["log_k"] - shift}
    mix = mixtures(rng, 6)
    np.testing.assert_allclose(law.log_loss(moved, mix[:, OWN], mix, STEP, REF_STEP),
                               law.log_loss(params, mix[:, OWN], mix, STEP, REF_STEP), rtol=1e-12)
    q = helmert(5)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(q.sum(axis=0), 0.0, atol=1e-12)


def test_transfer_linear_fixes_the_own_entry_or_the_first_for_a_foreign_target():
    assert fixed_columns(["web", "code"], ["web", "code", "math"]).tolist() == [0, 1]
    assert fixed_columns(["code", "downstream"], ["web", "code"]).tolist() == [1, 0]


def test_simulate_observations_takes_the_source_axis_parameters():
    law = laws.get("transfer_linear")
    mix = pd.DataFrame({"web": [0.2, 0.7], "code": [0.8, 0.3]}, index=["a", "b"])
    matrices = {"transfer": np.array([[0.0, 0.1], [0.0, 0.0]]),
                "linear": np.array([[0.0, 0.3], [-0.2, 0.0]])}
    obs = simulate_observations(COEF, mix, STEPS, s_ref=S_REF, law="transfer_linear",
                                matrices=matrices)
    params = {**{k: COEF[k].to_numpy() for k in ("log_c", "alpha", "u", "beta", "eps")},
              **matrices}
    x = mix.to_numpy()[:, None, :]
    expect = np.exp(law.log_loss(params, x, x, np.array(STEPS, float)[None, :, None], S_REF))
    got = obs.to_dataset()["loss"].sel(domain=DOMAINS).transpose("run", "step", "domain")
    np.testing.assert_allclose(got.to_numpy(), expect, rtol=1e-12)
    assert not np.allclose(expect, np.exp(law.log_loss({**params, "linear": 0 * matrices[
        "linear"]}, x, x, np.array(STEPS, float)[None, :, None], S_REF)))


# ------------------------------------------------------------------------- surface and optimizer
def synthetic_observations():
    rng = np.random.default_rng(0)
    mix = pd.DataFrame(rng.dirichlet(np.ones(len(SOURCES)), size=6), columns=SOURCES,
                       index=[f"r{i}" for i in range(6)])
    coef = pd.DataFrame({"log_c": [1.2, 0.8, 1.0], "alpha": [0.08, 0.25, 0.15],
                         "u": [0.4, 0.6, 0.5], "beta": [0.5, 0.6, 0.55],
                         "eps": [0.01] * 3}, index=EVALUATED)
    return simulate_observations(coef, mix, steps=[500, 1000], s_ref=REF_STEP, noise_sd=0.01,
                                 seed=1)


def synthetic_posterior(name: str, n: int = 30, seed: int = 0) -> Posterior:
    """``n`` random draws of law ``name`` as a posterior of the synthetic observations."""
    params = random_params(name, np.random.default_rng(seed), n)
    params["sigma"] = np.full((n, 3), 0.02)
    params["sigma_run"] = np.zeros((n, 3))
    dims = {k: ("domain", "source") if v.ndim == 3 else ("domain",) for k, v in params.items()}
    ds = xr.Dataset({k: (("chain", "draw", *dims[k]), v[None]) for k, v in params.items()},
                    coords={"domain": EVALUATED, "source": SOURCES})
    return Posterior.from_draws(ds, synthetic_observations(), spec=ModelSpec(law=name),
                                method="synthetic", s_ref=REF_STEP)


@pytest.fixture(scope="module", params=NEW)
def synthetic(request) -> Posterior:
    return synthetic_posterior(request.param)


def test_surface_gradient_and_hessian_match_finite_differences(synthetic):
    surface = LossSurface(synthetic, STEP, weights={"web": 1.0, "code": 2.0, "math": 0.5})
    mix = pd.DataFrame([[0.4, 0.3, 0.2, 0.1]], columns=SOURCES, index=["m"])
    x = mix.to_numpy()[0]
    np.testing.assert_allclose(surface.log_losses(x), synthetic.log_loss_draws(mix, [STEP])[:, 0, 0],
                               rtol=1e-12)
    _, grad = surface.average_grad(x)
    # The Hessian draw_optima's Newton steps use, each draw at the same mixture.
    per_draw = np.broadcast_to(x, (surface.n_draws, len(x)))
    hess = surface._evaluate(per_draw, True, order=2)[3]
    h = 1e-6
    for j in range(len(SOURCES)):
        e = np.zeros(len(SOURCES))
        e[j] = h
        fd = (surface.average(x + e) - surface.average(x - e)) / (2 * h)
        np.testing.assert_allclose(grad[:, j], fd, rtol=1e-6, atol=1e-9)
        fd_grad = (surface.average_grad(x + e)[1] - surface.average_grad(x - e)[1]) / (2 * h)
        np.testing.assert_allclose(hess[:, :, j], fd_grad, rtol=1e-5, atol=1e-7)


def test_per_draw_optima_match_scipy(synthetic):
    surface = LossSurface(synthetic, STEP).take(np.arange(4))
    c = Constraints.build(SOURCES, bounds={"code": (0.05, 0.5)})
    x, f = surface.draw_optima(c)
    for k in range(4):
        best = min((sopt.minimize(lambda z, k=k: surface.average(z)[k], z0, method="SLSQP",
                                  bounds=list(zip(c.lower, c.upper, strict=True)),
                                  constraints=[{"type": "eq", "fun": lambda z: z.sum() - 1}],
                                  options={"ftol": 1e-14, "maxiter": 500})
                    for z0 in (np.full(4, 0.25), np.array([0.1, 0.4, 0.1, 0.4]))),
                   key=lambda r: r.fun)
        assert f[k] <= best.fun + 1e-9
        np.testing.assert_allclose(x[k], best.x, atol=2e-4)


def test_optimizer_beats_its_reference_on_each_law(synthetic):
    result = optimize(synthetic, STEP)
    x = result.mixture.to_numpy()
    assert abs(x.sum() - 1) < 1e-12 and x.min() >= 0
    assert result.summary()["gain_mean"] >= -1e-12


# ------------------------------------------------------------------------- priors
@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_prior_predictive_gives_a_few_nats_falling_with_steps(name):
    """The justification of the priors: 90 % of prior mean curves within about 0.8-15 nats (the
    tiny design spans shares 0.05-0.95), every curve falls with steps, and the constrained
    entries (sum-zero rows of ``t``; ``g_ii = 0``) hold in every draw."""
    pp = prior_predictive(tiny_observations(), ModelSpec(law=name), draws=300, seed=0)
    mean = pp["mean_loss"].to_numpy()
    lo, mid, hi = np.nanquantile(mean, [0.05, 0.5, 0.95])
    assert 0.5 < lo < 1.5 < 2 < mid < 5 < hi < 20
    steps = pp["mean_loss"].transpose(..., "step").to_numpy()
    assert np.all(np.diff(steps, axis=-1) < 0)
    if name == "dml":
        np.testing.assert_allclose(pp["t"].sum("source"), 0.0, atol=1e-9)
    else:
        for d in DOMAINS:
            assert float(abs(pp["linear"].sel(domain=d, source=d)).max()) == 0.0
        assert float(abs(pp["linear"]).max()) > 0


# ------------------------------------------------------------------------- fits (slow)
@pytest.fixture(scope="module")
def estimators() -> dict[str, BayesianBiMix]:
    return {name: BayesianBiMix(law=name, draws=150, tune=250, chains=2, seed=1) for name in NEW}


@pytest.fixture(scope="module")
def fits(estimators) -> dict[str, BayesianBiMix]:
    obs = tiny_observations()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws: the diagnostics' verdict is not the point
        return {name: est.fit(obs) for name, est in estimators.items()}


@pytest.mark.slow
def test_dml_fit_learns_that_a_domains_own_share_lowers_its_loss(fits):
    """The tiny design's truth is BiMix: more of a domain's own data lowers its loss, so moving
    share from the other domain to it lowers the log reducible loss: ``t_ii - t_ij < 0``."""
    t = fits["dml"].posterior_.draws["t"]
    for own, other in (DOMAINS, DOMAINS[::-1]):
        contrast = (t.sel(domain=own, source=own) - t.sel(domain=own, source=other)).to_numpy()
        assert contrast.mean() < 0 and (contrast < 0).mean() > 0.8


@pytest.mark.slow
def test_transfer_linear_fit_keeps_the_alpha_ordering_and_shrinks_the_linear_term(fits):
    """Truth: BiMix with alpha(code) = 2 alpha(web) and no cross-domain term."""
    draws = fits["transfer_linear"].posterior_.draws
    alpha = draws["alpha"].mean(("chain", "draw"))
    assert float(alpha.sel(domain="code")) > float(alpha.sel(domain="web"))
    linear = draws["linear"].sel(domain="web", source="code").to_numpy()
    lo, hi = np.quantile(linear, [0.05, 0.95])
    assert lo < 0.0 < hi or abs(linear.mean()) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_fit_round_trips_through_the_posterior_file_and_feeds_the_optimizer(fits, name, tmp_path):
    post = fits[name].posterior_
    path = tmp_path / f"{name}.nc"
    post.save(path)
    loaded = Posterior.load(path)
    assert loaded.law == name
    # New mixtures inside the design's range of shares (web 0.17-0.61), where laws agree.
    held = pd.DataFrame({"web": [0.25, 0.4, 0.55], "code": [0.75, 0.6, 0.45]},
                        index=["h0", "h1", "h2"])
    a, b = post.predict(held, [300, 3000], seed=2), loaded.predict(held, [300, 3000], seed=2)
    np.testing.assert_allclose(b["mean"], a["mean"], rtol=1e-6)
    # Close to the BiMix truth the tiny design was simulated from (1 % noise).
    truth = simulate_observations(COEF, held, [300, 3000], s_ref=S_REF).frame.dropna()
    pred = b["mean"].to_series().rename("mean").reset_index()
    both = truth.astype({"step": int}).merge(pred, left_on=["run", "domain", "step"],
                                             right_on=["mixture", "domain", "step"])
    assert len(both) == 3 * 2 * 2
    assert np.abs(both["mean"] / both["loss"] - 1).max() < 0.05
    result = optimize(loaded, STEPS[-1])
    assert abs(result.mixture.sum() - 1) < 1e-9
    assert result.summary()["gain_mean"] > -0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_sbc_ranks_of_the_new_laws_are_not_grossly_miscalibrated(estimators, name):
    """A few SBC replicates on the tiny design (the fit's compiled model is reused): a smoke
    test of calibration; benchmarks/sbc.py is the real run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranks = sbc(tiny_observations(), 4, estimator=estimators[name], n_rank_draws=99, seed=7)
    names = {str(p) for p in ranks["parameter"].values}
    assert {"log_c[web]", "beta[code]"} <= names
    assert ("t[web,code]" in names) if name == "dml" else ("linear[web,code]" in names)
    r = ranks["rank"].to_numpy()
    assert r.shape[0] == 4 and r.min() >= 0 and r.max() <= 99
    assert rank_uniformity(ranks, n_bins=4).loc["all", "p_value"] > 1e-3
