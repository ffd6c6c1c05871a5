"""The feasible set of mixtures: the simplex with per-domain bounds and data limits.

One owner for what a mixture may be: user bounds (``--bounds DOMAIN=MIN:MAX``), the data available
per domain (a domain can fill at most ``available * max_epochs / total_tokens`` of the mixture) and
the Euclidean projection onto the set that the optimizer and planner use.

Examples
--------
>>> c = Constraints.build(["web", "code"], bounds={"code": (0.1, 0.3)})
>>> c.project([[0.5, 0.5]]).round(3).tolist()
[[0.7, 0.3]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bimix_bayes.errors import BimixInputError


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


def resolve_constraints(post: Any, constraints: Constraints | None) -> Constraints:
    """The given constraints, checked against the posterior's sources; default the plain simplex."""
    if constraints is None:
        return Constraints.build(post.sources)
    if list(constraints.sources) != list(post.sources):
        raise BimixInputError(f"the constraints are for domains {', '.join(constraints.sources)} "
                              f"but the posterior's are {', '.join(post.sources)}")
    return constraints
