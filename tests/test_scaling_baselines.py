"""The least-squares model-size baselines: recovery of known coefficients from data simulated
from their own forms, prediction shapes, bands and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws import bimix
from bimix_bayes.observations import Observations
from bimix_bayes.scaling_laws import (
    NearestSizeBiMix,
    ShukorAdditive,
    ShukorJoint,
    shukor_loss,
)

SOURCES = ["web", "code", "books"]
SIZES = [2e7, 6e7, 2e8]
STEPS = [1000, 2000, 4000, 8000, 16000, 32000]
NOISE = 1e-3  # sd of log-loss: small, so that recovery is checked tightly
#: Two evaluated domains: a training domain and a target (trained on by no run).
ADDITIVE = {
    "web": {"E": 1.2, "C": np.array([3.0, 1.0, 1.5]), "gamma": np.array([0.4, 0.2, 0.3]),
            "A": 0.6, "alpha": 0.35, "B": 0.5, "beta": 0.5},
    "wiki": {"E": 1.5, "C": np.array([2.0, 0.8, 4.0]), "gamma": np.array([0.3, 0.5, 0.4]),
             "A": 0.4, "alpha": 0.3, "B": 0.7, "beta": 0.4},
}
JOINT = {
    d: {**p, "A": p["A"] * np.array([1.3, 0.7, 1.0]), "alpha": p["alpha"] + np.array([.1, -.1, 0]),
        "B": p["B"] * np.array([0.8, 1.2, 1.0]), "beta": p["beta"] + np.array([-.1, .1, .05])}
    for d, p in ADDITIVE.items()
}
N_REF = float(np.exp(np.mean(np.log(SIZES))))
D_REF = float(np.exp(np.mean(np.log(STEPS))))


def _mixtures(n: int, seed: int) -> pd.DataFrame:
    mix = np.random.default_rng(seed).dirichlet(np.ones(len(SOURCES)), n)
    mix[0, 1] = 0.0  # a zero share: h^gamma is 0 there
    mix /= mix.sum(axis=1, keepdims=True)
    return pd.DataFrame(mix, columns=SOURCES, index=[f"m{i}" for i in range(n)])


def _simulate(truth: dict, joint: bool, sizes=SIZES, seed: int = 0) -> Observations:
    """Runs of 12 mixtures at each size, evaluated on ``web`` and the target ``wiki``."""
    rng = np.random.default_rng(seed)
    mix = _mixtures(12, seed)
    rows = []
    for size in sizes:
        for name, h in mix.iterrows():
            run = f"{size:.0e}-{name}"
            for domain, p in truth.items():
                loss = shukor_loss(h.to_numpy(), size / N_REF, np.array(STEPS) / D_REF, p, joint)
                loss = loss * np.exp(rng.normal(0, NOISE, len(STEPS)))
                share = float(h["web"]) if domain == "web" else 0.0
                rows += [(run, domain, share, st, float(v), size)
                         for st, v in zip(STEPS, loss, strict=True)]
            rows += [(run, s, float(h[s]), None, None, size) for s in SOURCES if s != "web"]
    frame = pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss", "params"])
    return Observations.from_frame(frame)


@pytest.fixture(scope="module")
def additive_obs() -> Observations:
    return _simulate(ADDITIVE, joint=False)


@pytest.fixture(scope="module")
def additive_fit(additive_obs) -> ShukorAdditive:
    return ShukorAdditive().fit(additive_obs)


def _scale_terms(c: pd.Series, joint: bool) -> dict:
    """The fitted A, alpha, B, beta (per training domain for the joint law)."""
    cols = (lambda n: [f"{n}[{s}]" for s in SOURCES]) if joint else (lambda n: [n])
    return {"A": np.exp(c[cols("log_A")].to_numpy(float)), "alpha": c[cols("alpha")].to_numpy(float),
            "B": np.exp(c[cols("log_B")].to_numpy(float)), "beta": c[cols("beta")].to_numpy(float)}


def _level(c: pd.Series, h: np.ndarray) -> np.ndarray:
    """The fitted ``E + 1 / sum_j C_j h_j^gamma_j`` at mixtures ``h`` (columns in SOURCES order)."""
    C = np.exp(c[[f"log_C[{s}]" for s in SOURCES]].to_numpy(float))
    g = c[[f"gamma[{s}]" for s in SOURCES]].to_numpy(float)
    return c["E"] + 1 / (C * h**g).sum(axis=1)


def test_additive_recovers_known_coefficients(additive_fit):
    """Tolerances: about 3 x the largest error over seeds 0-2 (alpha .013, beta .002, A 4 %,
    B 0.4 %, E .014). The mixture term's C and gamma trade off with each other within 12
    mixtures, so the level E + 1 / sum C h^gamma is checked at the simulated mixtures (0.9 %).
    A and B are reported at N_ref and D_ref, as the truth is."""
    assert additive_fit.sources_ == SOURCES and additive_fit.domains_ == ["web", "wiki"]
    assert additive_fit.axis_ == "step" and additive_fit.not_estimable_ == []
    h = _mixtures(12, 0).to_numpy()
    for domain, p in ADDITIVE.items():
        c = additive_fit.coefficients_.loc[domain]
        got = _scale_terms(c, joint=False)
        assert abs(got["alpha"][0] - p["alpha"]) < 0.04
        assert abs(got["beta"][0] - p["beta"]) < 0.01
        assert got["A"][0] == pytest.approx(p["A"], rel=0.12)
        assert got["B"][0] == pytest.approx(p["B"], rel=0.03)
        want = p["E"] + 1 / (p["C"] * h ** p["gamma"]).sum(axis=1)
        assert np.allclose(_level(c, h), want, rtol=0.03)
        assert abs(c["E"] - p["E"]) < 0.05
        assert c["sigma"] == pytest.approx(NOISE, rel=0.3)


def test_joint_recovers_known_coefficients():
    """The joint law's mixture-dependent terms, checked where the data pin them: A_h, alpha_h,
    B_h, beta_h at every simulated mixture (the per-domain values trade off within a mixture).
    Tolerance 15 %: about 3 x the largest relative error over seeds 0-2 (5.4 %)."""
    obs = _simulate(JOINT, joint=True, seed=1)
    fit = ShukorJoint().fit(obs)
    h = _mixtures(12, 1).to_numpy()
    for domain, p in JOINT.items():
        got = _scale_terms(fit.coefficients_.loc[domain], joint=True)
        for name in ("A", "alpha", "B", "beta"):
            want, have = h @ p[name], h @ got[name]
            assert np.allclose(have, want, rtol=0.15, atol=0.03), (domain, name)


def test_predicts_a_larger_size_from_its_own_form(additive_obs, additive_fit):
    """Extrapolating 5x beyond the largest fitted size at the fitted mixtures (the cross-scale
    setting), the law fitted on its own form is within half a percent (noise 0.1 %)."""
    mix = _mixtures(12, seed=0).iloc[:4]
    pred = additive_fit.predict(mix, [3000, 40000], params=1e9)
    assert pred.shape == (4, 2, 2)
    for i, (domain, p) in enumerate(ADDITIVE.items()):
        want = shukor_loss(mix.to_numpy()[:, None, :], 1e9 / N_REF,
                           np.array([3000, 40000])[None, :] / D_REF, p, joint=False)
        assert np.max(np.abs(pred[:, :, i] / want - 1)) < 5e-3, domain
    lower, upper = additive_fit.interval(pred, 1e9, prob=0.9)
    assert np.all(lower < pred) and np.all(pred < upper)
    ratio = np.log(upper / pred)[0, 0]
    assert ratio == pytest.approx(1.645 * additive_fit.coefficients_["sigma"].to_numpy(), rel=1e-3)


def test_one_size_is_refused_and_one_step_drops_the_data_term():
    one_size = _simulate(ADDITIVE, joint=False, sizes=[6e7])
    with pytest.raises(BimixInputError, match="two or more model sizes"):
        ShukorAdditive().fit(one_size)
    f = _simulate(ADDITIVE, joint=False).frame
    last = Observations.from_frame(f[f["step"].isna() | (f["step"] == STEPS[-1])])
    fit = ShukorAdditive().fit(last)
    assert fit.not_estimable_ == ["D term"]
    assert "log_B" not in fit.coefficients_.columns
    assert fit.predict(_mixtures(3, 2), [STEPS[-1]], 1e9).shape == (3, 1, 2)


def test_tokens_axis_when_every_row_has_tokens(additive_obs):
    f = additive_obs.frame.assign(tokens=lambda x: x["step"].astype("float") * 1e6)
    fit = ShukorAdditive().fit(Observations.from_frame(f))
    assert fit.axis_ == "tokens"
    with pytest.raises(BimixInputError, match="give tokens"):
        fit.predict(_mixtures(2, 3), [1000], 1e9)
    assert fit.predict(_mixtures(2, 3), [1000], 1e9, tokens=[1e9]).shape == (2, 1, 2)


def test_nearest_size_bimix_uses_the_nearest_fit():
    """The per-size BiMix law, fitted on data from its own form at two sizes, predicts with the
    size nearest the target in log N, unchanged."""
    truth = pd.DataFrame({"log_c": np.log([2.0, 1.5]), "alpha": [0.1, 0.05], "u": [-1.0, -1.2],
                          "beta": [0.5, 0.6], "eps": [1e-3, 1e-3]}, index=["a", "b"])
    rng = np.random.default_rng(4)
    mix = rng.dirichlet(np.ones(2), 8)
    rows = []
    for size, shift in ((1e7, 0.3), (1e8, 0.0)):
        for i, h in enumerate(mix):
            for j, domain in enumerate(truth.index):
                p = truth.loc[domain].to_dict()
                log_l = bimix.BiMix().log_loss_at(
                    {**p, "log_c": p["log_c"] + shift}, h[j] + p["eps"], np.array(STEPS), 4000.0)
                rows += [(f"{size:.0e}-{i}", domain, h[j], s, float(np.exp(v)), size)
                         for s, v in zip(STEPS, log_l, strict=True)]
    obs = Observations.from_frame(pd.DataFrame(
        rows, columns=["run", "domain", "proportion", "step", "loss", "params"]))
    law = NearestSizeBiMix().fit(obs)
    assert sorted(law.fits_) == [1e7, 1e8]
    assert law.nearest(5e8) == 1e8 and law.nearest(2e7) == 1e7
    test = pd.DataFrame(mix[:3], columns=["a", "b"], index=["x", "y", "z"])
    pred = law.predict(test, [1000, 8000], params=1e9)
    assert pred.shape == (3, 2, 2)
    small = law.predict(test, [1000, 8000], params=1e7)
    assert np.allclose(small / pred, np.exp(0.3), rtol=1e-3)  # the 1e7 fit is the shifted one
    lower, upper = law.interval(pred, 1e9)
    assert np.all(lower <= pred) and np.all(pred <= upper)


def test_nearest_size_bimix_refuses_targets(additive_obs):
    with pytest.raises(BimixInputError, match="own share"):
        NearestSizeBiMix().fit(additive_obs)


def test_needs_a_params_column():
    obs = Observations.from_frame(pd.DataFrame({"run": ["a", "a"], "domain": "web",
                                                "proportion": 1.0, "step": [1, 2],
                                                "loss": [3.0, 2.9]}))
    for law in (ShukorAdditive(), NearestSizeBiMix()):
        with pytest.raises(BimixInputError, match="params column"):
            law.fit(obs)


@pytest.mark.parametrize("law", [ShukorAdditive, ShukorJoint])
def test_jacobian_matches_finite_differences(law, additive_obs):
    """The fit's analytic d log L / d theta against central differences, at a random point of
    the box, with a zero share among the mixtures."""
    fit = law().fit(additive_obs)
    rng = np.random.default_rng(5)
    h = _mixtures(12, 0).to_numpy()[:, [SOURCES.index(s) for s in fit.sources_]]
    n, d = rng.uniform(0.3, 3.0, 12), rng.uniform(0.1, 10.0, 12)
    theta = fit.coefficients_.loc["web", fit._labels()].to_numpy(float)
    theta = theta + rng.normal(0, 0.05, len(theta))

    def log_loss(t: np.ndarray) -> np.ndarray:
        return np.log(shukor_loss(h, n, d, fit._unpack(t), fit.joint))

    step = 1e-6
    numeric = np.column_stack([(log_loss(theta + step * e) - log_loss(theta - step * e)) / (2 * step)
                               for e in np.eye(len(theta))])
    assert np.allclose(fit._jacobian(theta, h, n, d), numeric, rtol=1e-5, atol=1e-8)
