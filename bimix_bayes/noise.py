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

from abc import ABC, abstractmethod
from collections.abc import Mapping
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
    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator
               ) -> np.ndarray:
        """A new run's deviation of log-loss from the mean curve, ``shape = (..., step, domain)``;
        the run offset is shared along the step axis."""

    @abstractmethod
    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray
                             ) -> np.ndarray:
        """Log-density of each curve: ``resid`` (..., step, domain) observed minus mean
        log-loss, ``mask`` (1 where observed, broadcasting); returns (..., domain), 0 for a curve
        with no observation."""


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

    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator
               ) -> np.ndarray:
        offset = rng.standard_normal((*shape[:-2], 1, shape[-1])) * params["sigma_run"]
        return offset + rng.standard_normal(shape) * params["sigma"]

    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray
                             ) -> np.ndarray:
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

    def sample(self, params: Params, shape: tuple[int, ...], rng: np.random.Generator
               ) -> np.ndarray:
        offset = rng.standard_normal((*shape[:-2], 1, shape[-1])) * params["sigma_run"]
        nu = np.broadcast_to(params["nu"], shape)
        return offset + rng.standard_t(nu) * params["sigma"]

    def curve_log_likelihood(self, params: Params, resid: np.ndarray, mask: np.ndarray
                             ) -> np.ndarray:
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


def _pt() -> ModuleType:
    import pytensor.tensor as pt

    return pt


_REGISTRY: dict[str, Noise] = {n.name: n for n in (Normal(), Student())}


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
