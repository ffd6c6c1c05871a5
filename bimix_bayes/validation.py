"""Evidence that the Bayesian model is right: SBC, interval coverage and law comparison.

* :func:`sbc`: simulation-based calibration (Talts et al. 2018). Draw parameters from the prior,
  simulate observations with the model's own prior predictive at a fixed design, fit, and record
  the rank of each true value among thinned posterior draws. If inference is right every rank is
  uniform on ``0..n_rank_draws``; :func:`rank_uniformity` tests that per parameter.
* :func:`coverage`: simulated worlds (again drawn from the prior) fitted on some mixtures; the
  50 % / 90 % intervals of :meth:`Posterior.predict <bimix_bayes.posterior.Posterior.predict>` on
  held-out mixtures are scored against the world's true mean curve (``observation=False``) and
  against a freshly simulated training run (``observation=True``).
* :func:`compare_laws`: plain BiMix against the transfer law by PSIS-LOO (ArviZ 1.x ``loo`` and
  ``compare``), leaving out one (run, domain) curve at a time, and optionally by held-out runs
  (MRE of the posterior-mean loss and coverage of the predictive band).

Refitting one design many times is dominated by compiling the model, so :class:`Refitter`
compiles it once with nutpie and swaps in new data (PyTensor shared variables).

Examples
--------
>>> from bimix_bayes.validation import compare_laws                      # doctest: +SKIP
>>> cmp = compare_laws(obs, heldout=test_obs, draws=500, tune=500)      # doctest: +SKIP
>>> print(cmp.summary())                                                # doctest: +SKIP
>>> cmp.table                                                           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bimix_bayes import diagnostics as diag
from bimix_bayes.errors import BimixInputError
from bimix_bayes.metrics import score
from bimix_bayes.model import CONTRACT, OBSERVED, BayesianBiMix, Design, Priors, build_model
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior

#: Design arrays that may change between refits of one compiled model (the shapes, the steps and
#: the domains must stay the same), besides the observed log-losses, which the model itself holds
#: as data (``model.OBSERVED``). The mask of observed cells joins them for normal noise; the
#: Student-t model indexes the observed cells when it is built, so there it is fixed.
_SHARED = ("own", "mixture", "centre")
#: Per-domain parameters whose posterior intervals :func:`coverage` checks against the truth.
_RECOVERED = ("log_c", "alpha", "u", "beta", "sigma", "sigma_run")
#: Variables never ranked or treated as parameters.
_NOT_PARAMETERS = ("log_loss", "mean_log_loss")


# ------------------------------------------------------------------------------------ refitting
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


class Refitter:
    """One compiled model of a design, refitted to new losses or mixtures of the same shape.

    Compiling dominates the cost of fitting a small model (a minute on a busy 2-core machine
    against about a second of sampling), so SBC and cross-validation compile once: the observed
    log-losses (the model's data), proportions, centres and mask are PyTensor shared variables
    that nutpie swaps per fit.

    Parameters
    ----------
    observations : Observations
        Fixes the design: domains, number of runs, steps and which cells are observed.
    law, noise, priors
        As for :class:`~bimix_bayes.model.BayesianBiMix`.
    draws, tune, chains : int
        nutpie settings of every fit.
    target_accept : float
    adaptation : str
        nutpie mass-matrix adaptation.

    Examples
    --------
    >>> refit = Refitter(obs, draws=200, tune=200)                         # doctest: +SKIP
    >>> prior = refit.prior_draws(10, seed=0)                              # doctest: +SKIP
    >>> post = refit.fit(prior["log_loss"].isel(sample=0).values, seed=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        observations: Observations,
        *,
        law: str = "bimix",
        noise: str = "normal",
        priors: Priors | None = None,
        draws: int = 300,
        tune: int = 300,
        chains: int = 2,
        target_accept: float = 0.9,
        adaptation: str = "low_rank",
    ) -> None:
        self.observations = observations
        self.law, self.noise, self.priors = law, noise, priors
        self.draws, self.tune, self.chains = draws, tune, chains
        self.target_accept, self.adaptation = target_accept, adaptation
        self.design = Design.from_observations(observations)
        self.shared = _SHARED + (("mask",) if noise == "normal" else ())
        self._model = self._compiled = None

    @property
    def model(self) -> Any:
        """The PyMC model, built on first use (its data are shared variables)."""
        if self._model is None:
            import pytensor

            shared = {k: pytensor.shared(getattr(self.design, k), name=f"bimix_{k}")
                      for k in self.shared}
            self._model = build_model(dataclasses.replace(self.design, **shared), law=self.law,
                                      noise=self.noise, priors=self.priors)
        return self._model

    def _design_of(self, observations: Observations) -> Design:
        d = Design.from_observations(observations)
        same = (d.log_loss.shape == self.design.log_loss.shape
                and ("mask" in self.shared or np.array_equal(d.mask, self.design.mask))
                and np.array_equal(d.steps, self.design.steps)
                and d.coords["domain"] == self.design.coords["domain"]
                and d.coords["source"] == self.design.coords["source"])
        if not same:
            raise BimixInputError(
                "these observations do not have the compiled design's shape (domains, sources, "
                "number of runs and steps must match); build a new Refitter",
                path=observations.source)
        return d

    def prior_draws(self, n: int, *, seed: int = 0) -> xr.Dataset:
        """``n`` prior draws of every model variable and the simulated ``log_loss``.

        Returns
        -------
        xarray.Dataset
            Dims ``sample`` first; ``log_loss`` (sample, run, domain, step) is the model's prior
            predictive (normal noise).
        """
        import pymc as pm

        if self.noise != "normal":
            raise BimixInputError("prior_draws simulates the normal-noise model only")
        with self.model:
            tree = pm.sample_prior_predictive(draws=n, random_seed=seed)
        prior = tree["prior"].to_dataset()
        prior["log_loss"] = tree["prior_predictive"]["log_loss"]
        return prior.stack(sample=("chain", "draw")).transpose("sample", ...).drop_vars(
            ["sample", "chain", "draw"])

    def fit(
        self, data: Observations | np.ndarray, *, seed: int = 0,
        observations: Observations | None = None,
    ) -> tuple[xr.DataTree, Posterior]:
        """Sample the posterior of new data of the compiled design.

        Parameters
        ----------
        data : Observations or array (run, domain, step)
            New observations of the same design, or new log-losses on the compiled design's grid
            (then the constructor's observations supply runs and mixtures).
        seed : int
        observations : Observations, optional
            Stored in the returned posterior when ``data`` is an array (default: the constructor's
            observations with ``data`` as their losses).

        Returns
        -------
        trace : xarray.DataTree
            nutpie's trace (every sampled variable and the sample stats).
        posterior : Posterior
            The contract's variables; its diagnostics are those of
            :func:`bimix_bayes.diagnostics.mcmc_diagnostics` on the contract's variables.
        """
        import nutpie

        if isinstance(data, Observations):
            design, obs = self._design_of(data), data
        else:
            design = dataclasses.replace(self.design, log_loss=np.asarray(data, float))
            obs = observations or observations_like(self.observations, design.log_loss)
        if self._compiled is None:
            self._compiled = nutpie.compile_pymc_model(self.model)
        # A law that does not use an array (plain BiMix ignores the whole mixture) has no such
        # shared variable in its compiled graph.
        used = {var.name for var in self._compiled.shared_var_keys}
        updates = {f"bimix_{k}": np.asarray(getattr(design, k), float) for k in self.shared
                   if f"bimix_{k}" in used}
        # The Student-t model observes only the observed cells, in C order.
        updates[OBSERVED] = (design.log_loss if self.noise == "normal"
                             else design.log_loss[np.nonzero(design.mask)])
        compiled = self._compiled.with_data(**updates)
        start = time.perf_counter()
        trace = nutpie.sample(compiled, draws=self.draws, tune=self.tune, chains=self.chains,
                              seed=seed, adaptation=self.adaptation,
                              target_accept=self.target_accept, progress_bar=False,
                              save_warmup=False)
        post = trace["posterior"].to_dataset()
        names = [v for v in CONTRACT if v in post]
        d = diag.mcmc_diagnostics(trace, var_names=names)
        d.update(method="nuts", seconds=time.perf_counter() - start)
        stats = trace["sample_stats"].to_dataset()
        posterior = Posterior.from_draws(
            post[names], obs, law=self.law, method="nuts", s_ref=design.s_ref,
            config={"law": self.law, "noise": self.noise, "draws": self.draws, "tune": self.tune,
                    "chains": self.chains, "seed": seed, "adaptation": self.adaptation,
                    "target_accept": self.target_accept,
                    "priors": dataclasses.asdict(self.priors or Priors())},
            sample_stats=stats[["diverging"]] if "diverging" in stats else None, diagnostics=d)
        return trace, posterior


def _truth(draw: xr.Dataset, observations: Observations, law: str, s_ref: float) -> Posterior:
    """One prior draw as a one-draw posterior: its predictions are the world's truth."""
    names = [v for v in CONTRACT if v in draw]
    return Posterior.from_draws(draw[names].expand_dims(chain=[0], draw=[0]), observations,
                                law=law, method="truth", s_ref=s_ref)


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
    law: str = "bimix",
    priors: Priors | None = None,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    n_rank_draws: int = 99,
    target_accept: float = 0.9,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    refitter: Refitter | None = None,
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
    law, priors
        The model to calibrate (normal noise).
    draws, tune, chains, target_accept
        nutpie settings per fit; ``chains * draws`` must be at least ``n_rank_draws``.
    n_rank_draws : int
        Ranks take the values ``0..n_rank_draws``.
    seed : int
    progress : callable, optional
        Called with a line of text after each replicate.
    refitter : Refitter, optional
        A compiled model of this design to reuse (default: compile one).
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
    >>> ranks = sbc(obs, n_replicates=8, draws=150, tune=200)          # doctest: +SKIP
    >>> rank_uniformity(ranks, n_bins=4)                                # doctest: +SKIP
    """
    if chains * draws < n_rank_draws:
        raise BimixInputError(f"chains * draws = {chains * draws} < n_rank_draws = {n_rank_draws}")
    refit = refitter or Refitter(observations, law=law, priors=priors, draws=draws, tune=tune,
                                 chains=chains, target_accept=target_accept)
    prior = refit.prior_draws(n_replicates, seed=seed)
    names = [v for v in prior.data_vars if v not in _NOT_PARAMETERS]
    truth, labels = _flat(prior, names)
    # Elements the prior fixes (the zero diagonal of the transfer matrix) have no rank.
    varying = truth.std(axis=0) > 0
    ranks = np.zeros((n_replicates, int(varying.sum())), dtype=int)
    n_div, max_rhat, seconds = (np.zeros(n_replicates) for _ in range(3))
    start, done = time.perf_counter(), n_replicates
    for i in range(n_replicates):
        trace, post = refit.fit(prior["log_loss"].isel(sample=i).to_numpy(),
                                seed=seed + 1000 + i)
        samples = trace["posterior"].to_dataset()[names].stack(
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
        attrs={"n_rank_draws": n_rank_draws, "law": law, "draws": draws, "tune": tune,
               "chains": chains},
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
    observation: bool = True, seed: int = 0,
) -> pd.DataFrame:
    """Each evaluated row of ``observations`` with the posterior's central ``prob`` interval.

    Predicts every run of ``observations`` (its mixture at its steps) with
    :meth:`Posterior.predict`; only the posterior's domains are kept.

    Returns
    -------
    pandas.DataFrame
        The rows' ``run, domain, step, loss`` plus ``lower``, ``upper`` and ``inside``.
    """
    f = observations.frame
    rows = f.loc[f["loss"].notna() & f["domain"].isin(posterior.domains),
                 ["run", "domain", "step", "loss"]].reset_index(drop=True)
    pred = posterior.predict(observations.mixtures()[posterior.sources],
                             steps=observations.steps, prob=prob, observation=observation,
                             seed=seed)
    at = {"mixture": xr.DataArray(rows["run"].to_numpy(), dims="row"),
          "domain": xr.DataArray(rows["domain"].to_numpy(), dims="row"),
          "step": xr.DataArray(rows["step"].to_numpy(dtype=int), dims="row")}
    rows["lower"] = pred["lower"].sel(at).to_numpy()
    rows["upper"] = pred["upper"].sel(at).to_numpy()
    rows["inside"] = (rows["lower"] <= rows["loss"]) & (rows["loss"] <= rows["upper"])
    return rows


def interval_coverage(
    posterior: Posterior, observations: Observations, prob: float = 0.9, *,
    observation: bool = True, seed: int = 0,
) -> pd.DataFrame:
    """Share of observed losses inside the posterior's central ``prob`` interval.

    See :func:`band_rows`; ``observation=True`` scores the band of a new run (what an observed
    loss should fall in), ``False`` the band of the mean curve.

    Returns
    -------
    pandas.DataFrame
        Index ``domain`` plus ``all``; columns ``n``, ``coverage``, ``prob``.
    """
    rows = band_rows(posterior, observations, prob, observation=observation, seed=seed)
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
    law: str = "bimix",
    priors: Priors | None = None,
    draws: int = 300,
    tune: int = 300,
    chains: int = 2,
    target_accept: float = 0.9,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    refitter: Refitter | None = None,
) -> pd.DataFrame:
    """Coverage of predictive intervals on held-out mixtures in worlds drawn from the prior.

    Each world draws the law's coefficients and noise scales from the prior, simulates the fitted
    runs of ``observations``' design, fits, and predicts ``heldout_mixtures`` at the design's
    steps. Mean-curve intervals (``observation=False``) are scored against the world's true mean
    loss, observation intervals (``observation=True``) against a new simulated run of each
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
    law, priors, draws, tune, chains, target_accept, seed, progress, refitter
        As for :func:`sbc`.

    Returns
    -------
    pandas.DataFrame
        One row per world x kind x prob; columns ``world``, ``kind``, ``prob``, ``n`` (points
        scored), ``covered`` (their share inside), ``n_divergent``. Kinds: ``mean`` and
        ``observation`` (held-out predictions, above) and ``parameters`` (parameter recovery:
        the true ``log_c, alpha, u, beta, sigma, sigma_run`` of each domain inside their central
        posterior interval).

    Examples
    --------
    >>> cov = coverage(obs, heldout, n_worlds=3, draws=200, tune=200)         # doctest: +SKIP
    >>> cov.groupby(["kind", "prob"])["covered"].mean()                        # doctest: +SKIP
    """
    refit = refitter or Refitter(observations, law=law, priors=priors, draws=draws, tune=tune,
                                 chains=chains, target_accept=target_accept)
    prior = refit.prior_draws(n_worlds, seed=seed)
    steps = refit.design.coords["step"]
    records = []
    for w in range(n_worlds):
        world = prior.isel(sample=w)
        fitted = observations_like(observations, world["log_loss"].to_numpy())
        truth = _truth(world, fitted, refit.law, refit.design.s_ref)
        _, post = refit.fit(world["log_loss"].to_numpy(), seed=seed + 1000 + w,
                            observations=fitted)
        true_mean = truth.predict(heldout_mixtures, steps)["mean"]
        new_run = truth.predict(heldout_mixtures, steps, observation=True,
                                seed=seed + 2000 + w)["loss_draws"].isel(sample=0)
        for prob in probs:
            for kind, target in (("mean", true_mean), ("observation", new_run)):
                pred = post.predict(heldout_mixtures, steps, prob=prob,
                                    observation=kind == "observation", seed=seed + 3000 + w)
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


# ------------------------------------------------------------------------------------ LOO
def curve_log_likelihood(estimator: BayesianBiMix) -> xr.Dataset:
    """Pointwise log-likelihood of each observed (run, domain) curve of a fitted estimator.

    With normal noise the run offset is integrated out of the model, so one curve's
    log-likelihood is a proper leave-one-curve-out unit. With Student-t noise the unit is one
    checkpoint (conditional on its run offset). Curves with no observation are dropped.

    Returns
    -------
    xarray.Dataset
        ``log_loss`` with dims ``(chain, draw, curve)``; ``curve`` is labelled ``run|domain``
        (or the checkpoint index for Student-t noise).
    """
    import pymc as pm

    ll = pm.compute_log_likelihood(estimator.trace_, model=estimator.model_,
                                   extend_inferencedata=False, progressbar=False)
    ll = (ll["log_likelihood"] if isinstance(ll, xr.DataTree) else ll)["log_loss"]
    if estimator.noise == "normal":
        design = Design.from_observations(estimator.posterior_.observations)
        observed = design.mask.sum(axis=-1) > 0
        ll = ll.stack(curve=("run", "domain")).transpose("chain", "draw", "curve")
        labels = [f"{r}|{d}" for r, d in ll["curve"].values]
        ll = ll.drop_vars(["curve", "run", "domain"]).assign_coords(curve=labels)
        ll = ll.isel(curve=np.flatnonzero(observed.ravel()))
    else:
        ll = ll.rename(obs="curve")
    return xr.Dataset({"log_loss": ll})


@dataclass(frozen=True)
class LawComparison:
    """Result of :func:`compare_laws`.

    Attributes
    ----------
    table : pandas.DataFrame
        ArviZ's comparison table (index law; ``elpd``, ``elpd_diff``, ``dse``, ``weight``, ...),
        best law first.
    loo : dict
        Law name -> ArviZ ELPD data (pointwise, with Pareto k).
    posteriors : dict
        Law name -> :class:`~bimix_bayes.posterior.Posterior`.
    heldout : pandas.DataFrame or None
        Index law; ``mre`` (posterior-mean loss), ``coverage`` (of the predictive band),
        ``prob``, ``n`` on the held-out observations.
    """

    table: pd.DataFrame
    loo: dict[str, Any]
    posteriors: dict[str, Posterior]
    heldout: pd.DataFrame | None

    @property
    def best(self) -> str:
        """The law with the highest estimated elpd."""
        return str(self.table.index[0])

    def summary(self) -> str:
        """A few lines: which law wins by PSIS-LOO and on held-out data, and by how much."""
        t = self.table
        other = t.index[1]
        # ArviZ 1.x reports elpd_diff of a worse model as negative; state the margin as positive.
        diff, se = abs(float(t.loc[other, "elpd_diff"])), float(t.loc[other, "dse"])
        lines = [f"PSIS-LOO (leave one curve out): {self.best} wins by elpd {diff:.1f} "
                 f"(SE {se:.1f}, {diff / se if se > 0 else np.inf:.1f} SE) over {other}"]
        unreliable = 0
        for name, elpd in self.loo.items():
            k = np.asarray(elpd.pareto_k).ravel()
            unreliable += int((k > 0.7).sum())
            lines.append(f"  {name}: elpd_loo {elpd.elpd:.1f} (SE {elpd.se:.1f}), p_loo "
                         f"{elpd.p:.1f}, {int((k > 0.7).sum())}/{k.size} curves with Pareto k > 0.7")
        if unreliable:
            lines.append("  Pareto k > 0.7: those curves' PSIS estimates are unreliable (each curve "
                         "is influential); trust the held-out comparison (exact refits) more")
        if self.heldout is not None:
            h = self.heldout
            lines.append("held-out runs: " + "; ".join(
                f"{law} MRE {r.mre:.4f}, {r.prob:.0%} band coverage {r.coverage:.3f}"
                for law, r in h.iterrows()))
        return "\n".join(lines)


def compare_laws(
    observations: Observations,
    *,
    heldout: Observations | None = None,
    laws: Sequence[str] = ("bimix", "transfer"),
    noise: str = "normal",
    prob: float = 0.9,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    **options: Any,
) -> LawComparison:
    """Fit each law to ``observations`` and compare them by PSIS-LOO and on held-out runs.

    Parameters
    ----------
    observations : Observations
        What every law is fitted to.
    heldout : Observations, optional
        Runs not fitted on (same training domains): scored by MRE of the posterior-mean loss and
        the coverage of the central ``prob`` observation band.
    laws : sequence of str
        Laws of :class:`~bimix_bayes.model.BayesianBiMix` to compare.
    noise : {"normal", "student"}
        Noise model; with "normal" the LOO unit is a (run, domain) curve, with "student" a
        checkpoint.
    prob : float
    draws, tune, chains, seed, **options
        Passed to :class:`~bimix_bayes.model.BayesianBiMix`.

    Returns
    -------
    LawComparison

    Examples
    --------
    >>> cmp = compare_laws(obs, heldout=test, draws=500, tune=500, chains=2)   # doctest: +SKIP
    >>> cmp.best, cmp.table[["elpd", "elpd_diff", "dse"]]                      # doctest: +SKIP
    """
    import arviz as az

    if len(laws) < 2:
        raise BimixInputError("compare_laws needs at least two laws")
    trees, loo, posteriors, held = {}, {}, {}, {}
    for law in laws:
        est = BayesianBiMix(law=law, noise=noise, draws=draws, tune=tune, chains=chains,
                            seed=seed, **options).fit(observations)
        trees[law] = xr.DataTree.from_dict({
            "posterior": est.trace_["posterior"].to_dataset(),
            "log_likelihood": curve_log_likelihood(est),
        })
        loo[law] = az.loo(trees[law], pointwise=True)
        posteriors[law] = est.posterior_
        if heldout is not None:
            s = score(est.posterior_, heldout).loc["all"]
            c = interval_coverage(est.posterior_, heldout, prob, seed=seed).loc["all"]
            held[law] = {"mre": float(s["mre"]), "coverage": c["coverage"], "prob": prob,
                         "n": int(s["n"])}
    table = az.compare(loo, round_to="none")
    return LawComparison(
        table=table, loo=loo, posteriors=posteriors,
        heldout=pd.DataFrame.from_dict(held, orient="index").rename_axis("law") if held else None)
