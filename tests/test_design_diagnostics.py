"""Design diagnostics: which coefficients the runs did not inform, and designs too near uniform.

Two small fits of the tiny design (tests/tiny_design.py): its seeded Dirichlet(2) mixtures, whose
shares never come near zero, and a near-uniform variant whose shares all lie within 0.47-0.53.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import tiny_design

from bimix_bayes import diagnostics as diag
from bimix_bayes.mixtures import MIN_SHARE_RATIO, narrow_shares, share_spread
from bimix_bayes.model import BayesianBiMix, parameter_prior
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations

SETTINGS = {"law": "bimix", "draws": 300, "tune": 300, "chains": 2, "seed": 2}


def _narrow_observations():
    """Six runs whose web share lies within 0.47-0.53: too close to uniform for alpha."""
    web = np.linspace(0.47, 0.53, 6)
    mix = pd.DataFrame({"web": web, "code": 1 - web}, index=[f"n{i}" for i in range(6)])
    return simulate_observations(tiny_design.COEF, mix, tiny_design.STEPS, s_ref=tiny_design.S_REF,
                                 noise_sd=0.01, run_sd=0.01, seed=3)


def _fit(obs) -> Posterior:
    with warnings.catch_warnings():  # few draws: the verdict is not what these tests check
        warnings.simplefilter("ignore", diag.UntrustworthyFitWarning)
        return BayesianBiMix(**SETTINGS).fit(obs).posterior_


@pytest.fixture(scope="module")
def spread() -> Posterior:
    return _fit(tiny_design.observations(6))


@pytest.fixture(scope="module")
def narrow_obs():
    return _narrow_observations()


@pytest.mark.slow
def test_contraction_is_near_one_where_the_runs_inform_and_low_where_they_cannot(spread):
    table = diag.contraction(spread)
    assert set(table["parameter"]) == set(tiny_design.COEF.columns)
    assert table.loc["beta[web]", "scale"] == "log" and table.loc["u[web]", "scale"] == "linear"
    # Four checkpoints over 30x in steps pin the step exponent down ...
    assert table.loc["beta[web]", "contraction"] > 0.9
    assert table.loc["beta[web]", "informed"]
    # ... while no run trained on less than 0.1 of either domain: eps (the loss at shares near
    # zero) is still the prior.
    assert spread.observations.mixtures().min().min() > 0.1
    assert (table.loc[["eps[web]", "eps[code]"], "contraction"] < 0.3).all()
    assert not table.loc["eps[web]", "informed"]
    advice = diag.design_advice(spread, table)
    assert any(line.startswith("eps[") and "train one with at most 0.01 of each" in line
               for line in advice), advice


@pytest.mark.slow
def test_a_stored_prior_gives_the_same_contraction_and_old_files_still_load(spread, tmp_path):
    prior = parameter_prior(spread.observations, spread.spec, draws=diag.PRIOR_DRAWS, seed=0)
    assert prior["alpha"].dims == ("chain", "draw", "domain")
    stored = spread.with_prior(prior)
    assert spread.prior is None  # with_prior leaves the original alone
    stored.save(tmp_path / "with.nc")
    spread.save(tmp_path / "without.nc")  # a format-2 file as older versions wrote it
    loaded = Posterior.load(tmp_path / "with.nc")
    assert loaded.prior is not None and Posterior.load(tmp_path / "without.nc").prior is None
    a = diag.contraction(loaded)["contraction"]
    b = diag.contraction(Posterior.load(tmp_path / "without.nc"))["contraction"]
    pd.testing.assert_series_equal(a, b)  # same seed, same design: the same prior draws


def test_contraction_is_none_for_a_point_fit():
    from bimix_bayes.leastsq import LeastSquaresFit

    point = LeastSquaresFit().fit(tiny_design.observations(6)).to_posterior()
    assert diag.contraction(point) is None and diag.design_advice(point) == []


def test_unknown_parameters_get_the_generic_advice_and_steps_their_own():
    """The advice table degrades to a generic line for a law's parameter it does not know."""
    table = pd.DataFrame({"parameter": ["k", "beta"], "domain": ["web", "web"],
                          "contraction": [0.1, 0.2], "informed": [False, False]},
                         index=pd.Index(["k[web]", "beta[web]"], name="coefficient"))

    class Fit:  # what design_advice reads of a posterior, given the contraction table
        observations = tiny_design.observations(3)
        diagnostics = {"trustworthy": False}

    lines = diag.design_advice(Fit(), table, suggest="bimix suggest F.nc --rule info")
    assert lines[0].startswith("beta[web] 0.20 is barely informed") and "steps now 100-3000" in lines[0]
    assert lines[1].startswith("k[web] 0.10 is barely informed") and "`bimix suggest F.nc" in lines[1]
    assert lines[2].startswith("the sampler's trouble above may come from these barely informed")


def test_near_uniform_designs_are_named_and_spread_ones_are_not():
    uniform = pd.DataFrame({"a": [0.2, 0.3, 0.25, 0.25], "b": [0.3, 0.2, 0.25, 0.3],
                            "c": [0.5, 0.5, 0.5, 0.45]})
    text = narrow_shares(uniform, what="this design")
    assert text.startswith("this design is too close to uniform to identify the law")
    assert "a (0.2-0.3, 1.5x)" in text and f"less than {MIN_SHARE_RATIO:g}x" in text
    spread = pd.DataFrame(np.random.default_rng(0).dirichlet(np.ones(3), size=8),
                          columns=["a", "b", "c"])
    assert (share_spread(spread)["ratio"] >= MIN_SHARE_RATIO).all()
    assert narrow_shares(spread) is None
    # A zero share counts as the floor, not as an infinitely wide range below one domain.
    assert share_spread(pd.DataFrame({"a": [0.0, 0.002], "b": [1.0, 0.998]}))["ratio"]["a"] == 2.0


@pytest.mark.slow
def test_fit_warns_before_sampling_and_prints_what_to_train(narrow_obs, tmp_path, cli):
    obs_path = tmp_path / "obs.csv"
    narrow_obs.to_csv(obs_path)
    done = cli("fit", obs_path, "--draws", str(SETTINGS["draws"]), "--tune",
               str(SETTINGS["tune"]), "--chains", str(SETTINGS["chains"]), "--seed",
               str(SETTINGS["seed"]), "--no-progress", "--out", tmp_path / "fit.nc")
    assert done.code == 0, done.err
    warning = next(line for line in done.err.splitlines() if line.startswith("warning: "))
    assert "is too close to uniform to identify the law" in warning and "web (0.47-0.53" in warning
    assert done.err.index(warning) < done.err.index("method nuts")  # before sampling
    design = [line for line in done.err.splitlines() if line.startswith("design: ")]
    alpha = next(line for line in design if "alpha[" in line)
    assert "barely informed by these runs" in alpha
    assert "vary the share of web (now 0.47-0.53; e.g." in alpha
    assert f"`bimix suggest {tmp_path / 'fit.nc'} --rule info --n 4 --step 3000" in alpha
    post = Posterior.load(tmp_path / "fit.nc")
    assert post.prior is not None and set(post.prior.data_vars) == set(tiny_design.COEF.columns)
    # The report says the same, from the stored prior.
    report = cli("report", tmp_path / "fit.nc", "--no-prior", "--out", tmp_path / "r.html")
    assert report.code == 0, report.err
    page = (tmp_path / "r.html").read_text()
    assert 'id="contraction"' in page and "vary the share of web" in page
