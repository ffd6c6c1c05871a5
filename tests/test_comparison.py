"""Which law the data prefer: PSIS-LOO on the posterior files and held-out mixtures (law='auto')."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from tiny_design import COEF, S_REF, STEPS
from tiny_design import mixtures as _mixtures
from tiny_design import observations as _observations

from bimix_bayes.comparison import LawSelection, compare_laws, select_law
from bimix_bayes.errors import BimixInputError
from bimix_bayes.model import BayesianBiMix
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations


@pytest.mark.slow
def test_compare_laws_reports_loo_and_heldout():
    obs = _observations()
    test = simulate_observations(COEF, _mixtures(2, seed=4, prefix="t"), STEPS, s_ref=S_REF,
                                 noise_sd=0.01, run_sd=0.01, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare_laws(obs, heldout=test, draws=150, tune=250, chains=2, seed=1)
    assert set(cmp.table.index) == {"bimix", "transfer"}
    assert cmp.best in ("bimix", "transfer")
    # One LOO unit per observed (run, domain) curve.
    for elpd in cmp.loo.values():
        assert np.asarray(elpd.pareto_k).size == 6 * 2
        assert np.isfinite(elpd.elpd)
    assert set(cmp.heldout.index) == {"bimix", "transfer"}
    assert (cmp.heldout["mre"] < 0.1).all()
    assert cmp.heldout["coverage"].between(0, 1).all()
    assert "PSIS-LOO" in cmp.summary()
    with pytest.raises(BimixInputError, match="two laws"):
        compare_laws(obs, laws=["bimix"])


@pytest.mark.slow
def test_auto_scores_every_law_on_held_out_mixtures_and_keeps_the_choice(tmp_path):
    obs = _observations(n_runs=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = BayesianBiMix(law="auto", draws=200, tune=300, chains=2, seed=2).fit(obs)
    sel = est.selection_
    assert list(sel.table.index) == ["bimix", "transfer"] and sel.folds == 5
    assert (sel.table["n_curves"] == 8 * 2).all()  # every curve held out exactly once
    assert sel.table["coverage"].between(0, 1).all() and (sel.table["mre"] < 0.05).all()
    # The rule: the best elpd, unless the simpler law is within one SE of it.
    best = sel.table["elpd"].idxmax()
    simpler_close = -sel.table.loc["bimix", "elpd_diff"] <= sel.table.loc["bimix", "diff_se"]
    assert sel.chosen == ("bimix" if best == "bimix" or simpler_close else "transfer")
    assert est.posterior_.law == sel.chosen
    est.posterior_.save(tmp_path / "fit.nc")
    stored = LawSelection.from_dict(Posterior.load(tmp_path / "fit.nc").law_selection)
    pd.testing.assert_frame_equal(stored.table, sel.table, check_dtype=False)
    assert f"law: {sel.chosen}" in stored.summary()


def test_too_few_mixtures_choose_the_simplest_law_without_refits():
    obs = _observations(n_runs=3)
    sel = select_law(obs)
    assert (sel.chosen, sel.folds) == ("bimix", 0) and "too few" in sel.reason
    with pytest.raises(BimixInputError, match="unknown law"):
        select_law(obs, laws=["bimix", "nope"])
    with pytest.raises(BimixInputError, match="mask is data"):
        select_law(_observations(n_runs=8), noise="student")


@pytest.mark.slow
def test_cli_compare_prints_and_writes_the_table(cli, tmp_path):
    obs = _observations(n_runs=8)
    obs.to_csv(tmp_path / "obs.csv")
    done = cli("compare", tmp_path / "obs.csv", "--folds", "4", "--out", tmp_path / "laws.csv")
    assert done.code == 0, done.err
    table = pd.read_csv(tmp_path / "laws.csv", comment="#")
    assert list(table["law"]) == ["bimix", "transfer"] and "elpd" in table
    assert "held-out mixtures (4-fold" in done.out and "law: " in done.out
    cli("compare", tmp_path / "obs.csv", "--folds", "1").assert_user_error("--folds must be")
