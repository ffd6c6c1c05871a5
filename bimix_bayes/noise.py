"""Noise models: how observed log-losses scatter around a law's mean curve, one owner each.

A training run's log-loss curve for one domain is the law's mean curve plus a **run offset**
(constant along the curve: seed and data order) plus **residual** scatter at each checkpoint. A noise
model owns everything that depends on that choice:

* its parameters and priors (:attr:`Noise.parameters`, :attr:`Noise.Priors`);
* the likelihood in the PyMC model (:meth:`Noise.build`);
* the numpy sampler of a new run's deviation from the mean curve (:meth:`Noise.sample`): the
  new-run predictive band and the planner's fantasised observations;
* the log-likelihood of whole curves with the run offset integrated out
  (:meth:`Noise.curve_log_likelihood`): the pointwise unit of PSIS-LOO (the posterior file's
  ``log_likelihood`` group) and the planner's reweighting of draws.

Arrays in numpy follow the prediction layout: a curve's steps on axis -2, domains on axis -1; the
parameters arrive shaped to broadcast against that (:meth:`bimix_bayes.draws.Draws.shaped`).

Examples
--------
>>> import numpy as np
>>> noise = get("normal")
>>> params = {"sigma": np.array([0.01]), "sigma_run": np.array([0.02])}
>>> e = noise.sample(params, (1000, 3, 1), np.random.default_rng(0))
>>> e.shape, bool(np.allclose(e.std(), np.hypot(0.01, 0.02), rtol=0.1))
((1000, 3, 1), True)
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from scipy import special

from bimix_bayes.errors import BimixInputError

Params = Mapping[str, Any]
#: The observed variable of every model (the likelihood's name in PyMC and in ``log_likelihood``).
OBSERVED_NAME = "log_loss"


class Noise(ABC):
    """A noise model of log-loss around the mean curve (module docstring).

    Attributes
    ----------
    name : str
        The name users pass (``--noise NAME``) and the posterior file records.
    summary : str
    parameters : dict
        Parameter name -> dims after ``(chain, draw)``.
    Priors : type
        Frozen dataclass of the prior hyperparameters.
    mask_is_data : bool
        Whether the mask of observed cells may change between fits of one compiled model (a
        shared variable) or is part of the model's structure.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    parameters: ClassVar[dict[str, tuple[str, ...]]]
    Priors: ClassVar[type]
    mask_is_data: ClassVar[bool] = True

    @abstractmethod
    def build(self, mu: Any, design: Any, priors: Any) -> None:
        """Add the likelihood of the observed log-losses to the current PyMC model.

        Parameters
        ----------
        mu : pytensor variable (run, domain, step)
            The law's mean log-loss.
        design : bimix_bayes.model.Design
            ``log_loss`` (the observed values, a shared variable) and ``mask`` (1 where
            observed; a shared variable when :attr:`mask_is_data`).
        priors : Noise.Priors

        Notes
        -----
        Where every curve has one observed point (``design.has_curves`` false: one evaluation
        step), the run offset is not identified apart from the residual; a noise model then
        samples one scale of the whole scatter and fixes ``sigma_run`` at 0.
        """

    @abstractmethod
    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator,
               steps: Sequence[float] | None = None) -> np.ndarray:
        """A new run's deviation of log-loss from the mean curve, ``shape = (..., step, domain)``;
        the run offset is shared along the step axis. ``steps`` (the step axis's training
        steps) matters to noise correlated along a curve; it may be omitted for one step."""

    @abstractmethod
    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray,
                             steps: Sequence[float] | None = None) -> np.ndarray:
        """Log-density of each curve: ``resid`` (..., step, domain) observed minus mean
        log-loss, ``mask`` (1 where observed, broadcasting), ``steps`` as for :meth:`sample`;
        returns (..., domain), 0 for a curve with no observation."""


# ------------------------------------------------------------------------------------ normal
@dataclass(frozen=True)
class NormalPriors:
    """Log-normal priors of the residual and run scales of log-loss (0.3-10 % in 90 % of draws)."""

    log_sigma: tuple[float, float] = (float(np.log(0.015)), 1.0)
    log_sigma_run: tuple[float, float] = (float(np.log(0.015)), 1.0)


def _scales(priors: NormalPriors, design: Any) -> tuple[Any, Any]:
    import pymc as pm
    import pytensor.tensor as pt

    # Not pooled: each scale is pinned by hundreds of points (runs), and equal scales across
    # domains would push a pooling scale into the funnel at zero.
    sigma = pm.LogNormal("sigma", *priors.log_sigma, dims="domain")
    if not design.has_curves:
        # One point per curve: run offset and residual are one scatter, and two scales of it
        # would be a ridge. ``sigma`` is then the whole scatter of a run's loss.
        return sigma, pm.Deterministic("sigma_run", pt.zeros(len(design.coords["domain"])),
                                       dims="domain")
    return sigma, pm.LogNormal("sigma_run", *priors.log_sigma_run, dims="domain")


def normal_curve_logp(n: Any, total: Any, squares: Any, sigma: Any, sigma_run: Any,
                      xp: ModuleType = np) -> Any:
    """Log-density of a curve of ``n`` residuals with sum ``total`` and sum of squares ``squares``.

    The residuals are N(0, sigma^2 I + sigma_run^2 J) (the run offset integrated out); the
    Sherman-Morrison identities give ``log det = 2 (n - 1) log sigma + log(sigma^2 + n
    sigma_run^2)`` and ``quad = (Q - sigma_run^2 S^2 / (sigma^2 + n sigma_run^2)) / sigma^2``. A
    curve with ``n = 0`` contributes exactly 0. One expression for numpy and PyTensor (``xp``).
    """
    var, var_run = sigma**2, sigma_run**2
    denom = var + n * var_run
    quad = (squares - var_run * total**2 / denom) / var
    logdet = 2 * (n - 1) * xp.log(sigma) + xp.log(denom)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)


class Normal(Noise):
    """Normal residuals plus a normal run offset, integrated out analytically.

    A curve is then multivariate normal with compound-symmetric covariance, which removes
    runs x domains latent variables and their funnel from the sampler.
    """

    name = "normal"
    summary = "normal residuals and a normal run offset (integrated out)"
    parameters = {"sigma": ("domain",), "sigma_run": ("domain",)}
    Priors = NormalPriors

    def build(self, mu: Any, design: Any, priors: NormalPriors) -> None:
        import pymc as pm

        sigma, sigma_run = _scales(priors, design)

        def logp(value, mu, sigma, sigma_run, mask):  # noqa: ANN001, ANN202 (PyMC's signature)
            e = (value - mu) * mask
            return normal_curve_logp(mask.sum(axis=-1), e.sum(axis=-1), (e**2).sum(axis=-1),
                                     sigma, sigma_run, xp=_pt())

        def random(mu, sigma, sigma_run, mask, rng=None, size=None):  # noqa: ANN001, ANN202
            batch = tuple(size) if size is not None else np.broadcast_shapes(
                mu.shape[:-1], np.shape(sigma), np.shape(sigma_run), mask.shape[:-1])
            offset = rng.standard_normal((*batch, 1)) * np.asarray(sigma_run)[..., None]
            resid = rng.standard_normal((*batch, mu.shape[-1])) * np.asarray(sigma)[..., None]
            return mu + offset + resid

        pm.CustomDist(OBSERVED_NAME, mu, sigma, sigma_run, design.mask, logp=logp, random=random,
                      signature="(s),(),(),(s)->(s)", observed=design.log_loss,
                      dims=("run", "domain", "step"))

    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator,
               steps: Sequence[float] | None = None) -> np.ndarray:
        offset = rng.standard_normal((*shape[:-2], 1, shape[-1])) * params["sigma_run"]
        return offset + rng.standard_normal(shape) * params["sigma"]

    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray,
                             steps: Sequence[float] | None = None) -> np.ndarray:
        e = resid * mask
        # Sums keep the step axis so that parameters shaped for (..., step, domain) broadcast.
        n = np.broadcast_to(mask, e.shape).sum(axis=-2, keepdims=True)
        logp = normal_curve_logp(n, e.sum(axis=-2, keepdims=True),
                                 (e**2).sum(axis=-2, keepdims=True), params["sigma"],
                                 params["sigma_run"])
        return logp[..., 0, :]


# ------------------------------------------------------------------------------------ student
@dataclass(frozen=True)
class StudentPriors(NormalPriors):
    """Normal's scale priors plus Gamma(2, 0.1) on the degrees of freedom (Juarez and Steel)."""

    nu: tuple[float, float] = (2.0, 0.1)


class Student(Noise):
    """Student-t residuals (robust to spikes in a curve) plus a normal run offset.

    The Student-t integral over the offset has no closed form, so the model samples the offsets
    (non-centred); :meth:`curve_log_likelihood` integrates them out numerically (adaptive
    Gauss-Hermite quadrature with :attr:`QUADRATURE_NODES` nodes).
    """

    name = "student"
    summary = "Student-t residuals and a normal run offset (robust to outlying checkpoints)"
    parameters = {"sigma": ("domain",), "sigma_run": ("domain",), "nu": ()}
    Priors = StudentPriors
    mask_is_data = False
    #: Nodes of the adaptive quadrature: the curve log-density to ~1e-6, outliers included.
    QUADRATURE_NODES = 32

    def build(self, mu: Any, design: Any, priors: StudentPriors) -> None:
        import pymc as pm

        sigma, sigma_run = _scales(priors, design)
        nu = pm.Gamma("nu", *priors.nu)
        # The Student-t model observes only the observed cells (C order of run, domain, step),
        # so the mask is part of its structure, not of its data.
        run_i, dom_i, step_i = np.nonzero(design.mask)
        pm.modelcontext(None).add_coord("obs", np.arange(len(run_i)))
        centre = mu[run_i, dom_i, step_i]
        if design.has_curves:
            offset = pm.Normal("run_offset", 0.0, 1.0, dims=("run", "domain"))
            centre = centre + offset[run_i, dom_i] * sigma_run[dom_i]
        pm.StudentT(OBSERVED_NAME, nu=nu, mu=centre, sigma=sigma[dom_i],
                    observed=design.log_loss[run_i, dom_i, step_i], dims="obs")

    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator,
               steps: Sequence[float] | None = None) -> np.ndarray:
        offset = rng.standard_normal((*shape[:-2], 1, shape[-1])) * params["sigma_run"]
        nu = np.broadcast_to(params["nu"], shape)
        return offset + rng.standard_t(nu) * params["sigma"]

    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray,
                             steps: Sequence[float] | None = None) -> np.ndarray:
        # Adaptive Gauss-Hermite: nodes centred and scaled at the offset's normal-approximation
        # posterior given the curve, where the integrand's mass is (plain nodes around zero miss
        # it when the residual scale is below the offset scale).
        x, w = np.polynomial.hermite.hermgauss(self.QUADRATURE_NODES)
        sigma, sigma_run, nu = (np.asarray(params[k], float) for k in ("sigma", "sigma_run", "nu"))
        mask = np.broadcast_to(mask, resid.shape)
        if not np.any(sigma_run > 0):  # the reduced form (one point per curve): no offset
            return (self._log_t(resid, sigma, nu) * mask).sum(axis=-2)
        n = mask.sum(axis=-2, keepdims=True)
        var, var_run = sigma**2, sigma_run**2
        centre = var_run * (resid * mask).sum(axis=-2, keepdims=True) / (var + n * var_run)
        spread = np.sqrt(var * var_run / (var + n * var_run))
        nodes = x.reshape(-1, *[1] * resid.ndim)
        offsets = centre + np.sqrt(2.0) * spread * nodes  # (node, ..., 1, domain)
        log_t = self._log_t(resid - offsets, sigma, nu)
        log_prior = -0.5 * (offsets / sigma_run) ** 2 - np.log(sigma_run * np.sqrt(2 * np.pi))
        terms = (log_t * mask).sum(axis=-2, keepdims=True) + log_prior
        log_w = (np.log(w) + x**2).reshape(nodes.shape)
        logp = special.logsumexp(terms + log_w, axis=0) + np.log(np.sqrt(2.0) * spread)
        return np.where(n > 0, logp, 0.0)[..., 0, :]


    @staticmethod
    def _log_t(e: np.ndarray, sigma: np.ndarray, nu: np.ndarray) -> np.ndarray:
        z = e / sigma
        return (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
                - 0.5 * np.log(nu * np.pi) - np.log(sigma) - (nu + 1) / 2 * np.log1p(z**2 / nu))


# ------------------------------------------------------------------------------------ ar1
@dataclass(frozen=True)
class Ar1Priors(NormalPriors):
    """Normal's scale priors plus Beta(2, 2) on ``rho``, the residuals' correlation between
    checkpoints a doubling of steps apart: mean 0.5, no mass piled at 0 (independent residuals,
    the normal noise) or at 1 (where the wander becomes a second run offset and trades off
    against ``sigma_run``)."""

    rho: tuple[float, float] = (2.0, 2.0)


def _log_steps(steps: Sequence[float] | None, n: int) -> np.ndarray:
    """The time axis of the AR(1) process: log2 of the training steps (see :class:`Ar1`)."""
    if steps is None:
        if n > 1:
            raise ValueError("ar1 noise needs the steps of a curve with more than one checkpoint")
        return np.zeros(n)
    t = np.log2(np.asarray(steps, float))
    if t.shape != (n,):
        raise ValueError(f"{t.size} steps for a step axis of length {n}")
    return t


@dataclass(frozen=True)
class CurveStructure:
    """Which checkpoints of each curve are observed, as the AR(1) likelihood uses them.

    Arrays have the mask's shape with the step axis last (``(..., step)``); the AR(1) process
    is Markov on any set of times, so a curve with missing checkpoints is the same process on
    its observed ones, consecutive observed checkpoints forming its pairs.

    Attributes
    ----------
    mask : array (..., step)
    pair : array (..., step - 1)
        1 where checkpoints ``j - 1`` and ``j`` are both observed (the common case).
    first : array (..., step)
        1 at each curve's first observed checkpoint.
    n : array (..., 1)
        Observed checkpoints per curve.
    dt : array (step - 1,)
        Time between adjacent checkpoints.
    gap_at, gap_prev : int array (gap,)
        Flat index (into the mask) of each observed checkpoint whose previous observed one is
        not adjacent (a missing checkpoint in between), and of that previous one.
    gap_dt : array (gap,)
        Time between them.
    gap_weight : array (gap,)
        1 for a gap; 0 for the one placeholder that ``pad`` adds, so that a compiled model's
        likelihood has a gap term whatever mask it is later given.
    """

    mask: np.ndarray
    pair: np.ndarray
    first: np.ndarray
    n: np.ndarray
    dt: np.ndarray
    gap_at: np.ndarray
    gap_prev: np.ndarray
    gap_dt: np.ndarray
    gap_weight: np.ndarray

    #: Fields that :meth:`Ar1.build` turns into PyMC data (``ar1_`` + name).
    ARRAYS = ("pair", "first", "n", "gap_at", "gap_prev", "gap_dt", "gap_weight")

    @classmethod
    def of(cls, mask: np.ndarray, t: np.ndarray, pad: bool = False) -> CurveStructure:
        """The structure of ``mask`` (..., step) at times ``t`` (step,); ``pad`` appends a
        placeholder gap of weight 0."""
        obs = np.asarray(mask) > 0
        index = np.arange(obs.shape[-1])
        last = np.maximum.accumulate(np.where(obs, index, -1), axis=-1)  # observed at or before j
        prev = np.concatenate([np.full((*obs.shape[:-1], 1), -1), last[..., :-1]], axis=-1)
        gap = obs & (prev >= 0) & (prev < index - 1)
        at = np.nonzero(gap)
        before = np.ravel_multi_index((*at[:-1], prev[gap]), obs.shape)
        dt, weight = t[at[-1]] - t[prev[gap]], np.ones(len(before))
        at = np.ravel_multi_index(at, obs.shape)
        if pad:
            at, before = np.append(at, 0), np.append(before, 0)
            dt, weight = np.append(dt, 1.0), np.append(weight, 0.0)
        return cls(mask=obs.astype(float), pair=(obs[..., 1:] & obs[..., :-1]).astype(float),
                   first=(obs & (np.cumsum(obs, axis=-1) == 1)).astype(float),
                   n=obs.sum(axis=-1, keepdims=True).astype(float), dt=np.diff(t),
                   gap_at=at, gap_prev=before, gap_dt=dt, gap_weight=weight)


def ar1_curve_logp(e: Any, s: CurveStructure, sigma: Any, sigma_run: Any, rho: Any,
                   xp: ModuleType = np) -> Any:
    """Log-density of curves of residuals ``e`` (..., step) observed as ``s`` says, keeping a
    unit step axis.

    The residuals at a curve's observed checkpoints are N(0, sigma^2 K + sigma_run^2 J): K the
    correlation of a stationary AR(1) (Ornstein-Uhlenbeck) process, ``K_ij = rho^|t_i - t_j|``,
    J the run offset's all-ones matrix. With ``phi_k = rho^(t_k - t_{k-1})`` between
    consecutive observed checkpoints, K's precision is tridiagonal: the innovations ``w(u)_1 =
    u_1``, ``w(u)_k = (u_k - phi_k u_{k-1}) / sqrt(1 - phi_k^2)`` give ``u' K^-1 v = w(u) . w(v)``
    and ``log det K = sum log(1 - phi_k^2)``. The matrix determinant lemma and Sherman-Morrison
    then give, with ``Q = w(e).w(e)``, ``b = w(e).w(1)``, ``a = w(1).w(1)``, ``log det = 2 (n -
    1) log sigma + log det K + log(sigma^2 + sigma_run^2 a)`` and ``quad = (Q - sigma_run^2 b^2 /
    (sigma^2 + sigma_run^2 a)) / sigma^2``: O(n) per curve (:func:`normal_curve_logp` is the case
    ``rho = 0``). A curve with no observation gives 0.

    Adjacent pairs use shifted slices and the grid's ``phi`` (one value per step); only pairs
    across a missing checkpoint are gathered. Elementwise ``exp``/``log`` on every cell, or a
    gather of every cell, made one gradient about 5-10x dearer than the normal noise's. One
    expression for numpy and PyTensor (``xp``).
    """

    def total(x: Any) -> Any:
        return xp.sum(x, axis=-1, keepdims=True)

    e = xp.where(s.mask > 0, e, 0.0)
    log_rho = xp.log(rho)
    log_phi = s.dt * log_rho
    phi, one_minus = xp.exp(log_phi), -xp.expm1(2.0 * log_phi)  # 1 - phi^2, accurate if close
    scale = s.pair / xp.sqrt(one_minus)
    w_e, w_1 = (e[..., 1:] - phi * e[..., :-1]) * scale, (1.0 - phi) * scale
    quad_e = total(w_e**2) + total(s.first * e**2)
    cross = total(w_e * w_1) + total(s.first * e)
    quad_1 = total(w_1**2) + total(s.first)
    log_det_k = total(s.pair * xp.log(one_minus))
    if xp is not np or s.gap_dt.size:  # a compiled model always has the (padded) gap term
        k = s.mask.ndim  # gaps index the mask's cells, flattened: parameters drop those axes
        rho_gap = log_rho if log_rho.ndim < k else xp.reshape(
            log_rho, (*log_rho.shape[:log_rho.ndim - k], 1))
        log_phi = s.gap_dt * rho_gap
        phi, one_minus = xp.exp(log_phi), -xp.expm1(2.0 * log_phi)
        g_scale = s.gap_weight / xp.sqrt(one_minus)
        flat = xp.reshape(e, (-1,)) if e.ndim == k else xp.reshape(e, (*e.shape[:e.ndim - k], -1))
        g_e = (flat[..., s.gap_at] - phi * flat[..., s.gap_prev]) * g_scale
        g_1 = (1.0 - phi) * g_scale

        def at_gaps(values: Any) -> Any:
            """Each gap's value put at its checkpoint and summed along the curve."""
            if xp is np:
                out = np.zeros(np.broadcast_shapes(flat.shape, (*np.shape(values)[:-1], 1)))
                out[..., s.gap_at] = values
                return total(out.reshape((*out.shape[:-1], *e.shape[e.ndim - k:])))
            return total(xp.set_subtensor(xp.zeros_like(flat)[s.gap_at], values).reshape(e.shape))

        quad_e, cross = quad_e + at_gaps(g_e**2), cross + at_gaps(g_e * g_1)
        quad_1 = quad_1 + at_gaps(g_1**2)
        log_det_k = log_det_k + at_gaps(s.gap_weight * xp.log(one_minus))
    n = s.n
    var, var_run = sigma**2, sigma_run**2
    denom = var + var_run * quad_1
    quad = (quad_e - var_run * cross**2 / denom) / var
    logdet = 2 * (n - 1) * xp.log(sigma) + log_det_k + xp.log(denom)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)


class Ar1(Noise):
    """Residuals that wander along a curve, an AR(1) process in log step, plus a normal run offset
    (integrated out analytically, as for :class:`Normal`).

    Real training curves wander smoothly around any law (checkpoint-to-checkpoint errors are
    autocorrelated: learning-rate schedule, data order), so independent residuals make every
    checkpoint count as new evidence. Here the residual of each (run, domain) curve is a
    stationary Ornstein-Uhlenbeck process in ``log2(step)`` with per-domain scale ``sigma`` and
    correlation ``rho`` between checkpoints a doubling of steps apart: checkpoints s and s' have
    correlation ``rho^|log2(s'/s)|``.

    * **Time in log step, not checkpoint index:** checkpoints are often saved every N steps,
      and the model changes far more between steps 1000 and 1500 than between 59500 and 60000;
      the law itself is a function of log step. An index-based correlation
      would change meaning with the checkpointing schedule and when a checkpoint is missing;
      the OU process in log step is the same process on any subset of checkpoints.
    * **One ``rho`` shared by the domains:** the wander comes from the run's training dynamics,
      which every evaluated domain of that run sees; the domains differ in its amplitude
      (``sigma`` per domain). One parameter is pinned by every curve (a per-domain ``rho`` of a
      domain with few checkpoints would sit at its prior) and adds no funnel.

    The mask stays data: its structure (:class:`CurveStructure`: adjacent observed pairs,
    first checkpoints, the few pairs across a missing checkpoint) is computed in numpy and
    handed to the model as PyMC data beside it, so held-out folds reuse the compiled model. The
    likelihood then costs about 2x the normal noise's per gradient and its graph compiles about
    2.4x longer (benchmarks/results/noise_ar1.md); computing the structure inside the graph (a
    sort and a gather of every cell) cost 5-10x per gradient.
    """

    name = "ar1"
    summary = ("residuals correlated along a curve (AR(1) in log step) and a normal run offset "
               "(integrated out)")
    parameters = {"sigma": ("domain",), "sigma_run": ("domain",), "rho": ()}
    Priors = Ar1Priors

    def build(self, mu: Any, design: Any, priors: Ar1Priors) -> None:
        import pymc as pm

        sigma, sigma_run = _scales(priors, design)
        rho = pm.Beta("rho", *priors.rho)
        t = _log_steps(design.steps, len(design.steps))
        # The structure of the mask is PyMC data like the mask itself: a compiled model serves
        # any mask of its design (held-out folds, SBC), as with normal noise.
        mask = design.mask
        given = CurveStructure.of(mask.get_value() if hasattr(mask, "get_value") else mask, t,
                                  pad=True)
        structure = dataclasses.replace(given, mask=mask, **{
            f: pm.Data(f"ar1_{f}", getattr(given, f)) for f in CurveStructure.ARRAYS})

        def logp(value, mu, sigma, sigma_run, rho):  # noqa: ANN001, ANN202 (PyMC's signature)
            # PyMC hands the scalar rho over with unit batch axes; the gaps need it scalar.
            return ar1_curve_logp(value - mu, structure, sigma[..., None], sigma_run[..., None],
                                  _pt().squeeze(rho), xp=_pt())[..., 0]

        def random(mu, sigma, sigma_run, rho, rng=None, size=None):  # noqa: ANN001, ANN202
            batch = tuple(size) if size is not None else np.broadcast_shapes(
                mu.shape[:-1], np.shape(sigma), np.shape(sigma_run), np.shape(rho))
            params = {k: np.asarray(v, float)[..., None, None]
                      for k, v in (("sigma", sigma), ("sigma_run", sigma_run), ("rho", rho))}
            return mu + self.sample(params, (*batch, len(t), 1), rng, design.steps)[..., 0]

        pm.CustomDist(OBSERVED_NAME, mu, sigma, sigma_run, rho, logp=logp, random=random,
                      signature="(s),(),(),()->(s)", observed=design.log_loss,
                      dims=("run", "domain", "step"))

    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator,
               steps: Sequence[float] | None = None) -> np.ndarray:
        t = _log_steps(steps, shape[-2])
        rho = np.asarray(params["rho"], float)
        z = rng.standard_normal(shape)
        x = np.empty(np.broadcast_shapes(shape, np.shape(rho)))
        order = np.argsort(t, kind="stable")  # steps in any order, repeated ones included
        x[..., order[0]:order[0] + 1, :] = z[..., order[0]:order[0] + 1, :]
        for prev, k in zip(order[:-1], order[1:], strict=True):
            log_phi = (t[k] - t[prev]) * np.log(rho)
            x[..., k:k + 1, :] = (np.exp(log_phi) * x[..., prev:prev + 1, :]
                                  + np.sqrt(-np.expm1(2 * log_phi)) * z[..., k:k + 1, :])
        offset = rng.standard_normal((*shape[:-2], 1, shape[-1])) * params["sigma_run"]
        return offset + x * params["sigma"]

    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray,
                             steps: Sequence[float] | None = None) -> np.ndarray:
        resid = np.asarray(resid, float)
        t = _log_steps(steps, resid.shape[-2])
        mask = np.asarray(mask, float)
        if np.any(np.diff(t) < 0):  # the pairs are consecutive in time
            order = np.argsort(t, kind="stable")
            t, resid = t[order], resid[..., order, :]
            if mask.ndim >= 2 and mask.shape[-2] > 1:
                mask = mask[..., order, :]
        mask = np.broadcast_to(mask, resid.shape[resid.ndim - max(mask.ndim, 2):])
        # The shared expression takes the step axis last: swap (step, domain) everywhere.
        swap = {k: np.swapaxes(np.atleast_2d(v), -1, -2) if np.ndim(v) else np.asarray(v, float)
                for k, v in params.items()}
        logp = ar1_curve_logp(np.swapaxes(resid, -1, -2),
                              CurveStructure.of(np.swapaxes(mask, -1, -2), t),
                              swap["sigma"], swap["sigma_run"], swap["rho"])
        return logp[..., 0]


def _pt() -> ModuleType:
    import pytensor.tensor as pt

    return pt


_REGISTRY: dict[str, Noise] = {n.name: n for n in (Normal(), Student(), Ar1())}


def get(name: str) -> Noise:
    """The noise model called ``name``.

    Raises
    ------
    BimixInputError
        For an unknown name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BimixInputError(
            f"unknown noise {name!r}; expected one of {', '.join(_REGISTRY)}") from None


def names() -> list[str]:
    """Names of the noise models."""
    return list(_REGISTRY)
