"""The hierarchical Bayesian model of a data-mixing law (PyMC) and its estimator.

A model is a law (:mod:`bimix_bayes.laws`: its priors, the parameterisation it samples and its
mean log-loss) plus a noise model (:mod:`bimix_bayes.noise`: the likelihood of the observed
log-losses around that mean), named by a :class:`~bimix_bayes.spec.ModelSpec`. This module only
cuts the arrays out of the observations (:class:`Design`), joins the two components into one PyMC
model (:func:`build_model`) and wraps sampling (:mod:`bimix_bayes.sampling`) in an sklearn-style
estimator (:class:`BayesianBiMix`) whose result is a :class:`~bimix_bayes.posterior.Posterior`.

The observed losses and the mask of observed cells are PyMC data (shared variables), so one
compiled model serves every refit of the same design with new losses or with runs masked out. The
priors are justified by :func:`prior_predictive`: losses of a few nats that decrease in steps and in
a domain's own share.

Examples
--------
>>> from bimix_bayes.observations import Observations
>>> obs = Observations.read_csv("observations.csv")                       # doctest: +SKIP
>>> est = BayesianBiMix(draws=1000, tune=1000, chains=4).fit(obs)         # doctest: +SKIP
>>> est.posterior_.predict(obs.mixtures().iloc[:2], steps=[2000])         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from bimix_bayes import diagnostics as diag
from bimix_bayes import laws, sampling, scale
from bimix_bayes.errors import BimixInputError
from bimix_bayes.noise import OBSERVED_NAME
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import APPROXIMATE, ModelSpec, SamplerConfig

#: The observed log-losses are data, so a compiled model can be reused with new losses.
OBSERVED = "observed_log_loss"
#: Design arrays that are data of the model (see :func:`build_model`); the others are constants.
DATA = ("mask",)
#: Laws ``law="auto"`` chooses among, simplest first.
AUTO_LAWS = ("bimix", "transfer")


@dataclass(frozen=True)
class Design:
    """The arrays a model is built from, cut from :class:`Observations`.

    Attributes
    ----------
    log_loss : array (run, domain, step)
        Observed log-loss, 0 where not observed (see ``mask``).
    mask : array (run, domain, step)
        1.0 where a loss was observed.
    own : array (run, domain)
        Each evaluated domain's own proportion.
    mixture : array (run, source)
        The whole mixture over every training domain.
    steps : array (step,)
    s_ref : float
        Geometric mean of the steps.
    centre : array (domain,)
        Mean log of each domain's non-zero proportions.
    coords : dict
        ``run``, ``domain`` (evaluated), ``source`` (training domains), ``step``.
    params : array (run,) or None
        Each run's model size N when the runs span several sizes (:mod:`bimix_bayes.scale`),
        else None.
    params_ref : float or None
        ``N_ref``, the geometric mean of the distinct sizes, with ``params``.
    """

    log_loss: np.ndarray
    mask: np.ndarray
    own: np.ndarray
    mixture: np.ndarray
    steps: np.ndarray
    s_ref: float
    centre: np.ndarray
    coords: dict[str, list[Any]] = field(default_factory=dict)
    #: Most observed points on one (run, domain) curve. A field, not derived from ``mask``: a
    #: fold that masks runs out keeps the structure (and the compiled model) of the whole design.
    points_per_curve: int = 2
    params: np.ndarray | None = None
    params_ref: float | None = None

    @property
    def has_step_axis(self) -> bool:
        """Whether the losses span more than one step: with one step a law's step term is not
        identified, and the law samples its reduced form (see :meth:`bimix_bayes.laws.Law.build`)."""
        return len(self.steps) > 1

    @property
    def has_curves(self) -> bool:
        """Whether some (run, domain) curve has more than one observed point: with one point per
        curve the run offset and the residual are one scatter, and the noise model samples one
        scale (see :meth:`bimix_bayes.noise.Noise.build`)."""
        return self.points_per_curve > 1

    @property
    def has_size_axis(self) -> bool:
        """Whether the runs span several model sizes: the law's size slopes are sampled
        (:func:`bimix_bayes.scale.build`)."""
        return self.params is not None

    @property
    def size(self) -> np.ndarray | None:
        """Each run's ``x = log(N / N_ref)``, or None at one size."""
        return None if self.params is None else np.log(self.params / self.params_ref)

    @classmethod
    def from_observations(cls, observations: Observations) -> Design:
        ds = observations.to_dataset()
        domains = observations.evaluated_domains
        sources = observations.sources
        loss = ds["loss"].sel(domain=domains).to_numpy().astype(float)
        mask = np.isfinite(loss)
        own = ds["proportion"].sel(domain=domains).to_numpy().astype(float)
        steps = ds["step"].to_numpy().astype(float)
        with np.errstate(divide="ignore"):
            log_own = np.where(own > 0, np.log(np.where(own > 0, own, 1.0)), np.nan)
        trained = np.isfinite(log_own).any(axis=0)
        centre = np.where(trained, np.nanmean(np.where(trained, log_own, 0.0), axis=0),
                          np.log(1e-3))
        several = len(observations.distinct_sizes) > 1
        return cls(
            log_loss=np.where(mask, np.log(np.where(mask, loss, 1.0)), 0.0),
            mask=mask.astype(float),
            own=own,
            mixture=ds["proportion"].sel(domain=sources).to_numpy().astype(float),
            steps=steps,
            s_ref=float(np.exp(np.mean(np.log(steps)))),
            centre=centre,
            points_per_curve=int(mask.sum(axis=-1).max()),
            params=observations.sizes.to_numpy(float) if several else None,
            params_ref=scale.reference(observations.distinct_sizes) if several else None,
            coords={"run": list(observations.runs), "domain": list(domains),
                    "source": list(sources), "step": [int(s) for s in steps],
                    **({"size": observations.distinct_sizes} if several else {})},
        )




def build_model(observations: Observations | Design, spec: ModelSpec | None = None, *,
                store_mean: bool = False) -> pm.Model:
    """The PyMC model of ``observations`` under ``spec`` (coords ``run, domain, step, source``).

    The law's parameters and every sampled variable carry the names of the components
    (:attr:`bimix_bayes.laws.Law.parameters`, :attr:`bimix_bayes.noise.Noise.parameters`); the
    observed variable is ``log_loss``. The observed log-losses are PyMC data named
    :data:`OBSERVED`, and so is the mask (``mask``) where the noise model lets it change; the
    mixtures are constants. ``store_mean`` adds the noise-free curve ``mean_log_loss``
    (run, domain, step) as a deterministic (large: for prior checks only).

    Examples
    --------
    >>> obs = _example()
    >>> sorted(build_model(obs).coords)
    ['domain', 'run', 'source', 'step']
    """
    spec = spec or ModelSpec()
    law, noise = spec.law_component, spec.noise_component
    d = observations if isinstance(observations, Design) else Design.from_observations(observations)
    targets = [t for t in d.coords["domain"] if t not in d.coords["source"]]
    if targets and not law.sees_other_domains:
        raise BimixInputError(
            f"law {law.name!r} predicts each domain from its own share, and no run trained on "
            f"{', '.join(targets)}: use a law with cross-domain terms "
            f"({', '.join(n for n in laws.names() if laws.get(n).sees_other_domains)}) or auto")
    shared = [k for k in DATA if k != "mask" or noise.mask_is_data]
    with pm.Model(coords=d.coords) as model:
        # Static shapes, as constants would have: one profiled fit sampled about twice as slowly
        # without them (shape-generic compiled loops).
        data = dataclasses.replace(
            d, log_loss=pm.Data(OBSERVED, d.log_loss, dims=("run", "domain", "step"),
                                shape=d.log_loss.shape),
            **{k: pm.Data(k, getattr(d, k), shape=np.shape(getattr(d, k))) for k in shared})
        params = law.build(data, spec.law_priors)
        offset = 0.0
        if d.has_size_axis:
            params, offset = scale.build(law, params, d)
        # Laws take the domain axis last: evaluate on (run, step, domain), then transpose.
        mu = (law.log_loss(params, data.own[:, None, :], data.mixture[:, None, :],
                           d.steps[None, :, None], d.s_ref, xp=_pt()) + offset).transpose(0, 2, 1)
        if store_mean:
            pm.Deterministic("mean_log_loss", mu, dims=("run", "domain", "step"))
        noise.build(mu, data, spec.noise_priors)
    return model


def _pt() -> Any:
    import pytensor.tensor as pt

    return pt


def prior_draws(observations: Observations | Design, spec: ModelSpec | None = None, *,
                draws: int = 500, seed: int = 0) -> xr.Dataset:
    """Prior draws of every model variable and a simulated ``log_loss`` at the design.

    Returns
    -------
    xarray.Dataset
        Dims ``sample`` first; ``mean_log_loss`` and ``log_loss`` are ``(sample, run, domain,
        step)``, the simulated one NaN where the design observes nothing.
    """
    design = (observations if isinstance(observations, Design)
              else Design.from_observations(observations))
    with build_model(design, spec, store_mean=True):
        tree = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    prior = tree["prior"].to_dataset().stack(sample=("chain", "draw"))
    simulated = tree["prior_predictive"][OBSERVED_NAME].stack(sample=("chain", "draw")).to_numpy()
    cube = np.full((*design.mask.shape, simulated.shape[-1]), np.nan)
    observed = np.nonzero(design.mask)
    # Normal noise simulates the whole (run, domain, step) cube; Student-t the observed cells.
    cube[observed] = (simulated.reshape(-1, simulated.shape[-1])
                      if simulated.ndim == 2 else simulated[observed])
    dims = ("run", "domain", "step")
    out = prior.drop_vars(["sample", "chain", "draw"]).transpose("sample", ...)
    out[OBSERVED_NAME] = (("sample", *dims), np.moveaxis(cube, -1, 0))
    out.attrs["s_ref"] = design.s_ref
    return out


def parameter_prior(observations: Observations | Design, spec: ModelSpec | None = None, *,
                    draws: int = 1000, seed: int = 0) -> xr.Dataset:
    """Prior draws of the law's parameters only (dims ``chain, draw, ...``), as ArviZ's ``prior``.

    Nothing is simulated and the sampler is compiled without numba, so this takes a few tenths
    of a second where :func:`prior_draws` takes seconds (the posterior file's ``prior`` group,
    :func:`bimix_bayes.diagnostics.contraction`).
    """
    spec = spec or ModelSpec()
    design = (observations if isinstance(observations, Design)
              else Design.from_observations(observations))
    names = list(spec.law_component.parameters)
    quiet = logging.getLogger("pymc.sampling.forward")  # its "Sampling: [...]" line is noise here
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with build_model(design, spec):
            tree = pm.sample_prior_predictive(draws=draws, var_names=names, random_seed=seed,
                                              compile_kwargs={"mode": "FAST_COMPILE"})
    finally:
        quiet.setLevel(level)
    return tree["prior"].to_dataset()[names]


def prior_predictive(observations: Observations, spec: ModelSpec | None = None, *,
                     draws: int = 500, seed: int = 0) -> xr.Dataset:
    """Prior draws of the law's parameters and of the losses the model expects at this design.

    The design (runs' mixtures and evaluation steps) comes from ``observations``; their losses
    are not used.

    Returns
    -------
    xarray.Dataset
        The law's and noise's parameters (``sample, ...``), ``mean_loss`` (the noise-free curve)
        and ``loss`` (a simulated observation), both ``(sample, run, domain, step)`` in nats,
        where the design has a loss.

    Examples
    --------
    >>> pp = prior_predictive(_example(), draws=50)
    >>> bool((pp["mean_loss"].isel(step=0) > pp["mean_loss"].isel(step=1)).all())
    True
    """
    spec = spec or ModelSpec()
    design = Design.from_observations(observations)
    prior = prior_draws(design, spec, draws=draws, seed=seed)
    names = [v for v in (*spec.law_component.parameters, *spec.noise_component.parameters)
             if v in prior]
    observed = xr.DataArray(design.mask > 0, dims=("run", "domain", "step"),
                            coords={k: design.coords[k] for k in ("run", "domain", "step")})
    out = prior[names]
    out["mean_loss"] = np.exp(prior["mean_log_loss"]).where(observed)
    out["loss"] = np.exp(prior[OBSERVED_NAME])
    return out


def prior_of(post: Posterior, draws: int = 500, seed: int = 0) -> xr.Dataset | None:
    """Prior draws of a fitted posterior's parameters (the spec it recorded: law, noise, priors).

    None for a fit without a prior (least squares). Used to draw the prior beside the posterior:
    the law's parameters (dims ``sample, ...``), from the file's ``prior`` group where it has one
    (``bimix fit`` writes it), else drawn by :func:`parameter_prior`.

    Examples
    --------
    >>> prior = prior_of(Posterior.load("fit.nc"))                             # doctest: +SKIP
    """
    if not post.sampler_config:
        return None
    prior = post.prior
    if prior is None:
        prior = parameter_prior(post.observations, post.spec, draws=draws, seed=seed)
    stacked = prior.stack(sample=("chain", "draw")).transpose("sample", ...)
    return stacked.drop_vars(["sample", "chain", "draw"])


def _example() -> Observations:
    """Two domains, two runs, two steps: the docstrings' toy observations."""
    import pandas as pd

    return Observations.from_frame(pd.DataFrame({
        "run": ["a"] * 4 + ["b"] * 4, "domain": ["web", "web", "code", "code"] * 2,
        "proportion": [0.7, 0.7, 0.3, 0.3, 0.2, 0.2, 0.8, 0.8],
        "step": [100, 1000] * 4, "loss": [3.4, 3.1, 2.3, 2.0, 3.7, 3.3, 2.0, 1.8]}))


# -------------------------------------------------------------------------------- estimator
class BayesianBiMix:
    """Fit a hierarchical Bayesian data-mixing law; sklearn-style (cheap constructor, ``fit``).

    The constructor's arguments are those of :class:`~bimix_bayes.spec.ModelSpec` (what is
    fitted) and :class:`~bimix_bayes.spec.SamplerConfig` (how it is sampled); see those for their
    meaning.

    Parameters
    ----------
    law : str
        ``"auto"`` (the default): the law is chosen among :data:`AUTO_LAWS` by grouped
        cross-validation over mixtures (:func:`bimix_bayes.comparison.select_law`; the simpler
        law unless the other is better by more than one standard error; with fewer than four
        distinct mixtures, the simplest), and every candidate's held-out score and the choice are
        recorded in the posterior file. Or a registered law by name (:func:`bimix_bayes.laws.names`),
        e.g. ``"bimix"`` (own share only) or ``"transfer"`` (cross-domain transfer).
    noise : {"normal", "student", "ar1"}
        Residual distribution of log-loss (Student-t resists outlying checkpoints; ar1 lets
        residuals wander along a curve).
    law_priors, noise_priors : dataclass, optional
        The components' ``Priors``.
    method, draws, tune, chains, seed, adaptation, target_accept, retry_target_accept, progressbar
        The sampler settings.

    Attributes
    ----------
    model_ : pymc.Model
    trace_ : xarray.DataTree
        Everything the sampler returned (all sampled variables, sample stats).
    posterior_ : Posterior
        The draws, observations, spec, sampler settings and diagnostics, as written to file.
    diagnostics_ : dict
        See :func:`bimix_bayes.diagnostics.mcmc_diagnostics`; ``seconds`` is the wall time of
        model building, compilation and sampling.
    selection_ : bimix_bayes.comparison.LawSelection or None
        With ``law="auto"``: every candidate's held-out score and the choice.

    Examples
    --------
    >>> est = BayesianBiMix(draws=300, tune=300, chains=2, seed=1).fit(obs)   # doctest: +SKIP
    >>> est.diagnostics_["trustworthy"]                                         # doctest: +SKIP
    True
    >>> BayesianBiMix.from_posterior("fit.nc").get_params()["law"]            # doctest: +SKIP
    'bimix'
    """

    def __init__(
        self,
        law: str = "auto",
        noise: str = "normal",
        method: str = "nuts",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        seed: int = 0,
        law_priors: Any = None,
        noise_priors: Any = None,
        adaptation: str = "low_rank",
        target_accept: float = 0.95,
        retry_target_accept: float | None = 0.99,
        progressbar: bool = False,
    ) -> None:
        self.law = law
        self.noise = noise
        self.method = method
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.seed = seed
        self.law_priors = law_priors
        self.noise_priors = noise_priors
        self.adaptation = adaptation
        self.target_accept = target_accept
        self.retry_target_accept = retry_target_accept
        self.progressbar = progressbar

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (scikit-learn's ``clone`` uses them)."""
        return {f: getattr(self, f) for f in (
            "law", "noise", "method", "draws", "tune", "chains", "seed", "law_priors",
            "noise_priors", "adaptation", "target_accept", "retry_target_accept", "progressbar")}

    def spec(self, law: str | None = None) -> ModelSpec:
        """The model spec these settings name, with ``law`` in place of ``"auto"`` (unknown law
        or noise: :class:`BimixInputError`)."""
        law = law or (AUTO_LAWS[0] if self.law == "auto" else self.law)
        return ModelSpec(law=law, noise=self.noise, law_priors=self.law_priors,
                         noise_priors=self.noise_priors)

    def sampler_config(self) -> SamplerConfig:
        """The sampler settings."""
        return SamplerConfig(
            method=self.method, draws=self.draws, tune=self.tune, chains=self.chains,
            seed=self.seed, adaptation=self.adaptation, target_accept=self.target_accept,
            retry_target_accept=self.retry_target_accept, progressbar=self.progressbar)

    def check_settings(self) -> None:
        """Raise :class:`BimixInputError` for settings that cannot work (``fit`` calls it first)."""
        self.spec()
        self.sampler_config().check()

    @classmethod
    def from_posterior(cls, posterior: Posterior | str | os.PathLike[str]) -> BayesianBiMix:
        """The estimator that made a posterior (or its file), unfitted.

        Raises
        ------
        BimixInputError
            For a posterior not made by this estimator (least squares, a simulated truth).
        """
        post = posterior if isinstance(posterior, Posterior) else Posterior.load(posterior)
        if not post.sampler_config:
            raise BimixInputError(f"this posterior comes from method {post.method!r}, not from "
                                  "a Bayesian fit: there is no estimator to rebuild")
        spec, config = post.spec, SamplerConfig.from_dict(post.sampler_config)
        return cls(law=spec.law, noise=spec.noise, law_priors=spec.law_priors,
                   noise_priors=spec.noise_priors, **config.to_dict())

    def fit(self, observations: Observations) -> BayesianBiMix:
        """Sample the posterior of ``observations``; sets ``model_, trace_, posterior_``.

        Warns with :class:`~bimix_bayes.diagnostics.UntrustworthyFitWarning` (and a remedy)
        when the diagnostics fail.
        """
        self.check_settings()
        start = time.perf_counter()
        self.selection_ = None
        if self.law == "auto":
            from bimix_bayes.comparison import select_law

            self.selection_ = select_law(observations, laws=AUTO_LAWS, noise=self.noise,
                                         seed=self.seed)
        spec = self.spec(self.selection_.chosen if self.selection_ else None)
        config = self.sampler_config()
        self.design_ = design = Design.from_observations(observations)
        self.model_ = build_model(design, spec)
        self.trace_, extra = sampling.sample(self.model_, design, spec, config)
        seconds = time.perf_counter() - start
        post = self.trace_["posterior"].to_dataset()
        # A cached compiled model labels its runs as the design it was compiled for.
        post = post.assign_coords({k: v for k, v in design.coords.items() if k in post.dims})
        if self.method in APPROXIMATE:
            d = diag.approximation_diagnostics(post, self.method, extra)
        else:
            d = diag.mcmc_diagnostics(self.trace_)
        d.update(extra, method=self.method, seconds=seconds)
        self.diagnostics_ = d
        stats = (self.trace_["sample_stats"].to_dataset()
                 if "sample_stats" in self.trace_.children else None)
        self.posterior_ = Posterior.from_draws(
            post, observations, spec=spec, method=self.method, s_ref=design.s_ref,
            sampler_config=config.to_dict(), sample_stats=stats, diagnostics=d,
            law_selection=None if self.selection_ is None else self.selection_.to_dict())
        diag.warn_if_untrustworthy(d)
        return self
