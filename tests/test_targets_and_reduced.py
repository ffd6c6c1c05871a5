"""Designs the law family must serve beyond "every evaluated domain is trained on, at many steps".

* **Target domains**: evaluated, never trained on (a downstream task, another validation set). Their
  own share is 0; a law with cross-domain terms predicts them from the training domains' shares.
* **One evaluation step** (RegMix and Olmix swarms): no step term and no run offset can be told
  apart from the rest, so the model samples neither and refuses steps it has not seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bimix_bayes import laws
from bimix_bayes.comparison import select_law
from bimix_bayes.constraints import Constraints
from bimix_bayes.diagnostics import UntrustworthyFitWarning
from bimix_bayes.errors import BimixInputError
from bimix_bayes.model import BayesianBiMix, Design
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.surface import LossSurface

SOURCES = ["web", "code"]
TARGET = "math-qa"
STEPS = [300, 1000, 3000]


def _simulate(steps: list[int], n_runs: int = 10, seed: int = 0) -> Observations:
    """Runs on web/code evaluated on both and on a target that only code helps (transfer law)."""
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet([1.5, 1.5], size=n_runs)
    s_ref = float(np.exp(np.mean(np.log(steps))))
    params = {"log_c": np.array([1.0, 0.6, 1.3]), "alpha": np.array([0.06, 0.1, 0.15]),
              "u": np.array([-0.8, -1.0, -0.6]), "beta": np.array([0.5, 0.4, 0.5]),
              "eps": np.array([1e-3, 1e-3, 0.02]),
              "transfer": np.array([[0.0, 0.05], [0.02, 0.0], [0.0, 0.8]])}
    own = np.column_stack([mix, np.zeros(n_runs)])  # the target's own share is 0
    log_l = laws.get("transfer").log_loss(params, own[:, None, :], mix[:, None, :],
                                          np.array(steps, float)[None, :, None], s_ref)
    log_l = log_l + rng.normal(0, 0.005, log_l.shape) + rng.normal(0, 0.005, (n_runs, 1, 3))
    rows = [(f"r{i}", d, ([*mix[i], 0.0])[j], s, float(np.exp(log_l[i, t, j])))
            for i in range(n_runs) for j, d in enumerate([*SOURCES, TARGET])
            for t, s in enumerate(steps)]
    return Observations.from_frame(pd.DataFrame(rows, columns=["run", "domain", "proportion",
                                                               "step", "loss"]))


@pytest.fixture(scope="module")
def target_fit() -> Posterior:
    with pytest.warns(UntrustworthyFitWarning):  # few draws: the checks may well fail
        est = BayesianBiMix(law="transfer", draws=150, tune=300, chains=2, seed=0)
        return est.fit(_simulate(STEPS)).posterior_


def test_a_domain_no_run_trained_on_is_a_target_not_a_source():
    obs = _simulate(STEPS, n_runs=4)
    assert obs.sources == SOURCES and obs.targets == [TARGET]
    design = Design.from_observations(obs)
    assert design.coords["source"] == SOURCES
    assert design.coords["domain"] == [*SOURCES, TARGET]
    assert np.all(design.own[:, 2] == 0)


def test_the_target_is_predicted_from_the_training_shares(target_fit, tmp_path):
    assert target_fit.sources == SOURCES and target_fit.domains == [*SOURCES, TARGET]
    mixtures = pd.DataFrame({"web": [0.9, 0.1], "code": [0.1, 0.9]},
                            index=pd.Index(["webby", "codey"], name="mixture"))
    pred = target_fit.predict(mixtures, steps=[3000])["mean"].sel(domain=TARGET, step=3000)
    assert float(pred.sel(mixture="codey")) < float(pred.sel(mixture="webby"))
    # The file keeps the target's losses (proportion 0), and a mixture cannot give it a share.
    target_fit.save(tmp_path / "fit.nc")
    loaded = Posterior.load(tmp_path / "fit.nc")
    assert loaded.observations.targets == [TARGET]
    with pytest.raises(BimixInputError, match="unknown domain column"):
        loaded.predict(mixtures.assign(**{TARGET: 0.0}), steps=[3000])


def test_optimizing_for_the_target_alone_buys_the_domain_that_transfers_to_it(target_fit):
    surface = LossSurface(target_fit, step=3000, weights={TARGET: 1.0}, max_draws=100)
    optima, _ = surface.draw_optima(Constraints.build(SOURCES))
    assert np.median(optima[:, SOURCES.index("code")]) > 0.9


def test_a_law_blind_to_other_domains_is_refused_for_targets_and_auto_leaves_it_out():
    obs = _simulate(STEPS, n_runs=4)
    with pytest.raises(BimixInputError, match="no run trained on math-qa: use a law with cross"):
        BayesianBiMix(law="bimix").fit(obs)
    assert select_law(obs, laws=["bimix", "transfer"]).chosen == "transfer"


@pytest.fixture(scope="module")
def one_step_fit() -> Posterior:
    obs = _simulate([2000], n_runs=16).subset([f"r{i}" for i in range(16)])
    frame = obs.frame[obs.frame["domain"] != TARGET]
    return BayesianBiMix(law="bimix", draws=300, tune=300, chains=2, seed=1).fit(
        Observations.from_frame(frame)).posterior_


def test_one_step_samples_neither_a_step_term_nor_a_run_offset(one_step_fit):
    draws = one_step_fit.draws
    assert all(float(draws[v].std()) == 0 for v in ("u", "beta", "sigma_run"))
    assert all(float(draws[v].std()) > 0 for v in ("alpha", "sigma", "level"))
    assert one_step_fit.diagnostics["n_divergent"] == 0
    assert one_step_fit.diagnostics["max_rhat"] < 1.05  # constants do not poison the checks


def test_one_step_predicts_its_step_and_refuses_others(one_step_fit):
    mixtures = pd.DataFrame({"web": [0.5], "code": [0.5]}, index=pd.Index(["m"], name="mixture"))
    pred = one_step_fit.predict(mixtures, steps=[2000])
    assert np.all(pred["lower"] < pred["upper"])
    with pytest.raises(BimixInputError, match=r"one step \(2000\)"):
        one_step_fit.predict(mixtures, steps=[4000])
    with pytest.raises(BimixInputError, match=r"one step \(2000\)"):
        LossSurface(one_step_fit, step=4000)


def test_the_cli_names_targets_and_refuses_a_step_a_one_step_fit_never_saw(
        cli, one_step_fit, tmp_path):
    obs_path = tmp_path / "obs.csv"
    _simulate(STEPS, n_runs=4).to_csv(obs_path)
    result = cli("validate", obs_path)
    assert result.code == 0 and "1 of them targets no run trained on" in result.out
    fit, mix = tmp_path / "fit.nc", tmp_path / "mix.csv"
    one_step_fit.save(fit)
    mix.write_text("mixture,web,code\nm,0.5,0.5\n")
    out = tmp_path / "pred.csv"
    cli("predict", fit, "--mixtures", mix, "--steps", "4000", "--out", out).assert_user_error(
        "one step (2000)")
    assert not out.exists()
