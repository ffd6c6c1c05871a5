"""The BiMix law in an identifiable parameterisation, shared by every backend.

The paper (Ge et al., arXiv 2405.14908, eq. 4) writes the validation loss of domain i as

    L_i(r_i, s) = A_i / r_i^alpha_i * (B_i / s^beta_i + C_i)

which is not identifiable: scaling A_i up and B_i, C_i down gives the same curve. We use

    log L_i = log_c_i - alpha_i * log(r_eff_i) + softplus(u_i - beta_i * log(s / s_ref))

with the effective proportion ``r_eff_i = r_i + eps_i + sum_j w_ij r_j`` (``eps_i`` keeps a domain
that was not trained on at a finite loss; ``w`` is the optional cross-domain transfer matrix of the
transfer law) and ``s_ref`` a reference step that makes ``u_i`` the log ratio of the reducible to the
irreducible part of the loss at ``s_ref``. Under the convention ``C_i = 1`` the paper's coefficients are

    A_i = exp(log_c_i),   B_i = exp(u_i) * s_ref ** beta_i,   C_i = 1.

:func:`log_loss` takes an array module (``numpy`` or ``pytensor.tensor``) so the least-squares fit,
the PyMC model and the optimizer evaluate one and the same expression. :func:`to_paper` and
:func:`from_paper` convert to and from the paper's coefficients; :func:`summed_loss_optimum` is the
paper's optimal mixture.

Examples
--------
>>> import numpy as np
>>> float(np.exp(log_loss(0.5, 1000, log_c=np.log(2.0), alpha=0.1, u=0.0, beta=0.5, s_ref=1000)))
4.287093850145...
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from bimix_bayes.errors import BimixInputError


def effective_proportion(
    own: Any, *, eps: Any = 0.0, mixture: Any = None, transfer: Any = None, xp: ModuleType = np
) -> Any:
    """Effective proportion ``r_i + eps_i + sum_j w_ij r_j``.

    Parameters
    ----------
    own : array (..., domain)
        Each evaluated domain's own share of the mixture.
    eps : array (domain,) or scalar
        Floor that keeps zero-proportion domains finite.
    mixture : array (..., source), optional
        The whole mixture over every training domain (needed with ``transfer``).
    transfer : array (..., domain, source), optional
        Non-negative transfer weights ``w_ij`` from source j to domain i (zero on i's own source).
        Leading dimensions broadcast against ``mixture``'s, so a stack of posterior draws works.
    xp : module
        ``numpy`` or ``pytensor.tensor``.
    """
    r = own + eps
    if transfer is not None:
        r = r + (mixture[..., None, :] * transfer).sum(axis=-1)
    return r


def log_loss(
    r_eff: Any,
    steps: Any,
    *,
    log_c: Any,
    alpha: Any,
    u: Any,
    beta: Any,
    s_ref: float = 1.0,
    xp: ModuleType = np,
) -> Any:
    """Log validation loss of the BiMix law; every argument broadcasts (numpy rules).

    Parameters
    ----------
    r_eff : array
        Effective proportions in (0, 1] (see :func:`effective_proportion`).
    steps : array
        Training steps (> 0), in the same units as ``s_ref``.
    log_c, alpha, u, beta : array
        Per-domain coefficients of the identifiable form (see the module docstring).
    s_ref : float
        Reference step.
    xp : module
        ``numpy`` or ``pytensor.tensor``.
    """
    log_s = xp.log(steps / s_ref)
    return log_c - alpha * xp.log(r_eff) + xp.logaddexp(0.0, u - beta * log_s)


def loss(r_eff: Any, steps: Any, **coefficients: Any) -> Any:
    """Validation loss in nats per token: ``exp`` of :func:`log_loss` (same arguments).

    Examples
    --------
    >>> round(float(loss(1.0, 10.0, log_c=0.0, alpha=0.2, u=0.0, beta=1.0, s_ref=10.0)), 6)
    2.0
    """
    return np.exp(log_loss(r_eff, steps, **coefficients))


def to_paper(
    *, log_c: Any, alpha: Any, u: Any, beta: Any, s_ref: float = 1.0
) -> dict[str, Any]:
    """The paper's five coefficients ``A, alpha, B, beta, C`` under the convention ``C_i = 1``.

    ``L = A / r^alpha * (B / s^beta + C)`` with ``s`` in the units of ``s_ref`` (training steps).

    Examples
    --------
    >>> p = to_paper(log_c=np.log(2.0), alpha=0.1, u=0.0, beta=0.5, s_ref=100.0)
    >>> {k: round(float(v), 6) for k, v in p.items()}
    {'A': 2.0, 'alpha': 0.1, 'B': 10.0, 'beta': 0.5, 'C': 1.0}
    """
    log_c, alpha, u, beta = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (log_c, alpha, u, beta))
    )
    return {
        "A": np.exp(log_c),
        "alpha": alpha,
        "B": np.exp(u + beta * np.log(s_ref)),
        "beta": beta,
        "C": np.ones_like(log_c),
    }


def from_paper(
    *, A: Any, alpha: Any, B: Any, beta: Any, C: Any = 1.0, s_ref: float = 1.0
) -> dict[str, Any]:
    """Identifiable coefficients ``log_c, alpha, u, beta`` from the paper's ``A, alpha, B, beta, C``.

    Any ``C > 0`` is accepted: the curve only depends on ``A*C`` and ``B/C``, so
    ``from_paper`` then :func:`to_paper` returns the same curve with ``C = 1``.

    Examples
    --------
    >>> p = from_paper(A=2.0, alpha=0.1, B=10.0, beta=0.5, s_ref=100.0)
    >>> {k: round(float(v), 6) for k, v in p.items()}
    {'log_c': 0.693147, 'alpha': 0.1, 'u': 0.0, 'beta': 0.5}
    """
    A, alpha, B, beta, C = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (A, alpha, B, beta, C))
    )
    if np.any(A <= 0) or np.any(B <= 0) or np.any(C <= 0):
        raise ValueError("A, B and C must be positive")
    return {
        "log_c": np.log(A * C),
        "alpha": alpha,
        "u": np.log(B / C) - beta * np.log(s_ref),
        "beta": beta,
    }


def summed_loss_optimum(
    step: float,
    *,
    log_c: Any,
    alpha: Any,
    u: Any,
    beta: Any,
    eps: Any = 0.0,
    s_ref: float = 1.0,
    weights: Any = None,
    lower: Any = 0.0,
    upper: Any = 1.0,
) -> np.ndarray:
    """Proportions that minimise ``sum_i w_i L_i(r_i, step)`` on the simplex, within bounds.

    The paper's optimum (own-proportion law, no transfer). Writing
    ``L_i = K_i (r_i + eps_i)^-alpha_i`` with ``K_i`` the step factor at ``step``, Lagrange
    stationarity gives each ``r_i`` in closed form as a decreasing function of the multiplier::

        r_i(lam) = clip((w_i K_i alpha_i / lam) ** (1 / (alpha_i + 1)) - eps_i, lower_i, upper_i)

    and ``sum_i r_i(lam) = 1`` is one monotone equation in ``log lam``, solved by bisection for
    every draw at once (:func:`scipy.optimize.brentq` draw by draw gives the same answer about 18
    times slower on 4000 draws x 22 domains, ``benchmarks/results/summed_optimum_speed.md``; scipy's
    elementwise root finders cannot sum over the domain axis). The bracket is exact: at the smallest ``lam``
    that puts every domain at its upper bound the sum is ``sum(upper) >= 1``; at the largest that
    puts every domain at its lower bound it is ``sum(lower) <= 1``.

    Parameters
    ----------
    step : float
        Training step at which the summed loss is minimised.
    log_c, alpha, u, beta, eps : array (..., domain)
        Coefficients (see :func:`log_loss`); leading axes (posterior draws, ...) broadcast.
        ``alpha`` must be > 0 (a domain whose loss does not fall with its share has no optimum).
    s_ref : float
        Reference step of the coefficients.
    weights : array (domain,), optional
        Non-negative weights ``w_i`` of the domains' losses (default 1).
    lower, upper : array (domain,) or float
        Per-domain bounds on the proportion, ``0 <= lower <= upper <= 1``,
        ``sum(lower) <= 1 <= sum(upper)``.

    Returns
    -------
    numpy.ndarray (..., domain)
        The optimal proportions; each row sums to 1 within a few ulps and respects the bounds.

    Raises
    ------
    BimixInputError
        If the bounds are infeasible or a weight or ``alpha`` is not positive.

    Examples
    --------
    >>> r = summed_loss_optimum(1000, log_c=[1.0, 1.0], alpha=[0.1, 0.3], u=[0.0, 0.0],
    ...                         beta=[0.5, 0.5], s_ref=1000)
    >>> r.round(3), round(float(r.sum()), 12)
    (array([0.259, 0.741]), 1.0)
    """
    log_c, alpha, u, beta, eps = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (log_c, alpha, u, beta, eps))
    )
    d = log_c.shape[-1]
    w = np.ones(d) if weights is None else np.broadcast_to(np.asarray(weights, float), (d,))
    lo = np.broadcast_to(np.asarray(lower, float), (d,))
    hi = np.broadcast_to(np.asarray(upper, float), (d,))
    if np.any(w <= 0) or np.any(alpha <= 0):
        raise BimixInputError("loss weights and alpha must be positive for the summed-loss optimum")
    if (np.any(lo < 0) or np.any(hi > 1) or np.any(lo > hi)
            or lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12):
        raise BimixInputError(
            f"infeasible bounds: need 0 <= lower <= upper <= 1 and sum(lower) <= 1 <= sum(upper); "
            f"got sum(lower)={lo.sum():.6g}, sum(upper)={hi.sum():.6g}"
        )
    # log(w_i K_i alpha_i): everything in the stationarity condition except the multiplier.
    log_k = log_c + np.logaddexp(0.0, u - beta * np.log(step / s_ref))
    log_a = np.log(w) + log_k + np.log(alpha)
    power = 1.0 / (alpha + 1.0)
    tiny = np.finfo(float).tiny

    def proportions(log_lam: np.ndarray) -> np.ndarray:
        r = np.exp((log_a - log_lam[..., None]) * power) - eps
        return np.clip(r, lo, hi)

    # log lambda at which each domain reaches its bounds (r + eps = bound + eps).
    at_hi = log_a - (alpha + 1.0) * np.log(np.maximum(hi + eps, tiny))
    at_lo = log_a - (alpha + 1.0) * np.log(np.maximum(lo + eps, tiny))
    left, right = at_hi.min(axis=-1), at_lo.max(axis=-1)
    # Bisection halves the bracket each pass; 200 passes reach adjacent floats from any bracket.
    for _ in range(200):
        mid = 0.5 * (left + right)
        too_much = proportions(mid).sum(axis=-1) > 1.0
        left, right = np.where(too_much, mid, left), np.where(too_much, right, mid)
        if np.all(right - left <= 4 * np.spacing(np.abs(mid) + 1.0)):
            break
    return proportions(0.5 * (left + right))
