"""The hierarchical Bayesian BiMix model (PyMC) and its estimator.

The law is the identifiable form of :mod:`bimix_bayes.laws`; this module only decides how to put
priors on it and how to sample it fast. The sampled parameters are chosen for geometry, and the law's
coefficients are deterministic functions of them:

* ``level_i``: the log-loss of domain i at its typical proportion and the reference step
  (``r = exp(centre_i)``, the geometric mean of the domain's non-zero proportions; ``s = s_ref``, the
  geometric mean of the evaluation steps). It is what the data pin down best, so sampling it instead
  of ``log_c`` removes the strong ``log_c``-``alpha`` and ``log_c``-``u`` correlations:
  ``log_c = level - softplus(u) + alpha * centre``.
* ``alpha, beta`` are log-normal, ``level, u`` normal, each with a population mean and scale over
  domains (partial pooling, centred: every domain has hundreds of points, so the centred form is the
  well-conditioned one). The noise scales ``sigma, sigma_run`` are log-normal per domain.
* ``eps_i`` (log-normal around 1e-3) keeps a domain that was not trained on at a finite loss.
* transfer law: ``w_ij = tau_w * z_ij`` with half-normal ``z`` and a half-normal ``tau_w``, non-centred
  because most weights are weakly identified; ``w_ii = 0``.
* noise ``"normal"``: a run x domain offset constant along the curve plus residual scatter. The offset
  is integrated out analytically (a curve is then multivariate normal with compound-symmetric
  covariance), which removes runs x domains latent variables and their funnel from the sampler.
* noise ``"student"``: Student-t residuals (robust to spikes in a curve) with explicit non-centred run
  offsets, since the Student-t integral has no closed form.

The priors (:class:`Priors`) are justified by :func:`prior_predictive`: losses of a few nats that
decrease in steps and in a domain's own proportion.

Examples
--------
>>> from bimix_bayes.observations import Observations
>>> obs = Observations.read_csv("observations.csv")                       # doctest: +SKIP
>>> est = BayesianBiMix(draws=1000, tune=1000, chains=4).fit(obs)         # doctest: +SKIP
>>> est.posterior_.predict(obs.mixtures().iloc[:2], steps=[2000])         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bimix_bayes import diagnostics as diag
from bimix_bayes import laws
from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior

LAWS = ("bimix", "transfer")
NOISES = ("normal", "student")
#: "nuts": nutpie NUTS (default); "pymc": PyMC's own NUTS; "laplace": a normal approximation at the
#: posterior mode in the unconstrained space; "advi", "fullrank_advi": PyMC's variational
#: approximations.
METHODS = ("nuts", "pymc", "laplace", "advi", "fullrank_advi")
APPROXIMATE = ("laplace", "advi", "fullrank_advi")
#: The observed log-losses are data, so a compiled model can be reused with new losses.
OBSERVED = "observed_log_loss"
#: Compiled nutpie models by (settings, design): refitting the same design with new losses (tests,
#: simulation-based calibration, refits) skips the compilation that dominates a fit's wall time.
_COMPILED: OrderedDict[str, Any] = OrderedDict()
_COMPILED_MAX = 4
#: Variables a Posterior carries (see bimix_bayes.posterior).
CONTRACT = ("log_c", "alpha", "u", "beta", "eps", "transfer", "sigma", "sigma_run", "nu")


@dataclass(frozen=True)
class Priors:
    """Prior hyperparameters, on the scales the model samples on (see the module docstring).

    Defaults give losses of about 1-10 nats (90 % of prior curves), residual and run scatter of
    0.3-10 % and step exponents of 0.1-1.5: see :func:`prior_predictive`.
    """

    level_mu: tuple[float, float] = (1.1, 0.5)  # mean log-loss at the reference point ~ 3 nats
    level_tau: float = 0.4
    log_alpha_mu: tuple[float, float] = (np.log(0.08), 0.75)
    log_alpha_tau: float = 0.5
    u_mu: tuple[float, float] = (-1.0, 1.0)  # reducible part ~ 1/3 of the irreducible at s_ref
    u_tau: float = 0.75
    log_beta_mu: tuple[float, float] = (np.log(0.5), 0.5)
    log_beta_tau: float = 0.4
    log_eps: tuple[float, float] = (np.log(1e-3), 1.0)
    log_sigma: tuple[float, float] = (np.log(0.015), 1.0)
    log_sigma_run: tuple[float, float] = (np.log(0.015), 1.0)
    transfer_tau: float = 0.1  # half-normal scale of the overall transfer strength
    nu: tuple[float, float] = (2.0, 0.1)  # Gamma(alpha, beta) prior of Student-t dof (Juarez-Steel)


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
    """

    log_loss: np.ndarray
    mask: np.ndarray
    own: np.ndarray
    mixture: np.ndarray
    steps: np.ndarray
    s_ref: float
    centre: np.ndarray
    coords: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_observations(cls, observations: Observations) -> Design:
        ds = observations.to_dataset()
        domains = observations.evaluated_domains
        sources = observations.domains
        loss = ds["loss"].sel(domain=domains).to_numpy().astype(float)
        mask = np.isfinite(loss)
        own = ds["proportion"].sel(domain=domains).to_numpy().astype(float)
        steps = ds["step"].to_numpy().astype(float)
        with np.errstate(divide="ignore"):
            log_own = np.where(own > 0, np.log(np.where(own > 0, own, 1.0)), np.nan)
        trained = np.isfinite(log_own).any(axis=0)
        centre = np.where(trained, np.nanmean(np.where(trained, log_own, 0.0), axis=0),
                          np.log(1e-3))
        return cls(
            log_loss=np.where(mask, np.log(np.where(mask, loss, 1.0)), 0.0),
            mask=mask.astype(float),
            own=own,
            mixture=ds["proportion"].sel(domain=sources).to_numpy().astype(float),
            steps=steps,
            s_ref=float(np.exp(np.mean(np.log(steps)))),
            centre=centre,
            coords={"run": list(observations.runs), "domain": list(domains),
                    "source": list(sources), "step": [int(s) for s in steps]},
        )


# ------------------------------------------------------------------------------------ model
def _curve_logp(value, mu, sigma, sigma_run, mask):
    """Log-density of one run's curve with the run offset integrated out.

    ``value - mu`` over the observed steps of one (run, domain) is N(0, sigma^2 I + sigma_run^2 J):
    with n points, sum S and sum of squares Q of the residuals, the Sherman-Morrison identities give
    ``log det = 2 (n - 1) log sigma + log(sigma^2 + n sigma_run^2)`` and
    ``quad = (Q - sigma_run^2 S^2 / (sigma^2 + n sigma_run^2)) / sigma^2``. A curve with n = 0
    contributes exactly 0.
    """
    e = (value - mu) * mask
    n = mask.sum(axis=-1)
    s = e.sum(axis=-1)
    q = (e**2).sum(axis=-1)
    var, var_run = sigma**2, sigma_run**2
    total = var + n * var_run
    quad = (q - var_run * s**2 / total) / var
    logdet = 2 * (n - 1) * pt.log(sigma) + pt.log(total)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)


def _curve_random(mu, sigma, sigma_run, mask, rng=None, size=None):
    batch = tuple(size) if size is not None else np.broadcast_shapes(
        mu.shape[:-1], np.shape(sigma), np.shape(sigma_run), mask.shape[:-1])
    offset = rng.standard_normal((*batch, 1)) * np.asarray(sigma_run)[..., None]
    resid = rng.standard_normal((*batch, mu.shape[-1])) * np.asarray(sigma)[..., None]
    return mu + offset + resid


def _hierarchical(name: str, mu: tuple[float, float], tau: float, *, log: bool) -> Any:
    """Per-domain parameter with a population mean and scale (centred).

    The scale's Gamma(2, 2 / tau) prior (mean ``tau``) vanishes at zero: in the centred form a scale
    near zero opens a funnel whenever domains happen to be alike, and a boundary-avoiding prior
    (Chung et al. 2013) keeps the sampler out of it while still allowing strong pooling.
    """
    m = pm.Normal(f"{name}_mu", *mu)
    t = pm.Gamma(f"{name}_tau", alpha=2.0, beta=2.0 / tau)
    if log:
        return pm.LogNormal(name.removeprefix("log_"), m, t, dims="domain")
    return pm.Normal(name, m, t, dims="domain")


def _example() -> Observations:
    """Two domains, two runs, two steps: the docstrings' toy observations."""
    import pandas as pd

    return Observations.from_frame(pd.DataFrame({
        "run": ["a"] * 4 + ["b"] * 4, "domain": ["web", "web", "code", "code"] * 2,
        "proportion": [0.7, 0.7, 0.3, 0.3, 0.2, 0.2, 0.8, 0.8],
        "step": [100, 1000] * 4, "loss": [3.4, 3.1, 2.3, 2.0, 3.7, 3.3, 2.0, 1.8]}))


def build_model(
    observations: Observations | Design,
    *,
    law: str = "bimix",
    noise: str = "normal",
    priors: Priors | None = None,
    store_mean: bool = False,
) -> pm.Model:
    """The PyMC model of ``observations`` (coords ``run, domain, step, source``).

    Deterministics carry the names of the posterior contract (``log_c, alpha, u, beta, eps,
    transfer, sigma, sigma_run, nu``); the observed variable is ``log_loss``, dims
    ``(run, domain, step)`` for normal noise and ``obs`` (the observed cells, in C order of
    ``(run, domain, step)``) for Student-t noise. ``store_mean`` adds the noise-free curve
    ``mean_log_loss`` (run, domain, step) as a deterministic (large: for prior checks only).

    Examples
    --------
    >>> obs = _example()
    >>> sorted(build_model(obs).coords)
    ['domain', 'run', 'source', 'step']
    """
    if law not in LAWS:
        raise BimixInputError(f"unknown law {law!r}; expected one of {', '.join(LAWS)}")
    if noise not in NOISES:
        raise BimixInputError(f"unknown noise {noise!r}; expected one of {', '.join(NOISES)}")
    d = observations if isinstance(observations, Design) else Design.from_observations(observations)
    p = priors or Priors()
    coords = d.coords
    with pm.Model(coords=coords) as model:
        level = _hierarchical("level", p.level_mu, p.level_tau, log=False)
        alpha = _hierarchical("log_alpha", p.log_alpha_mu, p.log_alpha_tau, log=True)
        u = _hierarchical("u", p.u_mu, p.u_tau, log=False)
        beta = _hierarchical("log_beta", p.log_beta_mu, p.log_beta_tau, log=True)
        eps = pm.LogNormal("eps", *p.log_eps, dims="domain")
        # Noise scales are not pooled: each is pinned by hundreds of points (runs), and equal
        # scales across domains would push a pooling scale into the funnel at zero.
        sigma = pm.LogNormal("sigma", *p.log_sigma, dims="domain")
        sigma_run = pm.LogNormal("sigma_run", *p.log_sigma_run, dims="domain")
        log_c = pm.Deterministic(
            "log_c", level - pt.softplus(u) + alpha * d.centre, dims="domain")

        transfer = None
        if law == "transfer":
            is_own = np.array([[s == dom for s in coords["source"]] for dom in coords["domain"]])
            rows, cols = np.nonzero(~is_own)
            tau_w = pm.HalfNormal("transfer_tau", p.transfer_tau)
            z = pm.HalfNormal("transfer_z", 1.0, shape=len(rows))
            w = pt.zeros(is_own.shape)[rows, cols].set(tau_w * z)
            transfer = pm.Deterministic("transfer", w, dims=("domain", "source"))

        r_eff = laws.effective_proportion(
            d.own, eps=eps, mixture=d.mixture, transfer=transfer, xp=pt)  # (run, domain)
        mu = laws.log_loss(
            r_eff[:, :, None], d.steps[None, None, :], log_c=log_c[None, :, None],
            alpha=alpha[None, :, None], u=u[None, :, None], beta=beta[None, :, None],
            s_ref=d.s_ref, xp=pt)  # (run, domain, step)
        if store_mean:
            pm.Deterministic("mean_log_loss", mu, dims=("run", "domain", "step"))

        if noise == "normal":
            pm.CustomDist(
                "log_loss", mu, sigma, sigma_run, d.mask,
                logp=_curve_logp, random=_curve_random, signature="(s),(),(),(s)->(s)",
                observed=pm.Data(OBSERVED, d.log_loss, dims=("run", "domain", "step")),
                dims=("run", "domain", "step"))
        else:
            nu = pm.Gamma("nu", *p.nu)
            offset = pm.Normal("run_offset", 0.0, 1.0, dims=("run", "domain"))
            run_i, dom_i, step_i = np.nonzero(d.mask)
            model.add_coord("obs", np.arange(len(run_i)))
            centre = mu[run_i, dom_i, step_i] + offset[run_i, dom_i] * sigma_run[dom_i]
            pm.StudentT("log_loss", nu=nu, mu=centre, sigma=sigma[dom_i],
                        observed=pm.Data(OBSERVED, d.log_loss[run_i, dom_i, step_i], dims="obs"),
                        dims="obs")
    return model


def prior_predictive(
    observations: Observations,
    *,
    law: str = "bimix",
    noise: str = "normal",
    priors: Priors | None = None,
    draws: int = 500,
    seed: int = 0,
) -> xr.Dataset:
    """Prior draws of the coefficients and of the losses the model expects at this design.

    The design (runs' mixtures and evaluation steps) comes from ``observations``; their losses
    are not used.

    Returns
    -------
    xarray.Dataset
        The law's coefficients (``sample, domain``), ``mean_loss`` (the noise-free curve) and
        ``loss`` (a simulated observation), both ``(sample, run, domain, step)`` in nats, where
        the design has a loss.

    Examples
    --------
    >>> pp = prior_predictive(_example(), draws=50)
    >>> bool((pp["mean_loss"].isel(step=0) > pp["mean_loss"].isel(step=1)).all())
    True
    """
    design = Design.from_observations(observations)
    model = build_model(design, law=law, noise=noise, priors=priors, store_mean=True)
    with model:
        tree = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    prior = tree["prior"].to_dataset().stack(sample=("chain", "draw"))
    simulated = tree["prior_predictive"]["log_loss"].stack(sample=("chain", "draw")).to_numpy()
    cube = np.full((*design.mask.shape, simulated.shape[-1]), np.nan)
    cube[np.nonzero(design.mask)] = simulated.reshape(-1, simulated.shape[-1]) if noise == "student" \
        else simulated[np.nonzero(design.mask)]
    dims = ("run", "domain", "step")
    observed = xr.DataArray(design.mask > 0, dims=dims,
                            coords={k: design.coords[k] for k in dims})
    names = [v for v in CONTRACT if v in prior]
    out = prior[names].drop_vars(["sample", "chain", "draw"]).transpose("sample", ...)
    out["mean_loss"] = np.exp(prior["mean_log_loss"]).where(observed).drop_vars(
        ["sample", "chain", "draw"]).transpose("sample", ...)
    out["loss"] = (("sample", *dims), np.exp(np.moveaxis(cube, -1, 0)))
    out.attrs["s_ref"] = design.s_ref
    return out


# -------------------------------------------------------------------------------- estimator
class BayesianBiMix:
    """Fit the hierarchical Bayesian BiMix model; sklearn-style (cheap constructor, ``fit``).

    Parameters
    ----------
    law : {"bimix", "transfer"}
        Plain BiMix, or with cross-domain transfer ``r_i + sum_j w_ij r_j``.
    noise : {"normal", "student"}
        Residual distribution of log-loss (Student-t resists outlying checkpoints).
    method : {"nuts", "pymc", "laplace", "advi", "fullrank_advi"}
        nutpie NUTS (default, fastest exact), PyMC's own NUTS in Python (fallback where nutpie
        cannot compile the model), a Laplace approximation at the mode (fast; close to NUTS when
        every domain has many points), or a variational
        approximation (seconds, approximate; no MCMC diagnostics).
    draws, tune, chains : int
        Posterior draws and tuning steps per chain (for ADVI: ``draws`` draws from the
        approximation and ``10 * tune`` optimisation steps).
    seed : int
    priors : Priors, optional
    adaptation : str
        nutpie mass-matrix adaptation ("low_rank" by default; "diag" is nutpie's own default).
    target_accept : float
        NUTS target acceptance rate. 0.95 rather than the usual 0.8: on the reference workload
        it costs about 15 % more sampling time and removes the few divergences that 0.8 leaves
        (benchmarks/results/target_accept.md).
    retry_target_accept : float or None
        When a NUTS fit diverges, sample once more at this target acceptance rate, reusing the
        compiled model (small designs, such as a first round of 8 runs, need it: their weakly
        identified proportion exponents form a funnel that smaller steps get through), and keep
        the attempt with fewer divergences. The diagnostics record both attempts
        (``attempts``) and the ``target_accept`` kept. None disables the retry.
    progressbar : bool

    Attributes
    ----------
    model_ : pymc.Model
    trace_ : xarray.DataTree
        Everything the sampler returned (all sampled variables, sample stats).
    posterior_ : Posterior
        The contract's variables, observations, configuration and diagnostics.
    diagnostics_ : dict
        See :func:`bimix_bayes.diagnostics.mcmc_diagnostics`; ``seconds`` is the wall time of
        model building, compilation and sampling.

    Examples
    --------
    >>> est = BayesianBiMix(draws=300, tune=300, chains=2, seed=1).fit(obs)   # doctest: +SKIP
    >>> est.diagnostics_["trustworthy"]                                         # doctest: +SKIP
    True
    """

    def __init__(
        self,
        law: str = "bimix",
        noise: str = "normal",
        method: str = "nuts",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        seed: int = 0,
        priors: Priors | None = None,
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
        self.priors = priors
        self.adaptation = adaptation
        self.target_accept = target_accept
        self.retry_target_accept = retry_target_accept
        self.progressbar = progressbar

    def config(self) -> dict[str, Any]:
        """The settings recorded in the posterior file."""
        return {
            "law": self.law, "noise": self.noise, "method": self.method, "draws": self.draws,
            "tune": self.tune, "chains": self.chains, "seed": self.seed,
            "adaptation": self.adaptation, "target_accept": self.target_accept,
            "retry_target_accept": self.retry_target_accept,
            "priors": dataclasses.asdict(self.priors or Priors()),
        }

    def check_settings(self) -> None:
        """Raise :class:`BimixInputError` for settings that cannot work (``fit`` calls it first)."""
        if self.method not in METHODS:
            raise BimixInputError(
                f"unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        for name in ("draws", "tune", "chains"):
            if int(getattr(self, name)) < 1:  # nutpie panics without a tuning step
                raise BimixInputError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("target_accept", "retry_target_accept"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise BimixInputError(f"{name} must be in (0, 1), got {value}")

    def fit(self, observations: Observations) -> BayesianBiMix:
        """Sample the posterior of ``observations``; sets ``model_, trace_, posterior_``.

        Warns with :class:`~bimix_bayes.diagnostics.UntrustworthyFitWarning` (and a remedy)
        when the diagnostics fail.
        """
        self.check_settings()
        self.design_ = design = Design.from_observations(observations)
        start = time.perf_counter()
        self.model_ = build_model(design, law=self.law, noise=self.noise, priors=self.priors)
        self.trace_, extra = self._sample()
        seconds = time.perf_counter() - start

        post = self.trace_["posterior"].to_dataset()
        names = [v for v in CONTRACT if v in post]
        if self.method in APPROXIMATE:
            problems = [f"the {self.method} optimisation did not converge ({extra[k]}); "
                        "use method='nuts'" for k in ("map_message",)
                        if not extra.get("map_converged", True)]
            if extra.get("hessian_positive_definite") is False:
                problems.append("the Hessian at the mode is not positive definite (a flat or "
                                "saddle direction); use method='nuts'")
            d = {"chains": 1, "draws": int(post.sizes["draw"]), "approximate": True,
                 "trustworthy": None if not problems else False, "problems": problems}
        else:
            free = {v.name for v in self.model_.free_RVs}
            d = diag.mcmc_diagnostics(
                self.trace_, var_names=[v for v in post.data_vars if v in free or v in names])
        d.update(extra, method=self.method, seconds=seconds)
        self.diagnostics_ = d
        stats = (self.trace_["sample_stats"].to_dataset()
                 if "sample_stats" in self.trace_.children else None)
        keep = [v for v in ("diverging", "energy", "step_size", "n_steps", "tree_depth", "depth",
                            "maxdepth_reached", "reached_max_treedepth")
                if stats is not None and v in stats]
        self.posterior_ = Posterior.from_draws(
            post[names], observations, law=self.law, method=self.method, s_ref=design.s_ref,
            config=self.config(), sample_stats=stats[keep] if keep else None, diagnostics=d)
        diag.warn_if_untrustworthy(d)
        return self

    # ------------------------------------------------------------------------ samplers
    def _sample(self) -> tuple[xr.DataTree, dict[str, Any]]:
        if self.method not in ("nuts", "pymc"):
            return {"laplace": self._laplace}.get(self.method, self._advi)()
        nuts = self._nutpie if self.method == "nuts" else self._pymc_nuts
        trace = nuts(self.target_accept)
        n_divergent = int(trace["sample_stats"]["diverging"].sum())
        retry = self.retry_target_accept
        if not n_divergent or retry is None or retry <= self.target_accept:
            return trace, {"target_accept": self.target_accept}
        second = nuts(retry)
        attempts = [{"target_accept": self.target_accept, "n_divergent": n_divergent},
                    {"target_accept": retry,
                     "n_divergent": int(second["sample_stats"]["diverging"].sum())}]
        # On a design the data barely identify, smaller steps can diverge more: keep the better.
        if attempts[1]["n_divergent"] <= n_divergent:
            trace = second
        used = retry if trace is second else self.target_accept
        return trace, {"target_accept": used, "attempts": attempts}

    def _nutpie(self, target_accept: float) -> xr.DataTree:
        import nutpie

        key = self._design_key()
        if key in _COMPILED:
            _COMPILED.move_to_end(key)
            compiled = _COMPILED[key].with_data(
                **{OBSERVED: self.model_[OBSERVED].get_value()})
        else:
            compiled = nutpie.compile_pymc_model(self.model_)
            _COMPILED[key] = compiled
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
        trace = nutpie.sample(
            compiled, draws=self.draws, tune=self.tune, chains=self.chains, seed=self.seed,
            adaptation=self.adaptation, target_accept=target_accept,
            progress_bar=self.progressbar, save_warmup=False)
        return trace

    def _design_key(self) -> str:
        """Everything the compiled graph depends on except the observed losses."""
        d = self.design_
        digest = hashlib.sha256(repr((self.law, self.noise, self.priors or Priors(),
                                      d.s_ref, d.coords)).encode())
        for arr in (d.mask, d.own, d.mixture, d.steps, d.centre):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()

    def _pymc_nuts(self, target_accept: float) -> xr.DataTree:
        with self.model_:
            return pm.sample(
                draws=self.draws, tune=self.tune, chains=self.chains, random_seed=self.seed,
                target_accept=target_accept, progressbar=self.progressbar,
                compute_convergence_checks=False, nuts_sampler="pymc")

    def _laplace(self) -> tuple[xr.DataTree, dict[str, Any]]:
        """Normal approximation at the mode of the unconstrained posterior (Jacobian included).

        The boundary-avoiding Gamma priors of the pooling scales give that mode a finite
        location; the Hessian comes from central differences of the exact gradient.
        """
        import pytensor
        from pymc.pytensorf import join_nonshared_inputs
        from scipy import optimize

        model = self.model_
        start = model.initial_point()
        values = model.value_vars
        point = {v.name: start[v.name] for v in values}
        logp = model.logp()
        (lp, *grads), flat = join_nonshared_inputs(point, [logp, *pt.grad(logp, values)], values)
        logp_dlogp = pytensor.function([flat], [lp, pt.concatenate([g.ravel() for g in grads])])
        names = [v for v in CONTRACT if v in model.named_vars]
        outs, flat_out = join_nonshared_inputs(
            point, model.replace_rvs_by_values([model[n] for n in names]), values)
        expand = pytensor.function([flat_out], outs)

        def neg(x):
            value, grad = logp_dlogp(x)
            return -float(value), -grad

        x0 = np.concatenate([np.ravel(point[v.name]) for v in values])
        res = optimize.minimize(neg, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": 5000, "maxfun": 20000})
        h = 1e-5 * np.maximum(1.0, np.abs(res.x))
        hess = np.empty((x0.size, x0.size))
        for i in range(x0.size):
            step = np.zeros(x0.size)
            step[i] = h[i]
            hess[i] = (neg(res.x + step)[1] - neg(res.x - step)[1]) / (2 * h[i])
        hess = (hess + hess.T) / 2
        extra: dict[str, Any] = {"map_converged": bool(res.success), "map_message": str(res.message),
                                 "map_logp": -float(res.fun)}
        try:
            chol = np.linalg.cholesky(np.linalg.inv(hess))
            extra["hessian_positive_definite"] = True
        except np.linalg.LinAlgError:
            chol = np.diag(1 / np.sqrt(np.maximum(np.abs(np.diag(hess)), 1e-12)))
            extra["hessian_positive_definite"] = False
        rng = np.random.default_rng(self.seed)
        draws = res.x + rng.standard_normal((self.draws, x0.size)) @ chol.T
        samples = [expand(x) for x in draws]
        dims = model.named_vars_to_dims
        posterior = xr.Dataset(
            {n: (("chain", "draw", *dims.get(n, ())), np.stack([s[i] for s in samples])[None])
             for i, n in enumerate(names)},
            coords={k: list(v) for k, v in model.coords.items() if k != "obs"})
        return xr.DataTree.from_dict({"posterior": posterior}), extra

    def _advi(self) -> tuple[xr.DataTree, dict[str, Any]]:
        with self.model_:
            approx = pm.fit(n=max(10 * self.tune, 1), method=self.method,
                            random_seed=self.seed, progressbar=self.progressbar)
            trace = approx.sample(self.draws, random_seed=self.seed)
        hist = np.asarray(approx.hist)
        tail = hist[-max(len(hist) // 10, 1):]
        return trace, {"final_elbo_loss": float(np.mean(tail)),
                       "elbo_loss_sd": float(np.std(tail)), "iterations": len(hist)}
