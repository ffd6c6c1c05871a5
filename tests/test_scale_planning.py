"""Planning across model sizes (issue 12): cost-aware suggestions of (mixture, size) pairs within a
compute budget, their CLI, and the figure of the optimum's shift with size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bimix_bayes import plots, scale
from bimix_bayes.errors import BimixInputError
from bimix_bayes.leastsq import LeastSquaresFit
from bimix_bayes.mixtures import ANNOTATIONS, read_mixtures, write_mixtures
from bimix_bayes.model import BayesianBiMix
from bimix_bayes.observations import Observations
from bimix_bayes.planner import run_cost, suggest
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations
from bimix_bayes.spec import ModelSpec

FITTED = (1e6, 4e6)
CHOICES = (1e6, 4e6, 1.6e7)
TARGET = 1.6e7
STEPS = (200, 400, 800, 1600)
STEP = 1600
TOKENS_PER_STEP = 1000.0
DOMAINS = ["web", "code", "books"]
#: Per e-fold of size: the level falls and the reducible parts shrink at different rates, so the
#: optimal mixture moves with size.
SLOPES = {"log_c": np.array([-0.06, -0.09, -0.05]), "u": np.array([-0.3, -0.2, -0.25])}
BASE = pd.DataFrame({"log_c": [1.0, 0.5, 1.2], "alpha": [0.10, 0.25, 0.06],
                     "u": [-0.5, -0.2, -0.8], "beta": [0.5, 0.6, 0.4],
                     "eps": [1e-3, 1e-3, 1e-3]}, index=DOMAINS)


def _runs(size: float, mixtures: pd.DataFrame, seed: int) -> Observations:
    """The ladder's runs at one size: the law's coefficients moved along their slopes."""
    coef = BASE.copy()
    x = np.log(size / scale.reference(FITTED))
    for name, slope in SLOPES.items():
        coef[name] = coef[name] + slope * x
    obs = simulate_observations(coef, mixtures.rename(index=lambda r: f"{size:.0e}-{r}"), STEPS,
                                s_ref=600.0, noise_sd=0.01, seed=seed)
    frame = obs.frame.assign(params=size, tokens=obs.frame["step"] * TOKENS_PER_STEP)
    return Observations.from_frame(frame, source=f"<size {size:.0e}>")


@pytest.fixture(scope="module")
def mixtures() -> pd.DataFrame:
    shares = np.random.default_rng(3).dirichlet([0.8] * len(DOMAINS), size=8)
    return pd.DataFrame(shares, columns=DOMAINS, index=[f"m{i}" for i in range(8)])


@pytest.fixture(scope="module")
def ladder(mixtures: pd.DataFrame) -> Observations:
    return Observations.concat([_runs(n, mixtures, seed=i) for i, n in enumerate(FITTED)])


@pytest.fixture(scope="module")
def post(ladder: Observations) -> Posterior:
    return BayesianBiMix(law="bimix", draws=200, tune=300, chains=2, seed=1).fit(ladder).posterior_


@pytest.fixture(scope="module")
def fit_path(post: Posterior, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("scale-planning") / "fit.nc"
    post.save(path)
    return path


def _plan(post: Posterior, mixtures: pd.DataFrame, **kw) -> pd.DataFrame:
    kw = {"params_choices": CHOICES, "params": TARGET, "candidates": mixtures, "fantasies": 16,
          "max_draws": 200, **kw}
    return suggest(post, kw.pop("n", 6), STEP, **kw)


def test_the_budget_is_respected(post: Posterior, mixtures: pd.DataFrame) -> None:
    one_target = run_cost(TARGET, STEP, TOKENS_PER_STEP)
    budget = 1.5 * one_target
    out = _plan(post, mixtures, n=8, budget=budget)
    assert 1 <= len(out) <= 8 and out["cost"].sum() <= budget
    assert list(out.columns) == [*DOMAINS, *ANNOTATIONS]
    assert set(out["params"]) <= set(CHOICES) and (out["rule"] == "info").all()
    # Tokens per step come from the fit's tokens column: cost = 6 N D.
    np.testing.assert_allclose(out["cost"], 6 * out["params"] * TOKENS_PER_STEP * STEP)
    # Nothing more fits: the cheapest run would overrun the budget, or n was reached.
    assert len(out) == 8 or out["cost"].sum() + run_cost(CHOICES[0], STEP, TOKENS_PER_STEP) > budget
    # A listed mixture may come back at two sizes, under two names.
    assert out.index.is_unique
    # Without a budget, n runs, ranked by value per unit of compute.
    free = _plan(post, mixtures, n=3)
    assert len(free) == 3 and np.isfinite(free["score"]).all()


def _known_slopes(ladder: Observations) -> Posterior:
    """Draws that disagree only about how much code data helps (alpha of code, which has no size
    slope), with every size slope known exactly: a run at any size tells the same about alpha."""
    n, rng = 200, np.random.default_rng(5)
    zeros = np.zeros((1, n, len(DOMAINS)))
    values = {k: BASE[k].to_numpy() + zeros for k in BASE.columns}
    values["alpha"][..., 1] = np.exp(rng.uniform(np.log(0.05), np.log(0.6), n))
    values.update(log_c_size=SLOPES["log_c"] + zeros, u_size=SLOPES["u"] + zeros,
                  log_alpha_size=zeros, sigma=zeros + 0.005, sigma_run=zeros)
    dims = ("chain", "draw", "domain")
    draws = xr.Dataset({k: (dims, v) for k, v in values.items()}, coords={"domain": DOMAINS})
    return Posterior.from_draws(draws, ladder, spec=ModelSpec(law="bimix"), method="synthetic",
                                s_ref=600.0)


def test_a_cheap_size_is_preferred_when_it_is_as_informative(ladder: Observations) -> None:
    known = _known_slopes(ladder)
    assert known.has_size_axis
    cand = pd.DataFrame({"web": [0.0, 0.45, 0.3, 0.6], "code": [1.0, 0.1, 0.4, 0.05],
                         "books": [0.0, 0.45, 0.3, 0.35]},
                        index=["all-code", "little-code", "mid", "scarce-code"])
    out = suggest(known, 2, STEP, params_choices=CHOICES, params=TARGET, candidates=cand,
                  fantasies=32)
    # A sixteenth of the cost for the same information: the first run at the smallest size, and
    # the next not at the target size either (another size of a picked mixture is a new, noisy
    # measurement of the same thing; with nothing else left to learn it would be worth a large run).
    assert out["params"].iloc[0] == CHOICES[0] and (out["params"] < TARGET).all(), out
    assert out["score"].iloc[0] > 0 and out.index[0] != "all-code"
    # Offered only the target size, the planner still picks an informative mixture there.
    at_target = suggest(known, 1, STEP, params_choices=[TARGET], params=TARGET, candidates=cand,
                        fantasies=32)
    assert at_target["params"].iloc[0] == TARGET and at_target.index[0] != "all-code"
    # Scores are per run at the cheapest offered size, so the two first scores compare the
    # information itself: about the same at either size.
    ratio = out["score"].iloc[0] / at_target["score"].iloc[0]
    assert 0.25 < ratio < 4


def test_without_params_choices_it_is_todays_planner(post: Posterior,
                                                    mixtures: pd.DataFrame) -> None:
    out = suggest(post, 2, STEP, rule="info", candidates=mixtures, fantasies=16, max_draws=200,
                  params=TARGET)
    assert list(out.columns) == [*DOMAINS, "score", "expected_loss", "loss_sd", "rule"]
    assert (suggest(post, 2, STEP, max_draws=200)["rule"] == "thompson").all()


def test_api_errors(post: Posterior, ladder: Observations, mixtures: pd.DataFrame) -> None:
    with pytest.raises(BimixInputError, match="budget needs the model sizes"):
        suggest(post, 2, STEP, budget=1e15)
    with pytest.raises(BimixInputError, match="positive number of parameters, got -5"):
        _plan(post, mixtures, params_choices=[1e6, -5])
    with pytest.raises(BimixInputError, match="smaller than the cheapest run"):
        _plan(post, mixtures, budget=0.5 * run_cost(CHOICES[0], STEP, TOKENS_PER_STEP))
    with pytest.raises(BimixInputError, match="rule='info'"):
        _plan(post, mixtures, rule="thompson")
    one = LeastSquaresFit().fit(ladder.at_sizes([FITTED[0]])).to_posterior()
    with pytest.raises(BimixInputError, match="two or more sizes"):
        _plan(one, mixtures)


def test_cli_plans_across_sizes(cli, fit_path, mixtures: pd.DataFrame, tmp_path) -> None:
    cand = tmp_path / "cand.csv"
    write_mixtures(mixtures, cand)
    nxt = tmp_path / "next.csv"
    budget = run_cost(TARGET, STEP, TOKENS_PER_STEP)
    res = cli("suggest", fit_path, "--step", str(STEP), "--params-choices", "1e6,4e6,1.6e7",
              "--budget", f"{budget:g}", "--params", "1.6e7", "--n", "6", "--candidates", cand,
              "--max-draws", "200", "--tokens-per-step", str(TOKENS_PER_STEP), "--out", nxt)
    assert res.code == 0, res.err
    assert "FLOPs of the" in res.err
    back = pd.read_csv(nxt, comment="#")
    assert {"params", "cost"} <= set(back.columns) and back["cost"].sum() <= budget
    assert "cost in FLOPs" in nxt.read_text().splitlines()[0]
    read_mixtures(nxt, domains=DOMAINS)  # `bimix train` reads it as it is


@pytest.mark.parametrize(("extra", "message"), [
    (["--budget", "1e15"], "--params-choices"),
    (["--params-choices", "1e6,abc"], "--params-choices: not a number: 'abc'"),
    (["--params-choices", "1e6,-5"], "positive number of parameters"),
    (["--params-choices", "1e6,4e6", "--budget", "10"], "smaller than the cheapest run"),
])
def test_cli_errors(cli, fit_path, tmp_path, extra, message) -> None:
    out = tmp_path / "next.csv"
    cli("suggest", fit_path, "--step", str(STEP), *extra, "--out", out).assert_user_error(message)
    assert not out.exists()


def test_cli_refuses_a_one_size_fit(cli, ladder: Observations, tmp_path) -> None:
    path = tmp_path / "one.nc"
    LeastSquaresFit().fit(ladder.at_sizes([FITTED[0]])).to_posterior().save(path)
    cli("suggest", path, "--step", str(STEP), "--params-choices", "1e6,4e6", "--out",
        tmp_path / "n.csv").assert_user_error("two or more sizes")
    cli("plot", path, "--kind", "size-shift", "--out",
        tmp_path / "s.png").assert_user_error("two or more model sizes")


def test_size_shift_figure(cli, post: Posterior, fit_path, tmp_path) -> None:
    fig = plots.plot_size_shift(post, STEP, params=TARGET, max_draws=100,
                                path=tmp_path / "shift.png")
    assert (tmp_path / "shift.png").read_bytes().startswith(b"\x89PNG")
    title = fig.get_suptitle()
    p = float(title.rsplit("= ", 1)[1].split()[0])
    assert 0 <= p <= 1 and "within 0.5% Lbar" in title
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) >= len(DOMAINS)
    # The grid runs from the smallest fitted size to 10x the largest.
    x = ax.lines[0].get_xdata()
    assert x[0] == pytest.approx(FITTED[0]) and x[-1] == pytest.approx(10 * FITTED[-1])
    out = tmp_path / "cli.png"
    res = cli("plot", fit_path, "--kind", "size-shift", "--out", out)
    assert res.code == 0, res.err
    assert out.read_bytes().startswith(b"\x89PNG") and "P(optimum at" in res.out
