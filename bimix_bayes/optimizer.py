"""Uncertainty-aware mixture decisions over posterior draws.

The quantity optimised is the target-weighted average validation loss ``Lbar`` at one training step
(:mod:`bimix_bayes.surface`), evaluated under every posterior draw of the law, over the feasible set
of :mod:`bimix_bayes.constraints`. Against a reference mixture ``r0`` (by default the
observed mixture with the lowest expected ``Lbar``) the *gain* of ``r`` is ``Lbar(r0) - Lbar(r)``, a
posterior distribution. Three objectives choose ``r``:

``expected-gain``
    maximise ``E[gain]``. ``L_i`` is convex in ``r`` (a negative power of an affine effective
    proportion), so this is a convex problem with one optimum; SLSQP on the capped simplex finds it.
``prob-improvement``
    maximise ``P(gain > 0)`` (smoothed with a normal kernel while optimising, reported exactly).
``quantile``
    maximise a lower quantile of the gain (risk-averse; Harrell-Davis smoothed while optimising).

Besides the mixture, :func:`optimize` reports the gain posterior, per-domain predicted losses with
bands, and the spread of the *per-draw* optima: how uncertain the location of the optimum is.

Examples
--------
>>> result = optimize(post, step=5000, objective="expected-gain")          # doctest: +SKIP
>>> result.mixture.round(3).to_dict(), result.summary()["prob_improvement"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize as sopt
from scipy import special, stats

from bimix_bayes.constraints import Constraints, resolve_constraints
from bimix_bayes.errors import BimixInputError
from bimix_bayes.surface import LossSurface

if TYPE_CHECKING:
    from bimix_bayes.posterior import Posterior

OBJECTIVES = ("expected-gain", "prob-improvement", "quantile")
Objective = Literal["expected-gain", "prob-improvement", "quantile"]


#: What a plan says, in words, when its gain over the reference is not clearly positive.
NO_CONFIDENT_IMPROVEMENT = "no confident improvement over the reference"


def confident(gain_lower: float, prob_improvement: float) -> bool:
    """Whether a gain is worth acting on: P(improvement) >= 0.5 and its interval above zero."""
    return bool(prob_improvement >= 0.5 and gain_lower > 0)


def verdict(gain_lower: float, gain_upper: float, prob_improvement: float, prob: float) -> str:
    """One sentence on a plan's gain: :data:`NO_CONFIDENT_IMPROVEMENT` unless :func:`confident`.

    Examples
    --------
    >>> verdict(-0.01, 0.03, 0.49, 0.9).split(": ")[0]
    'no confident improvement over the reference'
    >>> verdict(0.01, 0.03, 0.99, 0.9).endswith("[0.01, 0.03] nats per token lies above zero")
    True
    """
    where = (f"the {prob:.0%} interval of the gain [{gain_lower:.4g}, {gain_upper:.4g}] nats per "
             "token")
    if confident(gain_lower, prob_improvement):
        return (f"confident improvement over the reference: P(improvement) = "
                f"{prob_improvement:.3f} and {where} lies above zero")
    spans = "includes zero" if gain_lower <= 0 <= gain_upper else "lies below zero" \
        if gain_upper < 0 else "lies above zero"
    return (f"{NO_CONFIDENT_IMPROVEMENT}: P(improvement) = {prob_improvement:.3f} and {where} "
            f"{spans}")


@dataclass(frozen=True)
class OptimizationResult:
    """What :func:`optimize` found, and how sure it is.

    Attributes
    ----------
    mixture, reference : pandas.Series
        The chosen and the reference mixture (index: sources).
    gain : numpy.ndarray
        Posterior draws of ``Lbar(reference) - Lbar(mixture)`` (nats per token).
    losses : xarray.Dataset
        Per-domain loss ``mean``, ``lower``, ``upper`` (dims ``mixture`` = optimum/reference,
        ``domain``) and the ``average`` loss draws ``(sample, mixture)``.
    optima : xarray.DataArray
        Each draw's own optimal mixture ``(optimum_draw, source)`` (for a subset of the draws, see
        ``optima_draws``): the posterior of the optimum's location.
    objective, step, prob, quantile : as given to :func:`optimize`.
    params : float or None
        The model size the mixture is for (None for a fit without sizes).
    """

    mixture: pd.Series
    reference: pd.Series
    gain: np.ndarray
    losses: xr.Dataset
    optima: xr.DataArray
    objective: str
    step: float
    prob: float
    quantile: float
    params: float | None = None

    def summary(self) -> dict[str, float | str | dict[str, float]]:
        """The gain posterior and the optimum's spread as a flat, JSON-ready dict."""
        tail = (1 - self.prob) / 2
        lo, hi = np.quantile(self.gain, [tail, 1 - tail])
        avg = self.losses["average"]
        spread = np.abs(self.optima.to_numpy() - self.mixture.to_numpy()).sum(axis=-1) / 2
        return {
            "objective": self.objective,
            "step": self.step,
            **({} if self.params is None else {"params": self.params}),
            "prob": self.prob,
            "gain_mean": float(self.gain.mean()),
            "gain_lower": float(lo),
            "gain_upper": float(hi),
            "prob_improvement": float((self.gain > 0).mean()),
            f"gain_q{self.quantile:g}": float(np.quantile(self.gain, self.quantile)),
            "expected_loss": float(avg.sel(mixture="optimum").mean()),
            "reference_expected_loss": float(avg.sel(mixture="reference").mean()),
            # Total-variation distance from each draw's optimum to the chosen mixture.
            "optimum_distance_mean": float(spread.mean()),
            "reference": self.reference.round(6).to_dict(),
            "mixture": self.mixture.to_dict(),
            "units": "nats per token",
            "confident": confident(lo, (self.gain > 0).mean()),
            "verdict": verdict(float(lo), float(hi), float((self.gain > 0).mean()), self.prob),
        }

    def plan_frame(self) -> pd.DataFrame:
        """The plan CSV: ``domain, proportion`` plus the interval of the per-draw optima."""
        tail = (1 - self.prob) / 2
        q = self.optima.quantile([tail, 0.5, 1 - tail], dim="optimum_draw").to_numpy()
        return pd.DataFrame({
            "domain": self.mixture.index,
            "proportion": self.mixture.to_numpy(),
            "optimum_lower": q[0], "optimum_median": q[1], "optimum_upper": q[2],
        })

    def to_dataset(self) -> xr.Dataset:
        """Everything in one :class:`xarray.Dataset`."""
        ds = self.losses.copy()
        ds["proportion"] = xr.DataArray(
            np.stack([self.mixture.to_numpy(), self.reference.to_numpy()]),
            dims=("mixture", "source"), coords={"source": list(self.mixture.index)})
        ds["gain"] = ("sample", self.gain)
        ds["optima"] = self.optima
        ds.attrs.update(objective=self.objective, step=self.step, prob=self.prob,
                        quantile=self.quantile)
        return ds


def optimize(
    post: Posterior,
    step: float,
    *,
    reference: pd.Series | pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
    objective: Objective = "expected-gain",
    constraints: Constraints | None = None,
    prob: float = 0.9,
    quantile: float = 0.1,
    max_draws: int | None = None,
    optima_draws: int | None = 1000,
    seed: int = 0,
    params: float | None = None,
) -> OptimizationResult:
    """Find the mixture that maximises the chosen objective of the gain over a reference.

    Parameters
    ----------
    post : Posterior
        Fitted law.
    step : float
        Training step at which the mixture is judged.
    reference : Series or one-row DataFrame, optional
        Mixture to beat (proportions over ``post.sources``). Default: the observed mixture with the
        lowest posterior-mean ``Lbar`` at ``step``.
    weights : mapping, optional
        Target weight per evaluated domain; default uniform.
    objective : {"expected-gain", "prob-improvement", "quantile"}
        What to maximise (see the module docstring).
    constraints : Constraints, optional
        Bounds and data limits; default the plain simplex.
    prob : float
        Mass of the reported equal-tailed intervals.
    quantile : float
        The lower quantile of the gain that ``objective="quantile"`` maximises.
    max_draws : int, optional
        Use a seeded random subset of the draws.
    optima_draws : int, optional
        Compute the per-draw optima (the spread of the optimum, and the start of the search) on a
        seeded subset of at most this many draws; they cost most with the transfer law. None: all.
    seed : int
        Seeds the draw subsets and the multi-start.
    params : float, optional
        Model size the decision is for, with a fit across sizes (default its largest fitted
        size).

    Returns
    -------
    OptimizationResult

    Examples
    --------
    >>> res = optimize(post, step=5000, objective="quantile", quantile=0.1)   # doctest: +SKIP
    >>> res.summary()["gain_q0.1"] > 0                                         # doctest: +SKIP
    """
    if objective not in OBJECTIVES:
        raise BimixInputError(f"unknown objective {objective!r}; expected one of "
                              f"{', '.join(OBJECTIVES)}")
    for name, value in (("prob", prob), ("quantile", quantile)):
        if not 0 < value < 1:
            raise BimixInputError(f"{name} must be in (0, 1), got {value}")
    constraints = resolve_constraints(post, constraints)
    ref = None if reference is None else reference_mixture(post, reference)
    surface = LossSurface(post, step, weights, max_draws=max_draws, seed=seed, params=params)
    if ref is None:
        ref = best_observed(post, surface)

    lbar_ref = surface.average(ref.to_numpy())
    rng = np.random.default_rng(seed)
    some = np.arange(surface.n_draws)
    if optima_draws is not None and surface.n_draws > optima_draws:
        some = np.sort(rng.choice(surface.n_draws, size=optima_draws, replace=False))
    optima, _ = surface.take(some).draw_optima(constraints)
    scale = float(lbar_ref.mean())

    x = _solve(_objective_fn("expected-gain", surface, lbar_ref, scale, quantile, None),
               constraints.project(optima.mean(axis=0)), constraints)
    if objective != "expected-gain":
        g0 = lbar_ref - surface.average(x)
        # Silverman's rule on the gains at the expected-gain optimum sets the kernel width.
        width = max(1.06 * g0.std() * len(g0) ** -0.2, 1e-9 * scale)
        fn = _objective_fn(objective, surface, lbar_ref, scale, quantile, width)
        starts = [x, constraints.project(ref.to_numpy()),
                  *optima[rng.choice(len(optima), size=min(2, len(optima)), replace=False)]]
        exact = _objective_fn(objective, surface, lbar_ref, scale, quantile, 0.0)
        x = min((_solve(fn, s, constraints) for s in starts), key=lambda z: exact(z)[0])

    sources = surface.sources
    mixture = pd.Series(x, index=pd.Index(sources, name="source"), name="optimum")
    both = np.stack([x, ref.to_numpy()])
    loss = np.exp(surface.log_losses(both))  # (sample, 2, domain)
    tail = (1 - prob) / 2
    lower, upper = np.quantile(loss, [tail, 1 - tail], axis=0)
    dims = ("mixture", "domain")
    losses = xr.Dataset(
        {"mean": (dims, loss.mean(axis=0)), "lower": (dims, lower), "upper": (dims, upper),
         "average": (("sample", "mixture"), surface.average(both))},
        coords={"mixture": ["optimum", "reference"], "domain": surface.domains},
        attrs={"prob": prob, "units": "nats per token"})
    return OptimizationResult(
        mixture=mixture, reference=ref.rename("reference"), gain=lbar_ref - surface.average(x),
        losses=losses,
        optima=xr.DataArray(optima, dims=("optimum_draw", "source"), coords={"source": sources}),
        objective=objective, step=float(step), prob=prob, quantile=quantile,
        params=surface.params_target)


def reference_mixture(post: Posterior, reference: pd.Series | pd.DataFrame,
                      source: str = "<reference>") -> pd.Series:
    """Validate a user's reference mixture (one row) against the posterior's training domains."""
    frame = reference.to_frame().T if isinstance(reference, pd.Series) else reference
    if len(frame) != 1:
        raise BimixInputError(f"the reference must be one mixture, got {len(frame)}", path=source)
    frame = post.mixtures_frame(frame, source=source)
    return frame.iloc[0].rename("reference")


def best_observed(post: Posterior, surface: LossSurface) -> pd.Series:
    """The observed mixture with the lowest posterior-mean ``Lbar`` at the surface's step.

    Judged by the model rather than the raw losses, so runs evaluated at other steps and noisy
    evaluations compare fairly.
    """
    observed = post.observations.mixtures()[surface.sources].drop_duplicates()
    expected = surface.average(observed.to_numpy()).mean(axis=0)
    return observed.iloc[int(expected.argmin())].rename("reference")


def _objective_fn(objective: str, surface: LossSurface, lbar_ref: np.ndarray, scale: float,
                  quantile: float, width: float | None):
    """Loss to minimise (and its gradient) for SLSQP; ``width=0`` gives the exact, unsmoothed value."""
    n = len(lbar_ref)
    if objective == "quantile":
        # Harrell-Davis weights over the order statistics: a smooth quantile estimator.
        edges = stats.beta.cdf(np.arange(n + 1) / n, (n + 1) * quantile, (n + 1) * (1 - quantile))
        hd = np.diff(edges)

    def fn(x: np.ndarray) -> tuple[float, np.ndarray]:
        avg, grad = surface.average_grad(x)
        gain = lbar_ref - avg
        if objective == "expected-gain":
            return avg.mean() / scale, grad.mean(axis=0) / scale
        if objective == "prob-improvement":
            if not width:
                return -float((gain > 0).mean()), np.zeros_like(x)
            z = gain / width
            return -special.ndtr(z).mean(), (stats.norm.pdf(z) / width) @ grad / n
        if not width:
            return -float(np.quantile(gain, quantile)) / scale, np.zeros_like(x)
        order = np.argsort(gain)
        return -(hd @ gain[order]) / scale, hd @ grad[order] / scale

    return fn


def _solve(fn, x0: np.ndarray, constraints: Constraints) -> np.ndarray:
    """SLSQP on the capped simplex from ``x0``; the answer is projected back to exact feasibility."""
    res = sopt.minimize(
        fn, x0, jac=True, method="SLSQP",
        bounds=sopt.Bounds(constraints.lower, constraints.upper),
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0,
                      "jac": lambda x: np.ones_like(x)}],
        options={"maxiter": 300, "ftol": 1e-12})
    return constraints.project(res.x)
