"""Evidence that the Bayesian model is calibrated: SBC, interval coverage, bands on real data.

* :func:`sbc`: simulation-based calibration (Talts et al. 2018). Draw parameters from the prior,
  simulate observations with the model's own prior predictive at a fixed design, fit, and record
  the rank of each true value among thinned posterior draws. If inference is right every rank is
  uniform on ``0..n_rank_draws``; :func:`rank_uniformity` tests that per parameter.
* :func:`coverage`: simulated worlds (again drawn from the prior) fitted on some mixtures; the
  50 % / 90 % intervals of :meth:`Posterior.predict <bimix_bayes.posterior.Posterior.predict>` on
  held-out mixtures are scored against the world's true mean curve (``band="mean"``) and
  against a freshly simulated training run (``band="new-run"``).
* :func:`band_rows` and :func:`interval_coverage`: the same bands scored on real held-out runs.

Every replicate is an ordinary :meth:`BayesianBiMix.fit <bimix_bayes.model.BayesianBiMix.fit>`:
the one sampler path (:mod:`bimix_bayes.sampling`) compiles a design's structure once and swaps
in each replicate's losses, so SBC costs one compilation plus sampling.

Examples
--------
>>> from bimix_bayes.calibration import sbc, rank_uniformity              # doctest: +SKIP
>>> ranks = sbc(obs, n_replicates=50, estimator=BayesianBiMix(draws=300, tune=300, chains=2))
...                                                                        # doctest: +SKIP
>>> rank_uniformity(ranks)                                                 # doctest: +SKIP
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bimix_bayes.errors import BimixInputError
from bimix_bayes.model import BayesianBiMix, Design, prior_draws
from bimix_bayes.noise import OBSERVED_NAME
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import ModelSpec

#: Per-domain parameters whose posterior intervals :func:`coverage` checks against the truth.
_RECOVERED = ("log_c", "alpha", "u", "beta", "sigma", "sigma_run", "rho")
#: Noise models :func:`sbc` calibrates: those with the run offset integrated out (no latent
#: variable per run to rank).
SBC_NOISE = ("normal", "ar1")
#: Variables never ranked or treated as parameters.
_NOT_PARAMETERS = (OBSERVED_NAME, "mean_log_loss")


def default_estimator() -> BayesianBiMix:
    """The settings of calibration runs: the package's defaults with fewer, shorter chains."""
    return BayesianBiMix(law="bimix", draws=300, tune=300, chains=2)


def _fit(estimator: BayesianBiMix, observations: Observations, seed: int) -> BayesianBiMix:
    """A fresh copy of ``estimator`` fitted with ``seed`` (the cache keeps its compiled model)."""
    with warnings.catch_warnings():  # each replicate's diagnostics are recorded, not shouted
        warnings.simplefilter("ignore")
        return BayesianBiMix(**{**estimator.get_params(), "seed": seed}).fit(observations)


def observations_like(template: Observations, log_loss: np.ndarray) -> Observations:
    """``template``'s runs, mixtures and steps with losses ``exp(log_loss)``.

    Parameters
    ----------
    template : Observations
    log_loss : array (run, domain, step)
        On the grid of ``Design.from_observations(template)`` (evaluated domains); cells the
        template does not observe are ignored.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> obs = Observations.from_frame(pd.DataFrame({"run": ["a", "b"], "domain": ["x", "x"],
    ...     "proportion": [1.0, 1.0], "step": [10, 10], "loss": [2.0, 3.0]}))
    >>> observations_like(obs, np.zeros((2, 1, 1))).frame["loss"].tolist()
    [1.0, 1.0]
    """
    design = Design.from_observations(template)
    frame = template.frame.copy()
    rows = frame["loss"].notna()
    index = [{v: i for i, v in enumerate(design.coords[k])} for k in ("run", "domain", "step")]
    cells = tuple(frame.loc[rows, col].map(ix).to_numpy(dtype=int)
                  for col, ix in zip(("run", "domain", "step"), index, strict=True))
    frame.loc[rows, "loss"] = np.exp(np.asarray(log_loss, float)[cells])
    return Observations.from_frame(frame, source=f"<simulated like {template.source}>")


def _truth(draw: xr.Dataset, observations: Observations, spec: ModelSpec, s_ref: float
           ) -> Posterior:
    """One prior draw as a one-draw posterior: its predictions are the world's truth."""
    names = [v for v in draw.data_vars if v not in _NOT_PARAMETERS and "run" not in draw[v].dims]
    return Posterior.from_draws(draw[names].expand_dims(chain=[0], draw=[0]), observations,
                                spec=spec, method="truth", s_ref=s_ref)


def _progress(report: Callable[[str], None] | None, text: str) -> None:
    if report is not None:
        report(text)


# ------------------------------------------------------------------------------------ SBC
def _flat(ds: xr.Dataset, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Variables as columns of one array (their leading dim kept), headed ``name[label]``."""
    cols, labels = [], []
    for name in names:
        var = ds[name]
        inner = var.dims[1:]
        cols.append(var.to_numpy().reshape(var.shape[0], -1))
        for idx in np.ndindex(*var.shape[1:]):
            label = ",".join(str(var[d].values[i]) if d in var.coords else str(i)
                             for d, i in zip(inner, idx, strict=True))
            labels.append(f"{name}[{label}]" if inner else name)
    return np.concatenate(cols, axis=1), labels


def sbc(
    observations: Observations,
    n_replicates: int = 100,
    *,
    estimator: BayesianBiMix | None = None,
    n_rank_draws: int = 99,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    max_seconds: float | None = None,
) -> xr.Dataset:
    """Simulation-based calibration at the design of ``observations`` (their losses are unused).

    Each replicate draws every parameter from the prior, simulates the losses of the design with
    the model's prior predictive, fits, thins the posterior to ``n_rank_draws`` evenly spaced
    draws (to reduce autocorrelation) and counts the draws below the true value.

    Parameters
    ----------
    observations : Observations
        The design (runs, mixtures, steps).
    n_replicates : int
    estimator : BayesianBiMix, optional
        The model and sampler settings to calibrate (a noise of :data:`SBC_NOISE`; default
        :func:`default_estimator`); ``chains * draws`` must be at least ``n_rank_draws``.
    n_rank_draws : int
        Ranks take the values ``0..n_rank_draws``.
    seed : int
    progress : callable, optional
        Called with a line of text after each replicate.
    max_seconds : float, optional
        Stop after the replicate that exceeds this wall time; the result then holds fewer
        replicates.

    Returns
    -------
    xarray.Dataset
        ``rank`` (replicate, parameter) with parameter labels such as ``alpha[web]``; per
        replicate ``n_divergent``, ``max_rhat`` and ``seconds``; attributes ``n_rank_draws``,
        ``law``.

    Examples
    --------
    >>> ranks = sbc(obs, n_replicates=8)                                # doctest: +SKIP
    >>> rank_uniformity(ranks, n_bins=4)                                # doctest: +SKIP
    """
    est = estimator or default_estimator()
    if est.chains * est.draws < n_rank_draws:
        raise BimixInputError(f"chains * draws = {est.chains * est.draws} < n_rank_draws = "
                              f"{n_rank_draws}")
    if est.noise not in SBC_NOISE:
        raise BimixInputError(f"sbc simulates the {' and '.join(SBC_NOISE)} noise models only")
    prior = prior_draws(observations, est.spec(), draws=n_replicates, seed=seed)
    names = [v for v in prior.data_vars if v not in _NOT_PARAMETERS]
    truth, labels = _flat(prior, names)
    # Elements the prior fixes (the zero diagonal of the transfer matrix) have no rank.
    varying = truth.std(axis=0) > 0
    ranks = np.zeros((n_replicates, int(varying.sum())), dtype=int)
    n_div, max_rhat, seconds = (np.zeros(n_replicates) for _ in range(3))
    start, done = time.perf_counter(), n_replicates
    for i in range(n_replicates):
        fitted = _fit(est, observations_like(observations, prior[OBSERVED_NAME].isel(
            sample=i).to_numpy()), seed=seed + 1000 + i)
        post = fitted.posterior_
        samples = post.draws[names].stack(
            sample=("chain", "draw")).transpose("sample", ...)
        flat, _ = _flat(samples, names)
        keep = np.round(np.linspace(0, flat.shape[0] - 1, n_rank_draws)).astype(int)
        ranks[i] = (flat[keep][:, varying] < truth[i, varying]).sum(axis=0)
        d = post.diagnostics
        n_div[i], max_rhat[i], seconds[i] = d["n_divergent"], d.get("max_rhat", np.nan), d["seconds"]
        _progress(progress, f"sbc replicate {i + 1}/{n_replicates}: {d['n_divergent']} divergent, "
                            f"max R-hat {max_rhat[i]:.3f}, {seconds[i]:.1f} s")
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            done = i + 1
            _progress(progress, f"sbc: {max_seconds:.0f} s spent, stopping at {done} replicates")
            break
    ranks, n_div, max_rhat, seconds = ranks[:done], n_div[:done], max_rhat[:done], seconds[:done]
    return xr.Dataset(
        {"rank": (("replicate", "parameter"), ranks),
         "n_divergent": ("replicate", n_div.astype(int)),
         "max_rhat": ("replicate", max_rhat),
         "seconds": ("replicate", seconds)},
        coords={"replicate": np.arange(done),
                "parameter": [lab for lab, v in zip(labels, varying, strict=True) if v]},
        attrs={"n_rank_draws": n_rank_draws, "law": est.law, "draws": est.draws,
               "tune": est.tune, "chains": est.chains},
    )


def rank_uniformity(ranks: xr.Dataset, n_bins: int = 10) -> pd.DataFrame:
    """Chi-square test of uniform SBC ranks, per parameter and pooled (row ``all``).

    Ranks ``0..L`` fall in ``n_bins`` bins of (nearly) equal width; the expected count of each
    bin is its share of the ``L + 1`` possible ranks. The pooled row treats every parameter's
    ranks as one sample (they are not independent within a replicate: a screening check only).

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``; columns ``chi2``, ``p_value``, ``min_rank``, ``max_rank``,
        ``mean_rank`` (uniform: ``L / 2``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> r = xr.Dataset({"rank": (("replicate", "parameter"), np.tile(np.arange(10), (1, 1)).T)},
    ...                coords={"parameter": ["x"]}, attrs={"n_rank_draws": 9})
    >>> round(float(rank_uniformity(r, n_bins=5).loc["x", "p_value"]), 3)
    1.0
    """
    from scipy.stats import chisquare

    n_rank = int(ranks.attrs["n_rank_draws"])
    edges = np.linspace(0, n_rank + 1, n_bins + 1)
    expected_share = np.diff(np.floor(edges - 1e-9)) / (n_rank + 1)
    expected_share /= expected_share.sum()
    r = ranks["rank"].transpose("replicate", "parameter").to_numpy()
    columns = {str(p): r[:, j] for j, p in enumerate(ranks["parameter"].values)}
    columns["all"] = r.ravel()
    rows = {}
    for name, values in columns.items():
        counts = np.histogram(values, bins=edges)[0]
        chi2, p = chisquare(counts, expected_share * counts.sum())
        rows[name] = {"chi2": float(chi2), "p_value": float(p), "min_rank": int(values.min()),
                      "max_rank": int(values.max()), "mean_rank": float(values.mean())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameter")


# ------------------------------------------------------------------------------------ coverage
def band_rows(
    posterior: Posterior, observations: Observations, prob: float = 0.9, *,
    band: str = "new-run", seed: int = 0,
) -> pd.DataFrame:
    """Each evaluated row of ``observations`` with the posterior's central ``prob`` interval.

    Predicts every run of ``observations`` (its mixture at its steps, and its model size for a
    fit across sizes) with :meth:`Posterior.predict`; only the posterior's domains are kept.

    Returns
    -------
    pandas.DataFrame
        The rows' ``run, domain, step, loss`` plus ``lower``, ``upper`` and ``inside``.
    """
    groups = posterior.size_groups(observations)
    if len(groups) > 1:  # a fit across model sizes: each run at its own size
        return pd.concat([_band_rows(posterior, part, prob, band, seed, size)
                          for size, part in groups], ignore_index=True)
    return _band_rows(posterior, observations, prob, band, seed, groups[0][0])


def _band_rows(posterior: Posterior, observations: Observations, prob: float, band: str,
               seed: int, params: float | None) -> pd.DataFrame:
    f = observations.frame
    rows = f.loc[f["loss"].notna() & f["domain"].isin(posterior.domains),
                 ["run", "domain", "step", "loss"]].reset_index(drop=True)
    pred = posterior.predict(observations.mixtures()[posterior.sources],
                             steps=observations.steps, prob=prob, band=band,
                             seed=seed, params=params)
    at = {"mixture": xr.DataArray(rows["run"].to_numpy(), dims="row"),
          "domain": xr.DataArray(rows["domain"].to_numpy(), dims="row"),
          "step": xr.DataArray(rows["step"].to_numpy(dtype=int), dims="row")}
    rows["lower"] = pred["lower"].sel(at).to_numpy()
    rows["upper"] = pred["upper"].sel(at).to_numpy()
    rows["inside"] = (rows["lower"] <= rows["loss"]) & (rows["loss"] <= rows["upper"])
    return rows


def interval_coverage(
    posterior: Posterior, observations: Observations, prob: float = 0.9, *,
    band: str = "new-run", seed: int = 0,
) -> pd.DataFrame:
    """Share of observed losses inside the posterior's central ``prob`` interval.

    See :func:`band_rows`; ``band="new-run"`` scores the band of a new run (what an observed
    loss should fall in), ``"mean"`` the band of the mean curve.

    Returns
    -------
    pandas.DataFrame
        Index ``domain`` plus ``all``; columns ``n``, ``coverage``, ``prob``.
    """
    rows = band_rows(posterior, observations, prob, band=band, seed=seed)
    groups = [*rows.groupby("domain", sort=False), ("all", rows)]
    return pd.DataFrame({"n": [len(g) for _, g in groups],
                         "coverage": [float(g["inside"].mean()) for _, g in groups],
                         "prob": prob},
                        index=pd.Index([d for d, _ in groups], name="domain"))


def coverage(
    observations: Observations,
    heldout_mixtures: pd.DataFrame,
    n_worlds: int = 5,
    *,
    probs: Sequence[float] = (0.5, 0.9),
    estimator: BayesianBiMix | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Coverage of predictive intervals on held-out mixtures in worlds drawn from the prior.

    Each world draws the law's coefficients and noise scales from the prior, simulates the fitted
    runs of ``observations``' design, fits, and predicts ``heldout_mixtures`` at the design's
    steps. Mean-curve intervals (``band="mean"``) are scored against the world's true mean
    loss, new-run intervals (``band="new-run"``) against a new simulated run of each
    held-out mixture (its own run offset and residual noise).

    Parameters
    ----------
    observations : Observations
        Design of the fitted runs (their losses are unused).
    heldout_mixtures : pandas.DataFrame
        Index mixture name, one column per training domain.
    n_worlds : int
    probs : sequence of float
        Interval probabilities to score.
    estimator, seed, progress
        As for :func:`sbc`.

    Returns
    -------
    pandas.DataFrame
        One row per world x kind x prob; columns ``world``, ``kind``, ``prob``, ``n`` (points
        scored), ``covered`` (their share inside), ``n_divergent``. Kinds: ``mean`` and
        ``new-run`` (held-out predictions, above) and ``parameters`` (parameter recovery:
        the true ``log_c, alpha, u, beta, sigma, sigma_run`` of each domain (and ``rho`` for ar1
        noise) inside their central
        posterior interval).

    Examples
    --------
    >>> cov = coverage(obs, heldout, n_worlds=3)                               # doctest: +SKIP
    >>> cov.groupby(["kind", "prob"])["covered"].mean()                        # doctest: +SKIP
    """
    est = estimator or default_estimator()
    spec = est.spec()
    design = Design.from_observations(observations)
    prior = prior_draws(design, spec, draws=n_worlds, seed=seed)
    steps = design.coords["step"]
    records = []
    for w in range(n_worlds):
        world = prior.isel(sample=w)
        fitted = observations_like(observations, world[OBSERVED_NAME].to_numpy())
        truth = _truth(world, fitted, spec, design.s_ref)
        post = _fit(est, fitted, seed=seed + 1000 + w).posterior_
        true_mean = truth.predict(heldout_mixtures, steps, band="mean")["mean"]
        new_run = truth.predict(heldout_mixtures, steps, band="new-run",
                                seed=seed + 2000 + w)["loss_draws"].isel(sample=0)
        for prob in probs:
            for kind, target in (("mean", true_mean), ("new-run", new_run)):
                pred = post.predict(heldout_mixtures, steps, prob=prob,
                                    band=kind, seed=seed + 3000 + w)
                inside = (pred["lower"] <= target) & (target <= pred["upper"])
                records.append({"world": w, "kind": kind, "prob": prob, "n": int(inside.size),
                                "covered": float(inside.mean()),
                                "n_divergent": post.diagnostics["n_divergent"]})
            # Parameter recovery: the law's coefficients and noise scales inside their
            # central posterior interval.
            tail = (1 - prob) / 2
            names = [v for v in _RECOVERED if v in post.draws and v in world]
            q = post.draws[names].quantile([tail, 1 - tail], dim=("chain", "draw"))
            inside = (q.isel(quantile=0) <= world[names]) & (world[names] <= q.isel(quantile=1))
            hits = np.concatenate([inside[v].to_numpy().ravel() for v in names])
            records.append({"world": w, "kind": "parameters", "prob": prob, "n": hits.size,
                            "covered": float(hits.mean()),
                            "n_divergent": post.diagnostics["n_divergent"]})
        _progress(progress, f"coverage world {w + 1}/{n_worlds}: "
                            f"{post.diagnostics['n_divergent']} divergent, "
                            f"{post.diagnostics['seconds']:.1f} s")
    return pd.DataFrame.from_records(records)


