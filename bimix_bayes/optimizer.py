"""Uncertainty-aware mixture optimisation over posterior draws.

The quantity optimised is the target-weighted average validation loss at one training step,

    Lbar(r) = sum_i w_i L_i(r, step)          (w: target-domain weights, uniform by default)

evaluated under every posterior draw of the law. Against a reference mixture ``r0`` (by default the
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

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize as sopt
from scipy import special, stats

from bimix_bayes import laws
from bimix_bayes.errors import BimixInputError

if TYPE_CHECKING:
    from bimix_bayes.posterior import Posterior

OBJECTIVES = ("expected-gain", "prob-improvement", "quantile")
Objective = Literal["expected-gain", "prob-improvement", "quantile"]
_COEFFICIENTS = ("log_c", "alpha", "u", "beta", "eps")
#: Elements of one broadcast (draw, mixture, domain, source) block; bounds memory with transfer.
_BLOCK = 2_000_000


# ------------------------------------------------------------------------------------ constraints
@dataclass(frozen=True)
class Constraints:
    """Feasible mixtures: the simplex with per-source lower and upper bounds.

    Build with :meth:`build`, which folds data availability into the upper bounds and checks
    feasibility before any work.

    Attributes
    ----------
    sources : tuple of str
        Training domains, in the posterior's order.
    lower, upper : numpy.ndarray
        Per-source bounds on the proportion.

    Examples
    --------
    >>> c = Constraints.build(["web", "code"], bounds={"code": (0.1, 0.3)})
    >>> c.upper.tolist()
    [1.0, 0.3]
    """

    sources: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def build(
        cls,
        sources: Sequence[str],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        *,
        available_tokens: Mapping[str, float] | None = None,
        max_epochs: float = 1.0,
        total_tokens: float | None = None,
    ) -> Constraints:
        """Bounds from user limits and data availability.

        Parameters
        ----------
        sources : sequence of str
            All training domains.
        bounds : mapping, optional
            ``{domain: (min, max)}`` proportions; unlisted domains are free in ``[0, 1]``.
        available_tokens : mapping, optional
            Unique tokens available per domain. A domain can fill at most
            ``available * max_epochs / total_tokens`` of the mixture.
        max_epochs : float
            How many times a domain's data may be repeated.
        total_tokens : float, optional
            Training tokens of the run being planned (needed with ``available_tokens``).

        Raises
        ------
        BimixInputError
            Unknown domains, bounds outside [0, 1] or reversed, minimums summing above 1, or
            maximums (after data limits) summing below 1.
        """
        sources = tuple(str(s) for s in sources)
        lower, upper = np.zeros(len(sources)), np.ones(len(sources))
        for name, (lo, hi) in (bounds or {}).items():
            i = _index(sources, name, "bounds")
            if not (0.0 <= lo <= hi <= 1.0):
                raise BimixInputError(f"bounds for {name!r} must satisfy 0 <= min <= max <= 1, "
                                      f"got {lo}:{hi}")
            lower[i], upper[i] = lo, hi
        if not (max_epochs > 0 and np.isfinite(max_epochs)):
            raise BimixInputError(f"max_epochs must be a positive finite number, got {max_epochs}")
        if available_tokens:
            if total_tokens is None or not total_tokens > 0:
                raise BimixInputError("available tokens per domain need the total training tokens "
                                      "of the planned run (total_tokens > 0)")
            for name, tokens in available_tokens.items():
                i = _index(sources, name, "available tokens")
                if not tokens >= 0:
                    raise BimixInputError(f"available tokens for {name!r} must be >= 0, got {tokens}")
                cap = tokens * max_epochs / total_tokens
                if cap < lower[i]:
                    raise BimixInputError(
                        f"domain {name!r} has {tokens:.4g} tokens x {max_epochs:g} epochs = "
                        f"{cap:.4g} of the {total_tokens:.4g}-token budget, below its minimum "
                        f"{lower[i]:.4g}")
                upper[i] = min(upper[i], cap)
        if lower.sum() > 1 + 1e-12:
            raise BimixInputError(f"infeasible constraints: the minimum proportions sum to "
                                  f"{lower.sum():.6g} > 1")
        if upper.sum() < 1 - 1e-12:
            why = ("not enough tokens for the budget: the data available (x max epochs) fills "
                   if available_tokens else "infeasible constraints: the maximum proportions fill ")
            raise BimixInputError(f"{why}only {upper.sum():.6g} of the mixture")
        return cls(sources, lower, upper)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Euclidean projection of points ``(..., source)`` onto the feasible set, all at once.

        The projection is ``clip(y - tau, lower, upper)`` with the shift ``tau`` that makes the
        proportions sum to 1. That sum is piecewise linear and falling in ``tau`` with kinks at
        ``y - upper`` and ``y - lower``, so evaluating it at every kink brackets ``tau`` exactly
        and a linear interpolation finds it (no iteration).
        """
        y = np.asarray(points, dtype=float)
        kinks = np.sort(np.concatenate([y - self.upper, y - self.lower], axis=-1), axis=-1)
        sums = np.clip(y[..., None, :] - kinks[..., :, None], self.lower, self.upper).sum(-1)
        k = np.clip((sums >= 1).sum(axis=-1, keepdims=True) - 1, 0, kinks.shape[-1] - 2)
        t0, t1 = (np.take_along_axis(kinks, k + i, axis=-1) for i in (0, 1))
        s0, s1 = (np.take_along_axis(sums, k + i, axis=-1) for i in (0, 1))
        tau = t0 + (s0 - 1) * (t1 - t0) / np.where(s0 > s1, s0 - s1, 1.0)
        x = np.clip(y - tau, self.lower, self.upper)
        # Rounding leaves ~1e-16 of slack; put it on the coordinate with the most room.
        slack = 1 - x.sum(axis=-1, keepdims=True)
        room = np.where(slack > 0, self.upper - x, x - self.lower)
        j = room.argmax(axis=-1)[..., None]
        np.put_along_axis(x, j, np.take_along_axis(x, j, axis=-1) + slack, axis=-1)
        return x

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` feasible points spread over the set (flat Dirichlet draws, projected)."""
        return self.project(rng.dirichlet(np.ones(len(self.sources)), size=n))


def _index(sources: Sequence[str], name: str, what: str) -> int:
    if name not in sources:
        raise BimixInputError(f"{what}: unknown domain {name!r}; known: {', '.join(sources)}")
    return list(sources).index(name)


# ----------------------------------------------------------------------------------- the surface
class LossSurface:
    """Posterior draws of the average loss ``Lbar`` at one step, as a function of the mixture.

    Holds the draws as flat numpy arrays (``sample`` first) so that every evaluation is one
    vectorised call of :func:`bimix_bayes.laws.log_loss`.

    Parameters
    ----------
    post : Posterior
        The fitted law.
    step : float
        Training step at which losses are compared.
    weights : mapping, optional
        Target weight per evaluated domain (normalised to sum 1); default uniform. Unlisted
        domains get weight 0.
    max_draws : int, optional
        Use a random subset of this many draws (seeded).
    seed : int
        Seeds the draw subset.

    Examples
    --------
    >>> surface = LossSurface(post, step=5000)                                   # doctest: +SKIP
    >>> surface.average(np.full(len(surface.sources), 1 / len(surface.sources))).mean()  # doctest: +SKIP
    """

    def __init__(
        self,
        post: Posterior,
        step: float,
        weights: Mapping[str, float] | None = None,
        *,
        max_draws: int | None = None,
        seed: int = 0,
    ) -> None:
        if not (step > 0 and np.isfinite(step)):
            raise BimixInputError(f"step must be a positive finite number, got {step}")
        if max_draws is not None and max_draws < 1:
            raise BimixInputError(f"max_draws must be >= 1, got {max_draws}")
        self.step = float(step)
        self.s_ref = post.s_ref
        self.sources = list(post.sources)
        self.domains = list(post.domains)
        self.weights = target_weights(self.domains, weights)
        draws = post.draws
        n = draws.sizes.get("chain", 0) * draws.sizes.get("draw", 0)
        if n == 0:
            raise BimixInputError("the posterior holds no draws")
        stacked = draws.stack(sample=("chain", "draw")).transpose("sample", ...)
        keep = np.arange(n)
        if max_draws is not None and n > max_draws:
            keep = np.sort(np.random.default_rng(seed).choice(n, size=max_draws, replace=False))
        self.params = {k: stacked[k].to_numpy()[keep] for k in _COEFFICIENTS}
        self.transfer = stacked["transfer"].to_numpy()[keep] if post.law == "transfer" else None
        # Scale of a new run's observed log-loss around the mean curve (run effect + residual).
        scales = [stacked[k].to_numpy()[keep] for k in ("sigma", "sigma_run") if k in stacked]
        self.noise_sd = np.sqrt(sum(sc**2 for sc in scales)) if scales else None
        self.own = np.array([self.sources.index(d) for d in self.domains])
        self._own_onehot = np.zeros((len(self.domains), len(self.sources)))
        self._own_onehot[np.arange(len(self.domains)), self.own] = 1.0

    @property
    def n_draws(self) -> int:
        return len(self.params["alpha"])

    def take(self, draws: np.ndarray) -> LossSurface:
        """The same surface restricted to the draws with these indices."""
        sub = copy.copy(self)
        sub.params = {k: v[draws] for k, v in self.params.items()}
        sub.transfer = None if self.transfer is None else self.transfer[draws]
        sub.noise_sd = None if self.noise_sd is None else self.noise_sd[draws]
        return sub

    def log_losses(self, mixtures: np.ndarray, per_draw: bool = False) -> np.ndarray:
        """Log-loss of every draw and domain.

        Parameters
        ----------
        mixtures : array
            ``(..., source)`` mixtures shared by all draws, or with ``per_draw`` an array
            ``(sample, source)`` giving each draw its own mixture.

        Returns
        -------
        numpy.ndarray
            ``(sample, ..., domain)``, or ``(sample, domain)`` with ``per_draw``.
        """
        return self._evaluate(mixtures, per_draw, order=0)[0]

    def average(self, mixtures: np.ndarray, per_draw: bool = False) -> np.ndarray:
        """``Lbar`` of every draw: ``(sample, ...)`` (see :meth:`log_losses` for the shapes)."""
        return self._evaluate(mixtures, per_draw, order=0)[1]

    def average_grad(self, mixtures: np.ndarray, per_draw: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``Lbar`` and its mixture gradient: ``(sample, ...)`` and ``(sample, ..., source)``."""
        return self._evaluate(mixtures, per_draw, order=1)[1:3]

    def _evaluate(self, mixtures: np.ndarray, per_draw: bool, order: int) -> tuple:
        mix = np.asarray(mixtures, dtype=float)
        if per_draw:
            return self._block(mix, self.params, self.transfer, order)
        batch = mix.shape[:-1]
        flat = mix.reshape(-1, mix.shape[-1])
        width = len(self.sources) if self.transfer is not None else 1
        chunk = max(1, _BLOCK // (self.n_draws * len(self.domains) * width))
        params = {k: v[:, None, :] for k, v in self.params.items()}
        transfer = None if self.transfer is None else self.transfer[:, None]
        parts = [self._block(flat[None, i:i + chunk], params, transfer, order)
                 for i in range(0, len(flat), chunk)]
        joined = [np.concatenate(p, axis=1) if p[0] is not None else None for p in zip(*parts, strict=True)]
        n = self.n_draws
        return tuple(None if a is None else a.reshape(n, *batch, *a.shape[2:]) for a in joined)

    def _block(self, mix: np.ndarray, params: dict[str, np.ndarray], transfer: np.ndarray | None,
               order: int) -> tuple:
        own = mix[..., self.own]
        r_eff = laws.effective_proportion(own, eps=params["eps"], mixture=mix, transfer=transfer)
        log_l = laws.log_loss(r_eff, self.step, log_c=params["log_c"], alpha=params["alpha"],
                              u=params["u"], beta=params["beta"], s_ref=self.s_ref)
        loss = np.exp(log_l)
        avg = loss @ self.weights
        if order == 0:
            return log_l, avg, None, None
        # log L is linear in log r_eff with slope -alpha, so dL/dr_eff = -alpha L / r_eff and
        # d2L/dr_eff2 = alpha (alpha + 1) L / r_eff^2; r_eff is affine in the mixture with rows
        # d r_eff / d mixture = own one-hot + transfer row, so the chain rule maps both onto sources.
        alpha = params["alpha"]
        first = -self.weights * alpha * loss / r_eff
        second = -first * (alpha + 1) / r_eff
        if transfer is None:  # each domain depends on its own source only: diagonal Hessian
            grad = np.zeros((*first.shape[:-1], len(self.sources)))
            grad[..., self.own] = first
            if order == 1:
                return log_l, avg, grad, None
            hess = np.zeros((*grad.shape, len(self.sources)))
            hess[..., self.own, self.own] = second
            return log_l, avg, grad, hess
        rows = transfer + self._own_onehot
        grad = np.matmul(first[..., None, :], rows)[..., 0, :]
        if order == 1:
            return log_l, avg, grad, None
        hess = np.matmul((second[..., None] * rows).swapaxes(-1, -2), rows)
        return log_l, avg, grad, hess

    def _subset(self, idx: np.ndarray, mixtures: np.ndarray, order: int) -> tuple:
        """:meth:`_block` for the draws ``idx``, each at its own mixture."""
        params = {k: v[idx] for k, v in self.params.items()}
        transfer = None if self.transfer is None else self.transfer[idx]
        return self._block(mixtures, params, transfer, order)

    def _separable_start(self, constraints: Constraints) -> tuple[np.ndarray, bool]:
        """The paper's per-draw optimum ignoring transfer where it applies (and whether that is
        already exact: no transfer), else the centre of the feasible set."""
        n, p = self.n_draws, len(self.sources)
        if p == len(self.domains) and np.all(self.weights > 0) and np.all(self.params["alpha"] > 0):
            on_domains = laws.summed_loss_optimum(
                self.step, **self.params, s_ref=self.s_ref, weights=self.weights,
                lower=constraints.lower[self.own], upper=constraints.upper[self.own])
            x = np.empty((n, p))
            x[:, self.own] = on_domains
            return x, self.transfer is None
        return np.broadcast_to(constraints.project(np.full(p, 1 / p)), (n, p)).copy(), False

    def draw_optima(self, constraints: Constraints, *, iters: int = 50, tol: float = 1e-10
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Each draw's own optimal mixture (minimum ``Lbar``) and its value.

        Each draw's problem is convex. Without transfer it is separable and solved exactly by
        :func:`bimix_bayes.laws.summed_loss_optimum`; that solution also starts the general
        solver, an active-set projected Newton method (Bertsekas 1982) with the exact Hessian and
        a per-draw Armijo search along the projected path, run for all draws at once.

        Returns
        -------
        tuple of numpy.ndarray
            ``(sample, source)`` mixtures and their ``(sample,)`` values of ``Lbar``.
        """
        lo, up = constraints.lower, constraints.upper
        n, p = self.n_draws, len(self.sources)
        x, exact = self._separable_start(constraints)
        if exact:  # laws.summed_loss_optimum solves the separable problem to rounding
            return x, self.average(x, per_draw=True)
        f, g, hess = self._evaluate(x, True, order=2)[1:]
        todo = np.ones(n, dtype=bool)
        eye = np.eye(p)
        for _ in range(iters):
            idx = np.flatnonzero(todo)
            if not len(idx):
                break
            xi, gi, hi = x[idx], g[idx], hess[idx]
            # Coordinates at a bound stay there when the gradient pushes them outwards, judged
            # against the multiplier of sum(x) = 1 estimated on the interior coordinates.
            at_lo, at_hi = xi <= lo + 1e-12, xi >= up - 1e-12
            inner = ~(at_lo | at_hi)
            lam = np.where(inner.any(-1), (gi * inner).sum(-1) / np.maximum(inner.sum(-1), 1),
                           gi.mean(-1))[:, None]
            free = (inner | (at_lo & (gi < lam)) | (at_hi & (gi > lam))).astype(float)
            # Newton step on the free coordinates subject to sum(step) = 0 (KKT system).
            ridge = 1e-12 * np.abs(hi).max(axis=(-2, -1), keepdims=True) + 1e-300
            kkt = np.zeros((len(idx), p + 1, p + 1))
            kkt[:, :p, :p] = (hi * free[:, :, None] * free[:, None, :]
                              + eye * (1 - free)[:, None] + ridge * eye)
            kkt[:, :p, p] = kkt[:, p, :p] = free
            kkt[:, p, p] = free.sum(-1) == 0  # nothing free: a trivial system, zero step
            rhs = np.concatenate([-gi * free, np.zeros((len(idx), 1))], axis=-1)
            d = np.linalg.solve(kkt, rhs[..., None])[:, :p, 0] * free
            still = np.abs(d).max(axis=-1) > tol  # a vanishing Newton step: converged
            todo[idx[~still]] = False
            idx, xi, gi, d = idx[still], xi[still], gi[still], d[still]
            # Armijo search along the projected path, halving each draw's step on its own. A
            # projected Newton path need not descend when the active set is still wrong; after
            # 12 halvings such a draw falls back to projected steepest descent, which does.
            step = np.ones(len(idx))
            new_x, moved = xi.copy(), np.zeros(len(idx), dtype=bool)
            pending = np.arange(len(idx))
            diag = np.diagonal(hess[idx], axis1=-2, axis2=-1).max(axis=-1)
            for attempt in range(40):
                if attempt == 12:
                    d[pending] = -gi[pending] / np.maximum(diag[pending, None], 1e-300)
                    step[pending] = 1.0
                trial = constraints.project(xi[pending] + step[pending, None] * d[pending])
                f_trial = self._subset(idx[pending], trial, order=0)[1]
                ok = f_trial <= f[idx[pending]] + 1e-4 * (gi[pending] * (trial - xi[pending])).sum(-1)
                new_x[pending[ok]] = trial[ok]
                moved[pending[ok]] = True
                step[pending[~ok]] *= 0.5
                pending = pending[~ok]
                if not len(pending):
                    break
            # A draw stops when no step decreases Lbar or the step no longer moves it.
            todo[idx] = moved & (np.abs(new_x - xi).max(axis=-1) > tol)
            x[idx] = new_x
            again = idx[todo[idx]]
            f[again], g[again], hess[again] = self._subset(again, x[again], order=2)[1:]
        f = self.average(x, per_draw=True)
        return x, f


def target_weights(domains: Sequence[str], weights: Mapping[str, float] | None) -> np.ndarray:
    """Normalised target weights over the evaluated domains (uniform when ``weights`` is None)."""
    if weights is None:
        return np.full(len(domains), 1 / len(domains))
    w = np.zeros(len(domains))
    for name, value in weights.items():
        if name not in domains:
            raise BimixInputError(f"target weights: {name!r} is not an evaluated domain; "
                                  f"evaluated: {', '.join(domains)}")
        if not (np.isfinite(value) and value >= 0):
            raise BimixInputError(f"target weight of {name!r} must be >= 0, got {value}")
        w[list(domains).index(name)] = value
    if w.sum() <= 0:
        raise BimixInputError("target weights sum to 0")
    return w / w.sum()


# ----------------------------------------------------------------------------------- optimisation
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

    def summary(self) -> dict[str, float | str | dict[str, float]]:
        """The gain posterior and the optimum's spread as a flat, JSON-ready dict."""
        tail = (1 - self.prob) / 2
        lo, hi = np.quantile(self.gain, [tail, 1 - tail])
        avg = self.losses["average"]
        spread = np.abs(self.optima.to_numpy() - self.mixture.to_numpy()).sum(axis=-1) / 2
        return {
            "objective": self.objective,
            "step": self.step,
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
    surface = LossSurface(post, step, weights, max_draws=max_draws, seed=seed)
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
        objective=objective, step=float(step), prob=prob, quantile=quantile)


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


def resolve_constraints(post: Posterior, constraints: Constraints | None) -> Constraints:
    """The given constraints, checked against the posterior's sources; default the plain simplex."""
    if constraints is None:
        return Constraints.build(post.sources)
    if list(constraints.sources) != list(post.sources):
        raise BimixInputError(f"the constraints are for domains {', '.join(constraints.sources)} "
                              f"but the posterior's are {', '.join(post.sources)}")
    return constraints


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
