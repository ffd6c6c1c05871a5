"""The uncertainty-aware optimizer: right answers on worlds we know, constraints kept, clear errors."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import optimize as sopt

from bimix_bayes.constraints import Constraints
from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws import bimix as laws
from bimix_bayes.optimizer import optimize
from bimix_bayes.posterior import Posterior
from bimix_bayes.simulate import simulate_observations
from bimix_bayes.spec import ModelSpec
from bimix_bayes.surface import LossSurface

SOURCES = ["web", "code", "math", "books"]  # books is trained on but never evaluated
DOMAINS = SOURCES[:3]
STEP, S_REF = 2000.0, 1000.0
TRUTH = pd.DataFrame({"log_c": [1.2, 0.8, 1.0], "alpha": [0.08, 0.25, 0.15],
                      "u": [0.4, 0.6, 0.5], "beta": [0.5, 0.6, 0.55],
                      "eps": [0.01, 0.01, 0.01]}, index=DOMAINS)


def observations():
    rng = np.random.default_rng(0)
    mix = pd.DataFrame(rng.dirichlet(np.ones(len(SOURCES)), size=6), columns=SOURCES,
                       index=[f"r{i}" for i in range(6)])
    return simulate_observations(TRUTH, mix, steps=[500, 1000], s_ref=S_REF, noise_sd=0.01,
                                 seed=1)


def posterior(n_draws=400, spread=0.05, transfer=None, seed=0, sigma=0.02):
    """Draws scattered around TRUTH (alpha, log_c on the log/linear scale by ``spread``)."""
    rng = np.random.default_rng(seed)
    shape = (1, n_draws, len(DOMAINS))
    draws = {k: TRUTH[k].to_numpy() + np.zeros(shape) for k in TRUTH}
    draws["alpha"] = draws["alpha"] * np.exp(spread * rng.standard_normal(shape))
    draws["log_c"] = draws["log_c"] + spread * rng.standard_normal(shape)
    draws["sigma"] = np.full(shape, sigma)
    draws["sigma_run"] = np.zeros(shape)
    ds = xr.Dataset({k: (("chain", "draw", "domain"), v) for k, v in draws.items()},
                    coords={"domain": DOMAINS})
    law = "bimix"
    if transfer is not None:
        ds["transfer"] = (("chain", "draw", "domain", "source"),
                          np.broadcast_to(transfer, (1, n_draws, *transfer.shape)).copy())
        ds = ds.assign_coords(source=SOURCES)
        law = "transfer"
    return Posterior.from_draws(ds, observations(), spec=ModelSpec(law=law), method="synthetic", s_ref=S_REF)


def true_average(mix):
    """Hand-written BiMix law at STEP, uniform over the evaluated domains (the test's oracle)."""
    c = TRUTH
    r = np.asarray(mix, float)[..., :3] + c["eps"].to_numpy()
    step_term = 1 + np.exp(c["u"].to_numpy() - c["beta"].to_numpy() * np.log(STEP / S_REF))
    return (np.exp(c["log_c"].to_numpy()) * r ** -c["alpha"].to_numpy() * step_term).mean(-1)


@pytest.fixture(scope="module")
def post():
    return posterior()


@pytest.fixture(scope="module")
def result(post):
    return optimize(post, STEP)


def test_surface_agrees_with_posterior_and_its_gradient_is_exact(post):
    surface = LossSurface(post, STEP)
    mix = pd.DataFrame([[0.4, 0.3, 0.2, 0.1]], columns=SOURCES, index=["m"])
    expect = post.log_loss_draws(mix, [STEP])[:, 0, 0, :]
    np.testing.assert_allclose(surface.log_losses(mix.to_numpy()[0]), expect, rtol=1e-12)
    x = mix.to_numpy()[0]
    _, grad = surface.average_grad(x)
    for j in range(len(SOURCES)):
        h = np.zeros(len(SOURCES))
        h[j] = 1e-6
        fd = (surface.average(x + h) - surface.average(x - h)) / 2e-6
        np.testing.assert_allclose(grad[:, j], fd, rtol=1e-5, atol=1e-8)


def test_expected_gain_optimum_beats_the_reference_in_the_true_world(post, result):
    truth_opt = np.append(laws.summed_loss_optimum(STEP, **TRUTH, s_ref=S_REF), 0.0)
    x = result.mixture.to_numpy()
    assert abs(x.sum() - 1) < 1e-12 and x.min() >= 0
    assert x[-1] < 1e-9  # the unevaluated domain only takes share away
    # Close to the true optimum, and truly better than the best observed mixture.
    assert 0.5 * np.abs(x - truth_opt).sum() < 0.05
    assert true_average(x) < true_average(result.reference.to_numpy())
    s = result.summary()
    assert s["gain_mean"] > 0 and s["prob_improvement"] > 0.95
    assert s["gain_lower"] <= s["gain_mean"] <= s["gain_upper"]
    # The default reference is the observed mixture with the lowest expected loss.
    observed = post.observations.mixtures()[SOURCES]
    expected = LossSurface(post, STEP).average(observed.to_numpy()).mean(axis=0)
    np.testing.assert_allclose(result.reference.to_numpy(), observed.iloc[expected.argmin()])


def test_result_reports_losses_plan_and_dataset(result):
    losses = result.losses
    assert (losses["lower"] <= losses["mean"]).all() and (losses["mean"] <= losses["upper"]).all()
    assert losses["mean"].sel(mixture="optimum").mean() < losses["mean"].sel(mixture="reference").mean()
    plan = result.plan_frame()
    assert list(plan.columns[:2]) == ["domain", "proportion"] and list(plan["domain"]) == SOURCES
    assert (plan["optimum_lower"] <= plan["optimum_upper"]).all()
    ds = result.to_dataset()
    assert ds["gain"].sizes["sample"] == 400 and ds["optima"].sizes["source"] == 4


def test_per_draw_optima_on_a_subset_of_draws(post):
    res = optimize(post, STEP, optima_draws=100)
    ds = res.to_dataset()
    assert ds.sizes["optimum_draw"] == 100 and ds.sizes["sample"] == 400
    full = optimize(post, STEP, optima_draws=None)
    np.testing.assert_allclose(res.mixture, full.mixture, atol=1e-6)


def test_per_draw_optima_are_exact_and_spread_with_the_posterior():
    narrow, wide = posterior(spread=0.02), posterior(spread=0.3)
    c = Constraints.build(SOURCES)
    x, f = LossSurface(wide, STEP).draw_optima(c)
    # Each draw's optimum is the paper's Lagrange solution of that draw (no transfer).
    draws = wide.draws.stack(sample=("chain", "draw")).transpose("sample", ...)
    exact = laws.summed_loss_optimum(STEP, **{k: draws[k].to_numpy() for k in TRUTH},
                                     s_ref=S_REF)
    np.testing.assert_allclose(x[:, :3], exact, atol=1e-8)
    spread = {name: optimize(p, STEP).summary()["optimum_distance_mean"]
              for name, p in (("narrow", narrow), ("wide", wide))}
    assert spread["wide"] > 3 * spread["narrow"]


def test_per_draw_optima_with_transfer_match_scipy():
    transfer = np.zeros((3, 4))
    transfer[0, 3] = 0.3  # books help web
    transfer[2, 1] = 0.2  # code helps math
    post = posterior(n_draws=20, spread=0.2, transfer=transfer)
    surface = LossSurface(post, STEP)
    c = Constraints.build(SOURCES, bounds={"code": (0.05, 0.5)})
    x, f = surface.draw_optima(c)
    for k in range(3):
        res = sopt.minimize(lambda z, k=k: surface.average(z)[k], np.full(4, 0.25),
                            method="SLSQP", bounds=list(zip(c.lower, c.upper, strict=True)),
                            constraints=[{"type": "eq", "fun": lambda z: z.sum() - 1}],
                            options={"ftol": 1e-14, "maxiter": 500})
        assert f[k] <= res.fun + 1e-9
        np.testing.assert_allclose(x[k], res.x, atol=2e-4)
    assert (x[:, 3] > 0).any()  # transfer makes the unevaluated domain worth training on


def test_bounds_and_data_limits_are_respected(post):
    c = Constraints.build(SOURCES, bounds={"web": (0.3, 0.6), "books": (0.05, 1.0)},
                          available_tokens={"code": 1e9}, max_epochs=2, total_tokens=1e10)
    assert c.upper[1] == pytest.approx(0.2)
    for objective in ("expected-gain", "prob-improvement", "quantile"):
        x = optimize(post, STEP, constraints=c, objective=objective).mixture.to_numpy()
        assert np.all(x >= c.lower - 1e-12) and np.all(x <= c.upper + 1e-12)
        assert abs(x.sum() - 1) < 1e-12
    # Code is worth the most: the data limit binds.
    assert optimize(post, STEP, constraints=c).mixture["code"] == pytest.approx(0.2, abs=1e-8)


def test_prob_improvement_matches_a_hand_computed_case():
    # Five draws that differ only in alpha of code; a reference that gives code 10%.
    alpha_code = np.array([0.02, 0.05, 0.1, 0.3, 0.6])
    base = posterior(n_draws=5, spread=0.0)
    draws = base.draws.copy()
    draws["alpha"].loc[{"domain": "code"}] = alpha_code[None, :]
    post = Posterior.from_draws(draws, base.observations, spec=ModelSpec(law="bimix"), method="synthetic",
                                s_ref=S_REF)
    reference = pd.Series([0.45, 0.1, 0.45, 0.0], index=SOURCES)
    res = optimize(post, STEP, reference=reference)
    x = res.mixture.to_numpy()

    def avg(mix, a_code):
        c = TRUTH.copy()
        c.loc["code", "alpha"] = a_code
        r = np.asarray(mix)[:3] + c["eps"].to_numpy()
        step_term = 1 + np.exp(c["u"].to_numpy() - c["beta"].to_numpy() * np.log(STEP / S_REF))
        return (np.exp(c["log_c"].to_numpy()) * r ** -c["alpha"].to_numpy() * step_term).mean()

    gains = np.array([avg(reference, a) - avg(x, a) for a in alpha_code])
    np.testing.assert_allclose(res.gain, gains, rtol=1e-10)
    assert res.summary()["prob_improvement"] == pytest.approx((gains > 0).mean())
    # Maximising the probability directly does at least as well on it.
    res_p = optimize(post, STEP, reference=reference, objective="prob-improvement")
    assert res_p.summary()["prob_improvement"] >= res.summary()["prob_improvement"]


def test_quantile_objective_trades_mean_for_a_safer_tail():
    post = posterior(spread=0.3, seed=3)
    mean_res = optimize(post, STEP)
    safe_res = optimize(post, STEP, objective="quantile", quantile=0.05)
    q_mean, q_safe = (np.quantile(r.gain, 0.05) for r in (mean_res, safe_res))
    assert q_safe >= q_mean - 1e-9
    assert mean_res.gain.mean() >= safe_res.gain.mean() - 1e-9


def test_projection_is_feasible_and_idempotent():
    c = Constraints.build(SOURCES, bounds={"web": (0.1, 0.4), "code": (0.0, 0.2)})
    pts = np.random.default_rng(0).normal(size=(50, 4))
    x = c.project(pts)
    np.testing.assert_allclose(x.sum(-1), 1, atol=1e-12)
    assert np.all(x >= c.lower - 1e-12) and np.all(x <= c.upper + 1e-12)
    np.testing.assert_allclose(c.project(x), x, atol=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bounds": {"web": (0.6, 1.0), "code": (0.5, 1.0)}}, "minimum proportions sum to 1.1"),
    ({"bounds": {k: (0.0, 0.2) for k in SOURCES}}, "maximum proportions fill only 0.8"),
    ({"bounds": {"web": (0.5, 0.2)}}, "0 <= min <= max <= 1"),
    ({"bounds": {"wiki": (0.0, 0.5)}}, "unknown domain 'wiki'"),
    ({"available_tokens": {k: 1e9 for k in SOURCES}, "total_tokens": 1e10},
     "not enough tokens for the budget"),
    ({"available_tokens": {"web": 1e9}}, "total training tokens"),
    ({"bounds": {"web": (0.3, 1.0)}, "available_tokens": {"web": 1e9}, "total_tokens": 1e10},
     "below its minimum"),
])
def test_infeasible_constraints_fail_before_any_work(kwargs, message):
    with pytest.raises(BimixInputError, match=message):
        Constraints.build(SOURCES, **kwargs)


def test_bad_reference_weights_objective_and_empty_posterior_are_clear_errors(post):
    with pytest.raises(BimixInputError, match="unknown domain column"):
        optimize(post, STEP, reference=pd.Series([0.5, 0.5, 0, 0, 0],
                                                 index=[*SOURCES, "wiki"]))
    with pytest.raises(BimixInputError, match="missing domain column"):
        optimize(post, STEP, reference=pd.Series([0.5, 0.5, 0.0], index=SOURCES[:3]))
    with pytest.raises(BimixInputError, match="one mixture"):
        optimize(post, STEP, reference=pd.DataFrame(np.full((2, 4), 0.25), columns=SOURCES))
    with pytest.raises(BimixInputError, match="not an evaluated domain"):
        optimize(post, STEP, weights={"books": 1.0})
    with pytest.raises(BimixInputError, match="unknown objective"):
        optimize(post, STEP, objective="median")
    with pytest.raises(BimixInputError, match="constraints are for domains"):
        optimize(post, STEP, constraints=Constraints.build(["web", "code"]))
    empty = Posterior(post.tree.copy())
    empty.tree["posterior"] = xr.DataTree(post.draws.isel(draw=slice(0, 0)))
    with pytest.raises(BimixInputError, match="holds no draws"):
        optimize(empty, STEP)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_optimize_writes_plan_and_summary(post, tmp_path, cli):
    import json

    post.save(tmp_path / "fit.nc")
    plan = tmp_path / "plan.csv"
    done = cli("optimize", tmp_path / "fit.nc", "--step", "2000", "--bounds", "math=0.2:0.5",
               "--available", "code=1e9", "--tokens", "5e9", "--objective", "quantile",
               "--out", plan)
    assert done.code == 0, done.err
    frame = pd.read_csv(plan)
    assert list(frame.columns[:2]) == ["domain", "proportion"]
    assert frame["proportion"].sum() == pytest.approx(1.0)
    x = frame.set_index("domain")["proportion"]
    assert 0.2 - 1e-9 <= x["math"] <= 0.5 + 1e-9 and x["code"] <= 0.2 + 1e-9
    summary = json.loads((tmp_path / "plan.json").read_text())
    assert summary["objective"] == "quantile" and "P(gain > 0)" in done.out


def test_cli_optimize_exports_feed_predict_suggest_and_training_configs(post, tmp_path, cli):
    import runpy

    import yaml

    from bimix_bayes.mixtures import read_mixtures

    post.save(tmp_path / "fit.nc")
    plan = tmp_path / "plan.csv"
    done = cli("optimize", tmp_path / "fit.nc", "--step", "2000", "--out", plan,
               "--export", "hf", "--export", "olmo", "--export", "megatron", "--export", "json",
               "--export-paths", "/data/{domain}/part")
    assert done.code == 0, done.err
    x = pd.read_csv(plan).set_index("domain")["proportion"]
    # The wide mixture beside the long plan is what predict, train and suggest read.
    wide = read_mixtures(tmp_path / "plan.mixture.csv", domains=post.sources)
    assert list(wide.index) == ["optimum"]
    np.testing.assert_allclose(wide.loc["optimum"], x[post.sources], atol=1e-6)  # plan: %.6g
    assert cli("predict", tmp_path / "fit.nc", "--mixtures", tmp_path / "plan.mixture.csv",
               "--steps", "2000", "--out", tmp_path / "pred.csv").code == 0
    assert cli("suggest", tmp_path / "fit.nc", "--n", "1", "--step", "2000", "--candidates",
               tmp_path / "plan.mixture.csv", "--out", tmp_path / "next.csv").code == 0
    # Hugging Face: interleave_datasets hands the probabilities to numpy's choice.
    hf = runpy.run_path(str(tmp_path / "plan.hf.py"))
    assert hf["domains"] == post.sources
    np.testing.assert_allclose(hf["probabilities"], x[post.sources], atol=1e-6)
    np.random.default_rng(0).choice(len(hf["domains"]), size=5, p=hf["probabilities"])
    # OLMo-core: SourceMixtureList requires target ratios summing to 1 (np.allclose).
    olmo = yaml.safe_load((tmp_path / "plan.olmo.yaml").read_text())["sources"]
    ratios = {s["source_name"]: s["target_ratio"] for s in olmo}
    assert np.allclose(sum(ratios.values()), 1.0)
    assert {s["source_name"]: s["paths"] for s in olmo}["code"] == ["/data/code/part"]
    # Megatron: the --data-args-path file splits on whitespace into weight prefix pairs.
    tokens = (tmp_path / "plan.megatron.txt").read_text().split()
    weights = dict(zip(tokens[1::2], map(float, tokens[0::2]), strict=True))
    assert weights == {f"/data/{d}/part": ratios[d] for d in ratios}
    plain = __import__("json").loads((tmp_path / "plan.weights.json").read_text())
    assert list(plain["mixture"]) == post.sources and "P(gain > 0)" in plain["note"]
    cli("optimize", tmp_path / "fit.nc", "--step", "2000", "--out", tmp_path / "p2.csv",
        "--export", "deepspeed").assert_user_error("--export takes hf, olmo, megatron, json")
    assert not (tmp_path / "p2.csv").exists()


def test_cli_optimize_errors_are_one_line_and_write_nothing(post, tmp_path, cli):
    post.save(tmp_path / "fit.nc")
    ref = tmp_path / "ref.csv"
    ref.write_text("mixture,web,code,math\nr,0.5,0.3,0.2\n")
    cases = [
        (["--step", "2000", "--bounds", "web=0.7:1", "--bounds", "code=0.5:1"], "sum to 1.2"),
        (["--step", "2000", "--available", "web=1", "--available", "code=1", "--available",
          "math=1", "--available", "books=1", "--tokens", "1e9"], "not enough tokens"),
        (["--step", "2000", "--reference", str(ref)], "missing domain column(s) books"),
        (["--bounds", "web=0.1:0.5"], "give the target --step"),
    ]
    for extra, needle in cases:
        cli("optimize", tmp_path / "fit.nc", "--out", tmp_path / "plan.csv",
            *extra).assert_user_error(needle)
    assert not (tmp_path / "plan.csv").exists()
