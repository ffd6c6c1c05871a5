"""The hierarchical Bayesian BiMix model: priors, likelihood, recovery, diagnostics, persistence.

Sampling dominates the cost, so one small bimix fit and one transfer fit are shared by all tests
(session fixtures) and draws are few.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

from bimix_bayes import laws
from bimix_bayes.diagnostics import UntrustworthyFitWarning, mcmc_diagnostics, summary_text
from bimix_bayes.errors import BimixInputError
from bimix_bayes.model import BayesianBiMix, Design, build_model, prior_predictive
from bimix_bayes.noise import get as get_noise
from bimix_bayes.noise import normal_curve_logp
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations
from bimix_bayes.spec import ModelSpec

STEPS = [200, 400, 800, 1600, 3200]


def _small_problem(seed: int = 0, zero: bool = True):
    """3 domains x 10 runs x 5 steps; two runs leave a domain out (proportion 0)."""
    rng = np.random.default_rng(seed)
    domains = ["web", "code", "math"]
    coef = pd.DataFrame({"log_c": np.log([2.8, 1.6, 2.2]), "alpha": [0.05, 0.10, 0.08],
                         "u": [-1.0, -0.5, -1.2], "beta": [0.5, 0.4, 0.6],
                         "eps": [1e-3, 1e-3, 1e-3]}, index=domains)
    mix = rng.dirichlet(np.ones(3), size=10)
    if zero:
        mix[0] = [0.6, 0.4, 0.0]
        mix[1] = [0.0, 0.3, 0.7]
    mixtures = pd.DataFrame(mix, columns=domains, index=[f"r{i}" for i in range(10)])
    s_ref = float(np.exp(np.mean(np.log(STEPS))))
    obs = simulate_observations(coef, mixtures, STEPS, s_ref=s_ref, noise_sd=0.01, run_sd=0.01,
                                seed=seed)
    return obs, coef, s_ref


@pytest.fixture(scope="session")
def problem():
    return _small_problem()


@pytest.fixture(scope="session")
def fitted(problem):
    obs, _, _ = problem
    return BayesianBiMix(law="bimix", draws=500, tune=500, chains=2, seed=3).fit(obs)


@pytest.fixture(scope="session")
def fitted_transfer(problem):
    obs, _, _ = problem
    with pytest.warns(UntrustworthyFitWarning):  # far too few draws to pass the checks
        return BayesianBiMix(law="transfer", draws=50, tune=100, chains=2, seed=1).fit(obs)


def test_curve_logp_matches_multivariate_normal():
    """The marginalised run offset equals the exact compound-symmetric normal density, in numpy
    (the noise component) and PyTensor (the model's likelihood) alike."""
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    mu, sigma, sigma_run = rng.normal(size=4), 0.3, 0.7
    value = rng.normal(size=4)
    mask = np.array([1.0, 1.0, 0.0, 1.0])
    keep = mask > 0
    cov = sigma**2 * np.eye(3) + sigma_run**2 * np.ones((3, 3))
    want = scipy.stats.multivariate_normal(mu[keep], cov).logpdf(value[keep])
    params = {"sigma": np.array([sigma]), "sigma_run": np.array([sigma_run])}
    got = get_noise("normal").curve_log_likelihood(params, (value - mu)[:, None], mask[:, None])
    np.testing.assert_allclose(got, [want], rtol=1e-10)
    e = (value - mu) * mask
    tensor = normal_curve_logp(pt.constant(mask.sum()), pt.constant(e.sum()),
                               pt.constant((e**2).sum()), sigma, sigma_run, xp=pt).eval()
    np.testing.assert_allclose(tensor, want, rtol=1e-10)
    empty = get_noise("normal").curve_log_likelihood(params, value[:, None], np.zeros((4, 1)))
    assert empty == pytest.approx([0.0])


@pytest.mark.parametrize("resid", [[0.01, -0.02, 0.05], [0.01, -0.02, 0.15], [0.04]])
def test_student_curve_likelihood_integrates_the_run_offset(resid):
    """Gauss-Hermite over the run offset against adaptive quadrature of the same integral
    (an outlying checkpoint and a one-point curve included)."""
    from scipy import integrate

    sigma, sigma_run, nu = 0.02, 0.03, 4.0
    resid = np.array(resid)

    def integrand(o: float) -> float:
        return scipy.stats.norm.pdf(o, 0, sigma_run) * np.prod(
            scipy.stats.t.pdf(resid - o, nu, scale=sigma))

    want = np.log(integrate.quad(integrand, -0.3, 0.3, points=[0.0], limit=200)[0])
    params = {"sigma": np.array([sigma]), "sigma_run": np.array([sigma_run]),
              "nu": np.array(nu)}
    got = get_noise("student").curve_log_likelihood(params, resid[:, None],
                                                    np.ones((len(resid), 1)))
    assert got[0] == pytest.approx(want, abs=1e-5)


def test_prior_predictive_is_plausible(problem):
    obs, _, _ = problem
    pp = prior_predictive(obs, draws=200, seed=1)
    q05, q50, q95 = np.nanquantile(pp["loss"].values, [0.05, 0.5, 0.95])
    assert 0.5 < q05 < q50 < q95 < 20  # nats per token: a few, never absurd
    assert 1.5 < q50 < 6
    mean = pp["mean_loss"]
    assert bool((mean.diff("step") < 0).where(mean.diff("step").notnull(), True).all())
    assert set(pp.data_vars) >= {"log_c", "alpha", "u", "beta", "eps", "sigma", "sigma_run"}


def test_build_model_names_and_student_noise(problem):
    obs, _, _ = problem
    model = build_model(obs, ModelSpec(law="transfer", noise="student"))
    assert {"log_c", "alpha", "u", "beta", "eps", "sigma", "sigma_run", "transfer", "nu"} <= set(
        model.named_vars)
    assert model["log_loss"].ndim == 1  # Student-t: one entry per observed cell
    assert model["log_loss"].shape.eval()[0] == int(obs.frame["loss"].notna().sum())


def test_design_centres_nonzero_proportions(problem):
    obs, _, _ = problem
    d = Design.from_observations(obs)
    own = obs.mixtures()[d.coords["domain"]].to_numpy()
    want = [np.mean(np.log(c[c > 0])) for c in own.T]
    np.testing.assert_allclose(d.centre, want)
    assert d.s_ref == pytest.approx(np.exp(np.mean(np.log(STEPS))))


def test_fit_recovers_coefficients(problem, fitted):
    _, coef, _ = problem
    draws = fitted.posterior_.draws
    for name in ("log_c", "alpha", "u", "beta"):
        post = draws[name].stack(sample=("chain", "draw"))
        lo, hi = post.quantile([0.005, 0.995], dim="sample").values
        truth = coef.loc[list(draws["domain"].values), name].to_numpy()
        assert np.all((lo <= truth) & (truth <= hi)), (name, lo, truth, hi)
    # the hierarchy pins the level of each domain's loss tightly
    assert float(draws["sigma"].mean()) == pytest.approx(0.01, rel=0.5)


def test_zero_proportion_rows_fit_and_predict_finite(problem, fitted):
    obs, _, _ = problem
    assert (obs.mixtures() == 0).any().any()
    pred = fitted.posterior_.predict(obs.mixtures().iloc[:2], steps=[100, 5000], band="mean")
    assert np.isfinite(pred["loss_draws"]).all()
    eps = fitted.posterior_.draws["eps"]
    assert float(eps.max()) < 0.1


def test_diagnostics_stored_and_trustworthy(fitted):
    d = fitted.posterior_.diagnostics
    for key in ("n_divergent", "max_rhat", "min_ess_bulk", "min_ess_tail", "min_bfmi",
                "trustworthy", "seconds", "method"):
        assert key in d
    assert d["n_divergent"] == 0
    assert d["max_rhat"] < 1.05
    assert "trustworthy" in summary_text(d)
    assert fitted.posterior_.sample_stats is not None


def test_bad_fit_warns_with_a_remedy(problem, fitted):
    short = fitted.trace_.isel(draw=slice(0, 2))
    d = mcmc_diagnostics(short)
    assert d["trustworthy"] is False
    assert "draws=1000" in d["problems"][0]  # the API's remedy is spelt as its keywords
    obs, _, _ = problem
    with pytest.warns(UntrustworthyFitWarning, match="draws=1000"):
        bad = BayesianBiMix(law="bimix", draws=2, tune=2, chains=2, seed=0).fit(obs)
    assert bad.posterior_.diagnostics["trustworthy"] is False


@pytest.mark.filterwarnings("ignore::bimix_bayes.diagnostics.UntrustworthyFitWarning")
def test_a_diverging_fit_is_resampled_with_smaller_steps(problem, fitted):
    """Divergences trigger one more run at the retry target; the first attempt stays on record."""
    obs, _, _ = problem
    kw = dict(law="bimix", draws=100, tune=100, chains=2, seed=0, target_accept=0.3)
    once = BayesianBiMix(**kw, retry_target_accept=None).fit(obs).diagnostics_
    assert once["n_divergent"] > 0 and "attempts" not in once
    d = BayesianBiMix(**kw, retry_target_accept=0.95).fit(obs).diagnostics_
    first, second = d["attempts"]
    assert first == {"target_accept": 0.3, "n_divergent": once["n_divergent"]}
    assert second["target_accept"] == 0.95 and second["n_divergent"] < first["n_divergent"]
    assert d["target_accept"] == 0.95 and d["n_divergent"] == second["n_divergent"]
    assert "kept 0.95" in summary_text(d)


@pytest.mark.filterwarnings("ignore::bimix_bayes.diagnostics.UntrustworthyFitWarning")
def test_refit_same_design_reuses_compilation(problem, fitted):
    """New losses on the same design (e.g. calibration studies) skip the compilation."""
    obs, coef, s_ref = problem
    shifted = obs.frame.assign(loss=obs.frame["loss"] * 1.5)
    from bimix_bayes.observations import Observations

    again = BayesianBiMix(law="bimix", draws=300, tune=300, chains=2, seed=4).fit(
        Observations.from_frame(shifted))
    assert again.diagnostics_["seconds"] < fitted.diagnostics_["seconds"]
    shift = (again.posterior_.draws["log_c"] - fitted.posterior_.draws["log_c"].mean()).mean()
    assert float(shift) == pytest.approx(np.log(1.5), abs=0.05)  # it saw the new losses


@pytest.mark.slow
def test_transfer_law_samples(fitted_transfer):
    post = fitted_transfer.posterior_
    w = post.draws["transfer"]
    assert w.dims == ("chain", "draw", "domain", "source")
    assert float(w.min()) >= 0
    for dom in post.domains:  # a domain never transfers to itself
        assert float(abs(w.sel(domain=dom, source=dom)).max()) == 0.0
    assert "diagnostics" in post.tree.attrs


def test_posterior_round_trip_predicts_the_same(fitted, tmp_path):
    post = fitted.posterior_
    path = tmp_path / "post.nc"
    post.save(path)
    again = Posterior.load(path)
    mix = post.observations.mixtures().iloc[:3]
    a = post.predict(mix, steps=[500, 4000], prob=0.9)
    b = again.predict(mix, steps=[500, 4000], prob=0.9)
    xr.testing.assert_allclose(a[["mean", "lower", "upper"]], b[["mean", "lower", "upper"]])
    assert again.diagnostics == post.diagnostics
    assert again.spec == ModelSpec() and again.method == "nuts"
    assert again.tree.attrs["spec_id"] == ModelSpec().id
    rebuilt = BayesianBiMix.from_posterior(path)
    made = BayesianBiMix(law="bimix", draws=500, tune=500, chains=2, seed=3)
    assert rebuilt.spec() == made.spec() and rebuilt.sampler_config() == made.sampler_config()


def test_the_file_is_arviz_native_and_agrees_with_the_printed_verdict(fitted, tmp_path):
    """az.summary, az.loo and az.compare work on the saved file; its worst R-hat and ESS are the
    ones the fit reports."""
    import arviz as az

    path = tmp_path / "post.nc"
    fitted.posterior_.save(path)
    tree = xr.open_datatree(path)
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data",
            "constant_data"} <= set(tree.children)
    assert {"log_alpha_tau", "u_tau", "level", "sigma_run"} <= set(tree["posterior"].data_vars)
    summary = az.summary(tree)
    d = fitted.diagnostics_
    assert float(summary["r_hat"].max()) == pytest.approx(d["max_rhat"], abs=0.006)
    assert float(summary["ess_bulk"].min()) == pytest.approx(d["min_ess_bulk"], rel=0.02)
    loo = az.loo(tree)
    assert np.asarray(loo.pareto_k).size == int(tree["log_likelihood"].sizes["curve"])
    table = az.compare({"a": tree, "b": tree})
    assert set(table.index) == {"a", "b"}


@pytest.mark.slow
def test_advi_approximation_runs(problem, fitted):
    obs, _, _ = problem
    approx = BayesianBiMix(law="bimix", method="advi", draws=200, tune=300, seed=0).fit(obs)
    d = approx.posterior_.diagnostics
    assert d["approximate"] is True and d["method"] == "advi"
    nuts = fitted.posterior_.draws["log_c"].mean(("chain", "draw"))
    vi = approx.posterior_.draws["log_c"].mean(("chain", "draw"))
    assert float(abs(nuts - vi).max()) < 0.3  # 3000 ADVI steps: near, not equal


def test_bad_settings_are_input_errors(problem):
    obs, _, _ = problem
    with pytest.raises(BimixInputError, match="unknown method"):
        BayesianBiMix(method="magic").fit(obs)
    with pytest.raises(BimixInputError, match="unknown law"):
        build_model(obs, ModelSpec(law="nope"))
    with pytest.raises(BimixInputError, match="unknown noise"):
        BayesianBiMix(noise="cauchy").fit(obs)
    with pytest.raises(BimixInputError, match="tune must be a positive integer"):
        BayesianBiMix(tune=0).fit(obs)
    with pytest.raises(BimixInputError, match="draws must be a positive integer"):
        BayesianBiMix(draws=0).fit(obs)
    with pytest.raises(BimixInputError, match=r"target_accept must be in \(0, 1\), got 1.5"):
        BayesianBiMix(target_accept=1.5).fit(obs)
    with pytest.raises(BimixInputError, match="retry_target_accept must be in"):
        BayesianBiMix(retry_target_accept=0.0).fit(obs)


@pytest.mark.slow
def test_cli_fit_bayes_prints_diagnostics(problem, tmp_path):
    obs, _, _ = problem
    csv = tmp_path / "obs.csv"
    obs.to_csv(csv)
    out = tmp_path / "post.nc"
    proc = subprocess.run(
        [sys.executable, "-m", "bimix_bayes.cli", "fit", str(csv), "--out", str(out),
         "--law", "bimix", "--sampler", "pymc", "--draws", "20", "--tune", "20", "--chains", "2",
         "--no-progress"],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "method pymc: NOT trustworthy" in proc.stderr  # 20 draws cannot pass the checks
    assert "--draws" in proc.stderr
    post = Posterior.load(out)
    assert post.method == "pymc" and post.n_samples == 40


@pytest.mark.slow
def test_laplace_is_close_to_nuts(problem, fitted):
    obs, _, _ = problem
    lap = BayesianBiMix(law="bimix", method="laplace", draws=1000, seed=0).fit(obs)
    d = lap.posterior_.diagnostics
    assert d["approximate"] is True and d["hessian_positive_definite"] is True
    for name in ("log_c", "alpha", "beta"):
        nuts = fitted.posterior_.draws[name]
        gap = abs(lap.posterior_.draws[name].mean(("chain", "draw")) - nuts.mean(("chain", "draw")))
        assert float((gap / nuts.std(("chain", "draw"))).max()) < 1.0, name


class _PowerLaw(laws.Law):
    """A law registered only here: ``log L = a - alpha log(r + eps) - beta log(s / s_ref)``."""

    name = "test-power"
    summary = "pure power law in share and steps (tests only)"
    parameters = {"a": ("domain",), "alpha": ("domain",), "beta": ("domain",),
                  "eps": ("domain",)}

    def build(self, design, priors):
        import pymc as pm

        return {"a": pm.Normal("a", 1.0, 1.0, dims="domain"),
                "alpha": pm.LogNormal("alpha", np.log(0.08), 0.75, dims="domain"),
                "beta": pm.LogNormal("beta", np.log(0.1), 0.75, dims="domain"),
                "eps": pm.LogNormal("eps", np.log(1e-3), 1.0, dims="domain")}

    def effective_proportion(self, params, own, mixture, xp=np):
        return own + params["eps"]

    def log_loss_at(self, params, r_eff, steps, s_ref, xp=np):
        return params["a"] - params["alpha"] * xp.log(r_eff) - params["beta"] * xp.log(steps / s_ref)

    def d_log_loss(self, params, r_eff, step, s_ref):
        return -params["alpha"] / r_eff, params["alpha"] / r_eff**2


@pytest.fixture
def power_law(monkeypatch):
    law = _PowerLaw()
    monkeypatch.setitem(laws.base._REGISTRY, law.name, law)
    return law


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bimix_bayes.diagnostics.UntrustworthyFitWarning")
def test_a_law_registered_in_one_module_fits_predicts_optimizes_and_suggests(problem, power_law,
                                                                             tmp_path):
    """Adding a law is one class and one registration: everything downstream asks the law."""
    from bimix_bayes.optimizer import optimize
    from bimix_bayes.planner import suggest
    from bimix_bayes.surface import LossSurface

    obs, _, _ = problem
    est = BayesianBiMix(law=power_law.name, draws=200, tune=300, chains=2, seed=0).fit(obs)
    est.posterior_.save(tmp_path / "power.nc")
    post = Posterior.load(tmp_path / "power.nc")
    assert set(post.draws.data_vars) >= {"a", "alpha", "beta", "eps", "sigma", "sigma_run"}
    mix = obs.mixtures().iloc[:2]
    pred = post.predict(mix, [400, 1600], band="new-run")
    assert bool((pred["mean"].sel(step=1600) < pred["mean"].sel(step=400)).all())
    # The surface's gradient comes from the law's derivative: check it by finite differences.
    surface = LossSurface(post, 1600)
    x = np.array([0.3, 0.3, 0.4])
    _, grad = surface.average_grad(x)
    h = 1e-6
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        fd = (surface.average(x + step) - surface.average(x - step)) / (2 * h)
        np.testing.assert_allclose(grad[:, j], fd, rtol=1e-5, atol=1e-9)
    plan = optimize(post, 1600)
    assert plan.summary()["gain_mean"] >= -1e-9
    for rule in ("thompson", "info"):
        assert len(suggest(post, 2, 1600, rule=rule, max_draws=100, pool_size=16)) == 2
