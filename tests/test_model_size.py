"""The model-size axis: observations at several sizes, the law's size slopes, predictions and
decisions at a size that was not trained (issue 12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bimix_bayes import scale
from bimix_bayes.errors import BimixInputError
from bimix_bayes.leastsq import LeastSquaresFit
from bimix_bayes.model import BayesianBiMix, Design
from bimix_bayes.observations import Observations
from bimix_bayes.optimizer import optimize
from bimix_bayes.posterior import Posterior, predictions_frame
from bimix_bayes.simulate import simulate_observations

SIZES = (1e6, 4e6, 1.6e7)
STEPS = (200, 400, 800, 1600)
S_REF = 600.0
DOMAINS = ["web", "code", "books"]
#: Per e-fold of model size: the level falls, the reducible part shrinks, alpha is shared.
SLOPES = {"log_c": np.array([-0.06, -0.09, -0.05]), "u": np.array([-0.3, -0.2, -0.25])}
BASE = pd.DataFrame({"log_c": [1.0, 0.5, 1.2], "alpha": [0.10, 0.25, 0.06],
                     "u": [-0.5, -0.2, -0.8], "beta": [0.5, 0.6, 0.4],
                     "eps": [1e-3, 1e-3, 1e-3]}, index=DOMAINS)
REF = scale.reference(SIZES[:2])


def _mixtures(n: int, seed: int) -> pd.DataFrame:
    shares = np.random.default_rng(seed).dirichlet([0.8] * len(DOMAINS), size=n)
    return pd.DataFrame(shares, columns=DOMAINS, index=[f"m{i}" for i in range(n)])


def _truth_at(size: float) -> pd.DataFrame:
    x = np.log(size / REF)
    c = BASE.copy()
    for name, slope in SLOPES.items():
        c[name] = c[name] + slope * x
    return c


def _at_size(size: float, mixtures: pd.DataFrame, noise_sd: float, seed: int) -> Observations:
    obs = simulate_observations(_truth_at(size), mixtures.rename(index=lambda r: f"{size:.0e}-{r}"),
                                STEPS, s_ref=S_REF, noise_sd=noise_sd, seed=seed)
    frame = obs.frame.assign(params=size)
    return Observations.from_frame(frame, source=f"<size {size:.0e}>")


@pytest.fixture(scope="module")
def ladder() -> dict[str, Observations]:
    mixtures = _mixtures(8, seed=3)
    train = Observations.concat([_at_size(n, mixtures, 0.01, seed=i)
                                 for i, n in enumerate(SIZES[:2])])
    return {"train": train, "target": _at_size(SIZES[2], mixtures, 0.0, seed=9),
            "mixtures": mixtures}


@pytest.fixture(scope="module")
def sized_fit(ladder: dict[str, Observations]) -> Posterior:
    est = BayesianBiMix(law="bimix", draws=200, tune=300, chains=2, seed=1)
    return est.fit(ladder["train"]).posterior_


def test_design_has_a_size_axis_only_with_several_sizes(ladder: dict[str, Observations]) -> None:
    design = Design.from_observations(ladder["train"])
    assert design.has_size_axis
    np.testing.assert_allclose(np.unique(design.size), np.log(np.array(SIZES[:2]) / REF))
    one = ladder["train"].at_sizes([SIZES[0]])
    assert one.distinct_sizes == [SIZES[0]]
    assert not Design.from_observations(one).has_size_axis


def test_the_step_exponent_has_a_size_slope_with_two_sizes_only(ladder) -> None:
    from bimix_bayes import laws

    law = laws.get("bimix")
    two = Design.from_observations(ladder["train"])
    three = Design.from_observations(Observations.concat(
        [ladder["train"], _at_size(SIZES[2], ladder["mixtures"], 0.01, seed=5)]))
    assert law.size_coefficients(two)["beta"] == "log"
    assert "beta" not in law.size_coefficients(three)
    assert set(law.size_coefficients(three)) == {"log_c", "u", "alpha"}


def test_size_slopes_recover_and_extrapolate(sized_fit: Posterior,
                                            ladder: dict[str, Observations]) -> None:
    post = sized_fit
    assert post.has_size_axis and post.sizes == list(SIZES[:2])
    slope = post.draws["log_c_size"].mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(slope, SLOPES["log_c"], atol=0.04)
    # Predict the untrained 4x larger model; the truth is noise-free.
    target = ladder["target"]
    pred = post.predict(ladder["mixtures"], list(STEPS), band="mean", params=SIZES[2])
    truth = (target.to_dataset()["loss"].sel(domain=post.domains)
             .transpose("run", "domain", "step").to_numpy())
    mre = np.mean(np.abs(pred["mean"].to_numpy() - truth) / truth)
    assert mre < 0.01
    # Forced to the largest trained size instead, the error is several times larger.
    nearest = post.predict(ladder["mixtures"], list(STEPS), band="mean")
    assert nearest.attrs["params"] == SIZES[1]
    assert np.mean(np.abs(nearest["mean"].to_numpy() - truth) / truth) > 3 * mre
    assert set(predictions_frame(pred)["params"]) == {SIZES[2]}


def test_sized_posterior_round_trips(sized_fit: Posterior, tmp_path) -> None:
    path = tmp_path / "fit.nc"
    sized_fit.save(path)
    back = Posterior.load(path)
    assert back.has_size_axis and back.sizes == sized_fit.sizes
    mix = pd.DataFrame([[0.5, 0.3, 0.2]], columns=DOMAINS, index=["a"])
    a = sized_fit.predict(mix, [800], band="mean", params=3e7)["mean"]
    b = back.predict(mix, [800], band="mean", params=3e7)["mean"]
    np.testing.assert_allclose(a, b)


def test_decisions_take_the_target_size(sized_fit: Posterior) -> None:
    small = optimize(sized_fit, 1600, params=SIZES[0], max_draws=100, optima_draws=50)
    large = optimize(sized_fit, 1600, params=1e8, max_draws=100, optima_draws=50)
    assert small.summary()["params"] == SIZES[0] and large.summary()["params"] == 1e8
    assert large.summary()["expected_loss"] < small.summary()["expected_loss"]


def test_two_sizes_offset_each_size_with_a_fixed_scale(sized_fit: Posterior) -> None:
    post = sized_fit
    np.testing.assert_allclose(post.draws["size_sigma"], scale.Priors().two_size_offset)
    assert post.draws["size_z"].dims[-2:] == ("size", "domain")
    # A size that was not fitted draws its own offset, so its band is wider than a fitted
    # size's at (almost) the same log N, and at least as wide as the offset's alone (log-loss
    # half-widths of the central 90 % band).
    mix = pd.DataFrame([[0.5, 0.3, 0.2]], columns=DOMAINS, index=["a"])

    def half_width(params: float) -> np.ndarray:
        pred = post.predict(mix, [800], band="mean", params=params, prob=0.9)
        return np.log(pred["upper"] / pred["lower"]).to_numpy().ravel() / 2

    fitted, unseen = half_width(SIZES[1]), half_width(SIZES[1] * 1.001)
    assert (unseen > 1.1 * fitted).all()
    assert (unseen > 0.9 * 1.645 * scale.Priors().two_size_offset).all()


def test_one_size_fits_refuse_other_sizes(ladder: dict[str, Observations]) -> None:
    one = ladder["train"].at_sizes([SIZES[0]])
    post = LeastSquaresFit().fit(one).to_posterior()
    assert post.target_params(None) == SIZES[0]
    with pytest.raises(BimixInputError, match="one model size"):
        post.predict(ladder["mixtures"], [800], params=1e9)
    with pytest.raises(BimixInputError, match="one model size"):
        LeastSquaresFit().fit(ladder["train"])


def test_cli_predicts_at_a_size(cli, sized_fit: Posterior, ladder, tmp_path) -> None:
    fit = tmp_path / "fit.nc"
    sized_fit.save(fit)
    mix = tmp_path / "mix.csv"
    ladder["mixtures"].iloc[:2].rename_axis("mixture").to_csv(mix)
    out = tmp_path / "pred.csv"
    res = cli("predict", fit, "--mixtures", mix, "--steps", "800", "--out", out)
    assert res.code == 0 and "largest fitted size" in res.err
    assert set(pd.read_csv(out, comment="#")["params"]) == {SIZES[1]}
    out2 = tmp_path / "pred2.csv"
    res = cli("predict", fit, "--mixtures", mix, "--steps", "800", "--params", "1e9",
              "--out", out2)
    assert res.code == 0 and "extrapolates in model size" in res.err
    assert set(pd.read_csv(out2, comment="#")["params"]) == {1e9}
    bad = cli("predict", fit, "--mixtures", mix, "--steps", "800", "--params", "-5",
              "--out", tmp_path / "pred3.csv")
    bad.assert_user_error("params must be a positive number")
    assert not (tmp_path / "pred3.csv").exists()


@pytest.mark.parametrize(("cells", "line", "message"), [
    (["1e6", "1e6", "", ""], 4, "run 'b' has no params"),
    (["1e6", "abc", "1e6", "1e6"], 3, "params is not a number: 'abc'"),
    (["1e6", "1e6", "-1", "-1"], 4, "params must be a positive number"),
    (["1e6", "2e6", "1e6", "1e6"], 3, "run 'a' has params 2e+06 here but 1e+06"),
])
def test_params_column_is_validated(cli, tmp_path, cells, line, message) -> None:
    path = tmp_path / "obs.csv"
    frame = pd.DataFrame({"run": ["a", "a", "b", "b"], "domain": ["web"] * 4,
                          "proportion": [1.0] * 4, "step": [10, 20, 10, 20],
                          "loss": [3.0, 2.9, 3.1, 3.0], "params": cells})
    frame.to_csv(path, index=False)
    res = cli("validate", path)
    res.assert_user_error(f"{path}: line {line}: ", message)


def test_scores_and_bands_judge_each_run_at_its_size(sized_fit: Posterior,
                                                     ladder: dict[str, Observations]) -> None:
    from bimix_bayes.calibration import interval_coverage
    from bimix_bayes.metrics import score

    # In-sample: every run at its own size fits closely; at the largest size only, it would not.
    assert score(sized_fit, ladder["train"]).loc["all", "mre"] < 0.01
    assert interval_coverage(sized_fit, ladder["train"]).loc["all", "coverage"] > 0.8
    unsized = Observations.from_frame(ladder["train"].frame.drop(columns="params"))
    with pytest.raises(BimixInputError, match="no params column"):
        score(sized_fit, unsized)


@pytest.mark.slow
def test_law_selection_refits_across_sizes(ladder: dict[str, Observations]) -> None:
    from bimix_bayes.comparison import select_law
    from bimix_bayes.spec import SamplerConfig

    config = SamplerConfig(draws=100, tune=150, chains=1, retry_target_accept=None)
    three = Observations.concat([ladder["train"], _at_size(SIZES[2], ladder["mixtures"], 0.01,
                                                           seed=5)])
    sel = select_law(three, laws=("bimix", "transfer"), folds=2, config=config)
    # Each fold's runs are predicted at their own sizes: errors stay near the noise (1 %); with
    # three sizes one more refit predicts the largest size from the two smaller ones.
    assert (sel.table["mre"] < 0.03).all()
    assert (sel.table["mre_largest_size"] < 0.03).all()
    assert "MRE % largest size" in sel.summary()
