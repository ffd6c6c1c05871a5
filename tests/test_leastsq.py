"""The paper's least-squares fit: recovery of known coefficients, posterior export, metrics, splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws import bimix as laws
from bimix_bayes.leastsq import EPS_FLOOR, LeastSquaresFit
from bimix_bayes.metrics import (
    heldout_split,
    mean_relative_error,
    mixture_folds,
    mixture_groups,
    r2_log,
    score,
)
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations

TRUTH = pd.DataFrame(
    {"log_c": np.log([2.9, 1.1, 2.7, 1.4]), "alpha": [0.04, 0.12, 0.06, 0.10],
     "u": [-1.2, -0.8, -1.4, -1.0], "beta": [0.55, 0.7, 0.5, 0.6],
     "eps": [0.01, 0.005, 0.01, 0.005]},
    index=pd.Index(["web", "code", "books", "math"], name="domain"),
)
STEPS = [500, 1000, 2000, 3000, 5000, 8000, 12000, 20000]
S_REF = 4000.0
NOISE = 0.01  # residual and per-run sd of log-loss


def _mixtures(seed: int, n: int = 16) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.ones(4), n)
    mix[0, 1] = mix[1, 1] = mix[2, 3] = 0.0  # code and math are left out of some runs
    mix /= mix.sum(axis=1, keepdims=True)
    return pd.DataFrame(mix, columns=TRUTH.index, index=[f"r{i:02d}" for i in range(n)])


@pytest.fixture(scope="module")
def simulated():
    return simulate_observations(TRUTH, _mixtures(0), STEPS, s_ref=S_REF, noise_sd=NOISE,
                                 run_sd=NOISE, seed=100)


@pytest.fixture(scope="module")
def fitted(simulated):
    return LeastSquaresFit(s_ref=S_REF).fit(simulated)


def test_recovers_known_coefficients(fitted):
    """Tolerances: 5 x the largest error over 5 seeds at 1 % noise was log_c .015, alpha .011,
    u .08, beta .02; these are the stated recovery bounds."""
    c = fitted.coefficients_
    err = (c[["log_c", "alpha", "u", "beta"]] - TRUTH[["log_c", "alpha", "u", "beta"]]).abs()
    assert (err["log_c"] < 0.05).all()
    assert (err["alpha"] < 0.025).all()
    assert (err["u"] < 0.2).all()
    assert (err["beta"] < 0.06).all()
    # eps is fitted where some run left the domain out, else the fixed floor.
    assert c.loc[["code", "math"], "eps_fitted"].all() and not c.loc[["web", "books"],
                                                                       "eps_fitted"].any()
    np.testing.assert_allclose(c.loc[["code", "math"], "eps"], TRUTH.loc[["code", "math"], "eps"],
                               rtol=0.6)
    assert (c.loc[["web", "books"], "eps"] == EPS_FLOOR).all()
    assert (c["n_proportions"] > 10).all()
    # Residual sd of log-loss: residual and run noise together, sqrt(2) * 1 %.
    assert np.all((c["sigma"] > 0.01) & (c["sigma"] < 0.02))


def test_paper_coefficients_describe_the_same_curve(fitted):
    paper = fitted.paper_coefficients()
    assert (paper["C"] == 1).all()
    c = fitted.coefficients_
    r, s = 0.3, np.array([700.0, 9000.0])
    for d in c.index:
        ours = laws.loss(r + c.loc[d, "eps"], s, log_c=c.loc[d, "log_c"], alpha=c.loc[d, "alpha"],
                         u=c.loc[d, "u"], beta=c.loc[d, "beta"], s_ref=fitted.s_ref_)
        p = paper.loc[d]
        theirs = p["A"] / (r + c.loc[d, "eps"]) ** p["alpha"] * (p["B"] / s ** p["beta"] + p["C"])
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_to_posterior_round_trips_and_predicts(fitted, simulated, tmp_path):
    post = fitted.to_posterior()
    assert post.method == "leastsq" and post.law == "bimix"
    assert dict(post.draws.sizes) == {"chain": 1, "draw": 1, "domain": 4}
    path = tmp_path / "fit.nc"
    post.save(path)
    back = Posterior.load(path)
    assert back.s_ref == pytest.approx(S_REF)
    np.testing.assert_allclose(back.draws["alpha"].values, post.draws["alpha"].values)
    mix = _mixtures(0).iloc[:2]
    pred = back.predict(mix, [1000, 20000], band="mean")
    want = laws.loss(mix["code"].to_numpy()[:, None] + fitted.coefficients_.loc["code", "eps"],
                     np.array([1000.0, 20000.0]),
                     **fitted.coefficients_.loc["code", ["log_c", "alpha", "u", "beta"]],
                     s_ref=S_REF)
    np.testing.assert_allclose(pred["mean"].sel(domain="code").values, want, rtol=1e-10)


def test_default_s_ref_is_geometric_mean_of_steps(simulated):
    fit = LeastSquaresFit(eps=1e-3).fit(simulated.subset(["r03", "r04", "r05", "r06", "r07"]))
    assert fit.s_ref_ == pytest.approx(np.exp(np.mean(np.log(STEPS))))
    assert not fit.coefficients_["eps_fitted"].any()


def test_bad_settings_and_too_little_data(simulated):
    with pytest.raises(BimixInputError, match="eps must be"):
        LeastSquaresFit(eps="sometimes").fit(simulated)
    with pytest.raises(BimixInputError, match="proportion 0 and eps=0"):
        LeastSquaresFit(eps=0.0).fit(simulated)
    frame = simulated.frame
    tiny = frame[frame["run"].isin(["r03"]) & frame["step"].isin([500, 1000])]
    from bimix_bayes.observations import Observations

    with pytest.raises(BimixInputError, match="needs more than 4"):
        LeastSquaresFit().fit(Observations.from_frame(tiny))


def test_metrics_by_hand():
    assert mean_relative_error([2.0, 4.0], [2.2, 3.6]) == pytest.approx(0.1)
    y, p = np.array([1.0, np.e, np.e ** 2]), np.array([1.0, np.e, np.e ** 1.5])
    assert r2_log(y, p) == pytest.approx(1 - 0.25 / 2)
    assert np.isnan(r2_log([2.0], [2.1]))


def test_heldout_split_and_score(simulated):
    split = heldout_split(simulated, heldout=["r14", "r15"], max_fit_step=8000)
    assert set(split.heldout_runs.runs) == {"r14", "r15"}
    assert max(split.fit.steps) == 8000 and set(split.fit.runs).isdisjoint({"r14", "r15"})
    assert split.later_steps.steps == [12000, 20000]
    assert len(split.fit) + len(split.heldout_runs) + len(split.later_steps) == len(simulated)
    post = LeastSquaresFit(s_ref=S_REF).fit(split.fit).to_posterior()
    for part in (split.heldout_runs, split.later_steps):
        table = score(post, part)
        assert list(table.index) == [*TRUTH.index, "all"]
        # 1 % noise: predictions within a few percent, log-loss R^2 close to 1.
        assert table.loc["all", "mre"] < 0.03
        assert table.loc["all", "r2_log"] > 0.9
    assert heldout_split(simulated, ["r00"]).later_steps is None
    with pytest.raises(BimixInputError, match="unknown held-out runs"):
        heldout_split(simulated, ["nope"])
    with pytest.raises(BimixInputError, match="at least one fitted"):
        heldout_split(simulated, simulated.runs)


def test_mixture_folds_keep_repeated_mixtures_together(simulated):
    # r00's mixture run twice more under other names (seeds): one group, always one fold.
    f = simulated.frame
    copies = [f[f["run"] == "r00"].assign(run=name) for name in ("seed1", "seed2")]
    obs = type(simulated).from_frame(pd.concat([f, *copies], ignore_index=True))
    groups = mixture_groups(obs)
    assert groups[obs.runs.index("seed1")] == groups[obs.runs.index("r00")] == groups[-1]
    assert len(set(groups.tolist())) == 16
    fold = mixture_folds(obs, 5, seed=3)
    assert fold[obs.runs.index("seed2")] == fold[obs.runs.index("r00")]
    sizes = np.bincount(fold[[obs.runs.index(f"r{i:02d}") for i in range(16)]])
    assert len(sizes) == 5 and sizes.max() - sizes.min() <= 1  # mixtures dealt evenly
    assert (mixture_folds(obs, 5, seed=3) == fold).all()  # seeded
    assert not (mixture_folds(obs, 5, seed=4) == fold).all()
    assert sorted(set(mixture_folds(obs, 99).tolist())) == list(range(16))  # K <= mixtures
    with pytest.raises(BimixInputError, match="folds must be at least 1"):
        mixture_folds(obs, 0)
