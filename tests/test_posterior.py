"""The posterior file and draw-based prediction: what predict, optimize and suggest rely on."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws import bimix as laws
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior, predictions_frame
from bimix_bayes.spec import ModelSpec

DOMAINS = ["web", "code", "math"]
TRUE = {"log_c": 1.0, "alpha": 0.1, "u": 0.5, "beta": 0.6, "eps": 0.01}


@pytest.fixture(scope="module")
def observations() -> Observations:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(5):
        p = rng.dirichlet(np.ones(3))
        for s in (100, 200, 400):
            for d, share in zip(DOMAINS, p, strict=True):
                log_l = laws.log_loss(share + TRUE["eps"], s, s_ref=200, **{
                    k: v for k, v in TRUE.items() if k != "eps"})
                rows.append(dict(run=f"r{k}", domain=d, proportion=share, step=s,
                                 loss=float(np.exp(log_l)), seed=k))
    return Observations.from_frame(pd.DataFrame(rows))


def _draws(n_draw: int, rng: np.random.Generator, spread: float = 0.0) -> xr.Dataset:
    def var(value: float) -> xr.DataArray:
        values = value + spread * rng.standard_normal((2, n_draw, len(DOMAINS)))
        return xr.DataArray(values, dims=("chain", "draw", "domain"), coords={"domain": DOMAINS})

    ds = xr.Dataset({k: var(v) for k, v in TRUE.items()})
    ds["eps"] = np.abs(ds["eps"])
    ds["sigma"] = var(0.02) * 0 + 0.02
    ds["sigma_run"] = var(0.05) * 0 + 0.05
    return ds


@pytest.fixture(scope="module")
def posterior(observations: Observations) -> Posterior:
    return Posterior.from_draws(_draws(200, np.random.default_rng(1), spread=0.01), observations,
                                spec=ModelSpec(law="bimix"), method="test", s_ref=200,
                                diagnostics={"rhat": 1.0})


def test_save_load_round_trip_predicts_the_same(posterior, observations, tmp_path):
    path = tmp_path / "fit.nc"
    posterior.save(path)
    loaded = Posterior.load(path)
    assert (loaded.law, loaded.method, loaded.s_ref) == ("bimix", "test", 200.0)
    assert loaded.diagnostics == {"rhat": 1.0}
    assert loaded.tree["constant_data"]["seed"].dtype.kind == "f"  # numbers stay numbers
    canonical = lambda f: f.sort_values(["run", "domain", "step"]).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(canonical(loaded.observations.frame.astype({"seed": int})),
                                  canonical(observations.frame), check_dtype=False)
    mix = observations.mixtures().iloc[:2]
    a = predictions_frame(posterior.predict(mix, [100, 1000]))
    b = predictions_frame(loaded.predict(mix, [100, 1000]))
    pd.testing.assert_frame_equal(a, b)


def test_point_posterior_reproduces_the_law(observations):
    draws = _draws(1, np.random.default_rng(0)).isel(chain=[0])
    post = Posterior.from_draws(draws, observations, spec=ModelSpec(law="bimix"), method="leastsq", s_ref=200)
    pred = post.predict(observations.mixtures(), [100, 200, 400], band="mean")
    frame = observations.frame
    for _, row in frame.iterrows():
        got = pred["mean"].sel(mixture=row["run"], domain=row["domain"], step=row["step"]).item()
        assert got == pytest.approx(row["loss"], rel=1e-9)


def test_intervals_are_ordered_and_observation_bands_are_wider(posterior, observations):
    mix = observations.mixtures()
    mean_pred = posterior.predict(mix, [300], prob=0.9, band="mean")
    obs_pred = posterior.predict(mix, [300], prob=0.9, band="new-run")
    assert (mean_pred["lower"] <= mean_pred["median"]).all()
    assert (mean_pred["median"] <= mean_pred["upper"]).all()
    width = lambda p: (p["upper"] - p["lower"]).mean().item()  # noqa: E731
    assert width(obs_pred) > 1.3 * width(mean_pred)


def test_transfer_lowers_loss_of_an_untrained_domain(observations):
    draws = _draws(1, np.random.default_rng(0)).isel(chain=[0])
    transfer = xr.DataArray(np.full((1, 1, 3, 3), 0.1), dims=("chain", "draw", "domain", "source"),
                            coords={"domain": DOMAINS, "source": DOMAINS})
    plain = Posterior.from_draws(draws, observations, spec=ModelSpec(law="bimix"), method="t", s_ref=200)
    moved = Posterior.from_draws(draws.assign(transfer=transfer), observations,
                                 spec=ModelSpec(law="transfer"),
                                 method="t", s_ref=200)
    mix = pd.DataFrame({"web": [1.0], "code": [0.0], "math": [0.0]}, index=["only-web"])
    a = plain.predict(mix, [200], band="mean")["mean"].sel(domain="math").item()
    b = moved.predict(mix, [200], band="mean")["mean"].sel(domain="math").item()
    assert np.isfinite(a) and b < a


def test_load_refuses_other_files_with_a_clear_message(posterior, tmp_path):
    plain = tmp_path / "plain.nc"
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(plain)
    with pytest.raises(BimixInputError, match="not a bimix-bayes posterior"):
        Posterior.load(plain)

    future = tmp_path / "future.nc"
    tree = posterior.tree.copy()
    tree.attrs["file_format"] = 99
    Posterior(tree).save(future)
    with pytest.raises(BimixInputError, match="file format 99"):
        Posterior.load(future)

    def tampered(name: str, edit) -> Path:
        tree = posterior.tree.copy()
        edit(tree)
        Posterior(tree).save(tmp_path / name)
        return tmp_path / name

    transfer_spec = json.dumps({**json.loads(posterior.tree.attrs["model_spec"]), "law": "transfer"})
    cases = {
        "lacks variable.*transfer": lambda t: t.attrs.update(model_spec=transfer_spec,
                                                             law="transfer"),
        "law attribute .*contradicts": lambda t: t.attrs.update(law="transfer"),
        "lacks s_ref": lambda t: t.attrs.pop("s_ref"),
        "file format abc": lambda t: t.attrs.update(file_format="abc"),
        "file format 1; .*refit": lambda t: t.attrs.update(file_format=1),
        "unknown law 'nope'": lambda t: t.attrs.update(model_spec=transfer_spec.replace(
            '"transfer"', '"nope"')),
        "non-finite draws": lambda t: t["posterior"].dataset["alpha"].values.__setitem__(
            (0, 0, 0), np.nan),
        "lacks group observed_data": lambda t: t.__delitem__("observed_data"),
    }
    for message, edit in cases.items():
        with pytest.raises(BimixInputError, match=message):
            Posterior.load(tampered("bad.nc", edit))

    with pytest.raises(BimixInputError, match="file not found"):
        Posterior.load(tmp_path / "missing.nc")


def test_predict_rejects_mixtures_with_unknown_or_missing_domains(posterior):
    with pytest.raises(BimixInputError, match="unknown domain"):
        posterior.predict(pd.DataFrame({"web": [0.5], "code": [0.2], "math": [0.2], "x": [0.1]},
                                       index=["m"]), [100])
    with pytest.raises(BimixInputError, match="missing domain"):
        posterior.predict(pd.DataFrame({"web": [0.5], "code": [0.5]}, index=["m"]), [100])


def test_a_point_fit_still_gets_an_observation_band(observations):
    draws = _draws(1, np.random.default_rng(0)).isel(chain=[0])
    post = Posterior.from_draws(draws, observations, spec=ModelSpec(law="bimix"), method="leastsq", s_ref=200)
    pred = post.predict(observations.mixtures(), [200], prob=0.9, band="new-run")
    width = (pred["upper"] - pred["lower"]) / pred["median"]
    # 90% of N(0, sqrt(0.05^2 + 0.02^2)) in log space: about 2 * 1.645 * 0.054 = 0.18 wide.
    assert float(width.mean()) == pytest.approx(0.18, rel=0.15)


def test_written_files_get_the_usual_permissions(posterior, tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        posterior.save(tmp_path / "fit.nc")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "fit.nc").st_mode) == 0o644
