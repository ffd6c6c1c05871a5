"""The posterior loss surface: the average loss at one step as a function of the mixture.

The quantity every decision compares is the target-weighted average validation loss at one step,

    Lbar(r) = sum_i w_i L_i(r, step)          (w: target-domain weights, uniform by default)

evaluated under every posterior draw of the law. :class:`LossSurface` gives ``Lbar``, its mixture
gradient and Hessian for all draws at once (from the law's own derivatives) and each draw's optimal
mixture (:meth:`LossSurface.draw_optima`), which the optimizer and the planner build on.

Examples
--------
>>> surface = LossSurface(post, step=5000)                                   # doctest: +SKIP
>>> surface.average(np.full(len(surface.sources), 1 / len(surface.sources))).mean()  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bimix_bayes.constraints import Constraints
from bimix_bayes.draws import shaped
from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws.base import apply_rows

if TYPE_CHECKING:
    from bimix_bayes.posterior import Posterior

#: Elements of one broadcast (draw, mixture, domain, source) block; bounds memory with transfer.
_BLOCK = 2_000_000


class LossSurface:
    """Posterior draws of the average loss ``Lbar`` at one step, as a function of the mixture.

    Evaluates the law through the posterior's sample-first view of the draws
    (:class:`~bimix_bayes.draws.Draws`): every evaluation is one vectorised call of the law, and
    the gradient and Hessian come from the law's derivatives in its effective proportions.

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
    params : float, optional
        Model size the losses are for, with a fit across sizes (default its largest fitted
        size; :meth:`bimix_bayes.posterior.Posterior.samples`).

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
        params: float | None = None,
    ) -> None:
        if not (step > 0 and np.isfinite(step)):
            raise BimixInputError(f"step must be a positive finite number, got {step}")
        if max_draws is not None and max_draws < 1:
            raise BimixInputError(f"max_draws must be >= 1, got {max_draws}")
        if post.n_samples == 0:
            raise BimixInputError("the posterior holds no draws")
        post.check_steps([step])
        self.step = float(step)
        self.params_target = post.target_params(params)
        self.draws = post.samples(self.params_target).subset(max_draws, seed)
        self.law = self.draws.law
        self.s_ref = self.draws.s_ref
        self.sources = list(self.draws.sources)
        self.domains = list(self.draws.domains)
        self.weights = target_weights(self.domains, weights)
        self.own = self.draws.own_index
        self._own_onehot = self.draws.own_onehot

    @property
    def n_draws(self) -> int:
        return self.draws.n

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The law's parameters, sample first."""
        return self.draws.params

    def take(self, draws: np.ndarray) -> LossSurface:
        """The same surface restricted to the draws with these indices."""
        sub = copy.copy(self)
        sub.draws = self.draws.take(draws)
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
            return self._block(mix, self.params, order)
        batch = mix.shape[:-1]
        flat = mix.reshape(-1, mix.shape[-1])
        coupled = any("source" in dims for dims in self.law.parameters.values())
        width = len(self.sources) if coupled else 1
        chunk = max(1, _BLOCK // (self.n_draws * len(self.domains) * width))
        params = shaped(self.params, lead=1)
        parts = [self._block(flat[None, i:i + chunk], params, order)
                 for i in range(0, len(flat), chunk)]
        joined = [np.concatenate(p, axis=1) if p[0] is not None else None
                  for p in zip(*parts, strict=True)]
        n = self.n_draws
        return tuple(None if a is None else a.reshape(n, *batch, *a.shape[2:]) for a in joined)

    def _block(self, mix: np.ndarray, params: dict[str, np.ndarray], order: int) -> tuple:
        law = self.law
        r_eff = law.effective_proportion(params, self.draws.own(mix), mix)
        log_l = law.log_loss_at(params, r_eff, self.step, self.s_ref)
        linear = law.linear_rows(params)
        if linear is not None:
            log_l = log_l + apply_rows(linear, mix)
        loss = np.exp(log_l)
        avg = loss @ self.weights
        if order == 0:
            return log_l, avg, None, None
        # The chain rule through the law's one effective proportion per domain: with
        # f = log L, dL/dr_eff = L f' and d2L/dr_eff2 = L (f'^2 + f''); r_eff is affine in the
        # mixture with rows R = d r_eff / d mixture (the law's mixing rows).
        d1, d2 = law.d_log_loss(params, r_eff, self.step, self.s_ref)
        first = self.weights * loss * d1
        second = self.weights * loss * (d1**2 + d2)
        rows = law.mixing_rows(params, self._own_onehot)
        if linear is not None:
            # log L_i gains G_i . r: its gradient is a_i = f'_i R_i + G_i and its Hessian keeps
            # f''_i R_i R_i^T, so d2 L_i = L_i (a_i a_i^T + f''_i R_i R_i^T).
            rows = self._own_onehot if rows is None else rows
            slope = d1[..., None] * rows + linear
            weighted = (self.weights * loss)[..., None] * slope
            grad = weighted.sum(axis=-2)
            if order == 1:
                return log_l, avg, grad, None
            hess = (np.matmul(weighted.swapaxes(-1, -2), slope)
                    + np.matmul(((self.weights * loss * d2)[..., None] * rows).swapaxes(-1, -2),
                                rows))
            return log_l, avg, grad, hess
        if rows is None:  # each domain depends on its own source only: diagonal Hessian
            # (a target domain depends on no source under such a law)
            trained, own = self.own >= 0, self.own[self.own >= 0]
            grad = np.zeros((*first.shape[:-1], len(self.sources)))
            grad[..., own] = first[..., trained]
            if order == 1:
                return log_l, avg, grad, None
            hess = np.zeros((*grad.shape, len(self.sources)))
            hess[..., own, own] = second[..., trained]
            return log_l, avg, grad, hess
        grad = np.matmul(first[..., None, :], rows)[..., 0, :]
        if order == 1:
            return log_l, avg, grad, None
        hess = np.matmul((second[..., None] * rows).swapaxes(-1, -2), rows)
        return log_l, avg, grad, hess

    def _subset(self, idx: np.ndarray, mixtures: np.ndarray, order: int) -> tuple:
        """:meth:`_block` for the draws ``idx``, each at its own mixture."""
        return self._block(mixtures, {k: v[idx] for k, v in self.params.items()}, order)

    def _start(self, constraints: Constraints) -> tuple[np.ndarray, bool]:
        """Each draw's starting mixture for :meth:`draw_optima`, and whether it is already the
        optimum: the law's closed-form summed-loss optimum where it has one (or its suggested
        start), when every source is evaluated and weighted; else the centre of the set."""
        n, p = self.n_draws, len(self.sources)
        if p == len(self.domains) and np.all(self.own >= 0) and np.all(self.weights > 0):
            bounds = {"weights": self.weights, "lower": constraints.lower[self.own],
                      "upper": constraints.upper[self.own]}
            exact = self.law.summed_loss_optimum(self.params, self.step, self.s_ref, **bounds)
            on_domains = exact if exact is not None else self.law.optimum_start(
                self.params, self.step, self.s_ref, **bounds)
            if on_domains is not None:
                x = np.empty((n, p))
                x[:, self.own] = on_domains
                return x, exact is not None
        return np.broadcast_to(constraints.project(np.full(p, 1 / p)), (n, p)).copy(), False

    def draw_optima(self, constraints: Constraints, *, iters: int = 50, tol: float = 1e-10
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Each draw's own optimal mixture (minimum ``Lbar``) and its value.

        Each draw's problem is convex. Where the law has the paper's closed-form optimum (BiMix
        without transfer) it is exact; otherwise the law's start (for transfer: BiMix's optimum of
        the same coefficients) begins an active-set projected Newton method (Bertsekas 1982) with
        the exact Hessian and a per-draw Armijo search along the projected path, run for all
        draws at once.

        Returns
        -------
        tuple of numpy.ndarray
            ``(sample, source)`` mixtures and their ``(sample,)`` values of ``Lbar``.
        """
        lo, up = constraints.lower, constraints.upper
        n, p = self.n_draws, len(self.sources)
        x, exact = self._start(constraints)
        if exact:  # the closed form solves the separable problem to rounding
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
