"""The next-experiment planner: distinct Thompson batches, an information rule that prefers
informative runs, trainable output, cold start, and clear errors."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bimix_bayes.constraints import Constraints
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import read_mixtures, write_mixtures
from bimix_bayes.observations import Observations
from bimix_bayes.planner import initial_design, suggest
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import ModelSpec

SOURCES = ["web", "code", "math"]
STEP, S_REF = 2000.0, 1000.0
BASE = {"log_c": [1.2, 0.8, 1.0], "alpha": [0.1, 0.2, 0.15], "u": [0.4, 0.6, 0.5],
        "beta": [0.5, 0.6, 0.55], "eps": [0.01, 0.01, 0.01]}


def _observations() -> Observations:
    # Two checkpoints: a posterior of losses at one step only would refuse other steps.
    rows = [dict(run=f"r{i}", domain=d, proportion=p, step=step, loss=3.0)
            for i, mix in enumerate([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
            for d, p in zip(SOURCES, mix, strict=True) for step in (1000, 2000)]
    return Observations.from_frame(pd.DataFrame(rows))


def _posterior(alpha_code: np.ndarray, sigma: float = 0.01, spread: float = 0.0) -> Posterior:
    n = len(alpha_code)
    rng = np.random.default_rng(0)
    shape = (1, n, len(SOURCES))
    draws = {k: np.array(v) + np.zeros(shape) for k, v in BASE.items()}
    draws["alpha"][..., 1] = alpha_code
    draws["log_c"] = draws["log_c"] + spread * rng.standard_normal(shape)
    draws["sigma"] = np.full(shape, sigma)
    draws["sigma_run"] = np.zeros(shape)
    ds = xr.Dataset({k: (("chain", "draw", "domain"), v) for k, v in draws.items()},
                    coords={"domain": SOURCES})
    return Posterior.from_draws(ds, _observations(), spec=ModelSpec(law="bimix"),
                                method="synthetic", s_ref=S_REF)


@pytest.fixture(scope="module")
def post() -> Posterior:
    # The posterior is unsure how much code data helps: alpha of code spans 0.05 to 0.6.
    return _posterior(np.exp(np.random.default_rng(1).uniform(np.log(0.05), np.log(0.6), 300)),
                      spread=0.05)


def test_thompson_batch_is_distinct_diverse_and_feasible(post):
    c = Constraints.build(SOURCES, bounds={"math": (0.1, 0.5)})
    out = suggest(post, 4, STEP, constraints=c, min_distance=0.05)
    x = out[SOURCES].to_numpy()
    np.testing.assert_allclose(x.sum(axis=1), 1, atol=1e-9)
    assert np.all(x >= c.lower - 1e-12) and np.all(x <= c.upper + 1e-12)
    tv = 0.5 * np.abs(x[:, None] - x[None]).sum(-1)
    assert tv[np.triu_indices(4, 1)].min() >= 0.05
    # The batch spans the posterior's disagreement about code (alpha 0.05 .. 0.6).
    assert np.ptp(out["code"]) > 0.1
    assert out["score"].sum() == pytest.approx(1.0)
    assert list(out.columns[-4:]) == ["score", "expected_loss", "loss_sd", "rule"]
    assert (out["rule"] == "thompson").all() and (out["loss_sd"] > 0).all()


def test_thompson_on_a_point_fit_still_gives_a_distinct_batch():
    point = _posterior(np.array([0.2]))
    out = suggest(point, 3, STEP)
    x = out[SOURCES].to_numpy()
    assert len({tuple(np.round(r, 6)) for r in x}) == 3


def test_thompson_from_candidates_picks_distinct_rows(post):
    cand = pd.DataFrame(np.random.default_rng(2).dirichlet(np.ones(3), 12), columns=SOURCES,
                        index=[f"c{i}" for i in range(12)])
    out = suggest(post, 5, STEP, candidates=cand)
    assert out.index.is_unique and set(out.index) <= set(cand.index)
    np.testing.assert_allclose(out[SOURCES].to_numpy(), cand.loc[out.index].to_numpy())
    assert out["score"].between(0, 1).all()


def test_info_rule_prefers_the_informative_mixture():
    # Draws disagree only about alpha of code. A run on code alone cannot tell them apart:
    # (r + eps)^-alpha is ~1 at r = 1 whatever alpha is, and the other domains' losses are known.
    # Runs with a small code share separate the draws, and alpha decides the best code share.
    alpha_code = np.exp(np.random.default_rng(3).uniform(np.log(0.05), np.log(0.6), 200))
    post = _posterior(alpha_code, sigma=0.005)
    cand = pd.DataFrame({"web": [0.0, 0.45, 0.3], "code": [1.0, 0.1, 0.4],
                         "math": [0.0, 0.45, 0.3]}, index=["all-code", "little-code", "mid"])
    out = suggest(post, 1, STEP, rule="info", candidates=cand, fantasies=64)
    assert out.index[0] != "all-code"
    ranked = suggest(post, 3, STEP, rule="info", candidates=cand, fantasies=64)
    assert ranked.index[-1] == "all-code"
    assert ranked["score"].iloc[0] > 0


def test_info_rule_on_the_continuous_set(post):
    out = suggest(post, 3, STEP, rule="info", max_draws=150, pool_size=64, fantasies=16)
    x = out[SOURCES].to_numpy()
    np.testing.assert_allclose(x.sum(axis=1), 1, atol=1e-9)
    assert (out["rule"] == "info").all() and len(out) == 3


def test_output_trains_directly(post, tmp_path):
    out = suggest(post, 2, STEP)
    write_mixtures(out, tmp_path / "next.csv")
    back = read_mixtures(tmp_path / "next.csv", domains=SOURCES)
    np.testing.assert_allclose(back.to_numpy(), out[SOURCES].to_numpy(), atol=1e-9)


def test_cold_start_hook(tmp_path):
    design = pd.DataFrame({"a": [0.5, 0.2], "b": [0.5, 0.8]}, index=["x", "y"])
    assert initial_design(tmp_path, design=lambda corpus: design) is design
    with pytest.raises(BimixInputError, match="corpus directory not found"):
        initial_design(tmp_path / "missing")


def test_cold_start_default_is_the_entropy_design(tmp_path):
    from bimix_bayes.corpus import build_corpus

    corpus = build_corpus({"a": ["abab abab", "abab"], "b": ["a quick fox", "jumps over"]},
                          tmp_path / "c")
    design = initial_design(corpus)
    assert design.index[0].startswith("entropy-") and list(design.columns) == ["a", "b"]


def test_bad_requests_fail_before_any_work(post):
    cand = pd.DataFrame([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], columns=SOURCES, index=["p", "q"])
    with pytest.raises(BimixInputError, match="candidate list holds only 2"):
        suggest(post, 3, STEP, candidates=cand)
    with pytest.raises(BimixInputError, match="unknown rule"):
        suggest(post, 2, STEP, rule="ucb")
    with pytest.raises(BimixInputError, match="positive integer"):
        suggest(post, 0, STEP)
    with pytest.raises(BimixInputError, match="unknown domain column"):
        suggest(post, 1, STEP, candidates=cand.assign(wiki=0.0))
    with pytest.raises(BimixInputError, match="has one draw"):
        suggest(_posterior(np.array([0.1])), 1, STEP, rule="info")


def test_cli_suggest_and_its_errors(post, tmp_path, cli):
    post.save(tmp_path / "fit.nc")
    nxt = tmp_path / "next.csv"
    done = cli("suggest", tmp_path / "fit.nc", "--n", "3", "--step", "2000", "--out", nxt)
    assert done.code == 0, done.err
    assert nxt.read_text().startswith("# units: domain columns are shares of the training tokens")
    back = pd.read_csv(nxt, comment="#")
    assert list(back.columns) == ["mixture", *SOURCES, "score", "expected_loss", "loss_sd", "rule"]
    read_mixtures(nxt, domains=SOURCES)  # `bimix train` reads it as it is
    cand = tmp_path / "cand.csv"
    cand.write_text("mixture,web,code,math\na,0.5,0.3,0.2\nb,0.2,0.3,0.5\n")
    cli("suggest", tmp_path / "fit.nc", "--n", "3", "--step", "2000", "--candidates", cand,
        "--out", tmp_path / "x.csv").assert_user_error("candidate list holds only 2")
    assert not (tmp_path / "x.csv").exists()
    cli("suggest", "--out", tmp_path / "x.csv").assert_user_error("--corpus")
