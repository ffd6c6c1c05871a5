"""The BiMix law (Ge et al., arXiv 2405.14908) in an identifiable parameterisation.

The paper (eq. 4) writes the validation loss of domain i as

    L_i(r_i, s) = A_i / r_i^alpha_i * (B_i / s^beta_i + C_i)

which is not identifiable: scaling A_i up and B_i, C_i down gives the same curve. We use

    log L_i = log_c_i - alpha_i * log(r_eff_i) + softplus(u_i - beta_i * log(s / s_ref))

with the effective proportion ``r_eff_i = r_i + eps_i`` (``eps_i`` keeps a domain that was not
trained on at a finite loss) and ``s_ref`` a reference step that makes ``u_i`` the log ratio of the
reducible to the irreducible part of the loss at ``s_ref``. Under the convention ``C_i = 1`` the
paper's coefficients are

    A_i = exp(log_c_i),   B_i = exp(u_i) * s_ref ** beta_i,   C_i = 1.

:func:`log_loss` takes an array module (``numpy`` or ``pytensor.tensor``) so the least-squares fit,
the PyMC model and the optimizer evaluate one and the same expression. :func:`to_paper` and
:func:`from_paper` convert to and from the paper's coefficients; :func:`summed_loss_optimum` is the
paper's optimal mixture. :class:`BiMix` is the law as a component of the Bayesian model
(:mod:`bimix_bayes.laws.base`): its priors, the parameterisation it samples and its derivatives.
The transfer law (:mod:`bimix_bayes.laws.transfer`) extends it.

Examples
--------
>>> import numpy as np
>>> float(np.exp(log_loss(0.5, 1000, log_c=np.log(2.0), alpha=0.1, u=0.0, beta=0.5, s_ref=1000)))
4.287093850145...
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from bimix_bayes import scale
from bimix_bayes.errors import BimixInputError
from bimix_bayes.laws.base import Law, Params

#: The law's coefficients, each per evaluated domain.
COEFFICIENTS = ("log_c", "alpha", "u", "beta", "eps")


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
        Effective proportions in (0, 1] (the own share plus ``eps``).
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


@dataclass(frozen=True)
class Priors:
    """Prior hyperparameters, on the scales the model samples on (see :meth:`BiMix.build`).

    Defaults give losses of about 1-10 nats (90 % of prior curves) and step exponents of 0.1-1.5:
    see :func:`bimix_bayes.model.prior_predictive`.
    """

    level_mu: tuple[float, float] = (1.1, 0.5)  # mean log-loss at the reference point ~ 3 nats
    level_tau: float = 0.4
    log_alpha_mu: tuple[float, float] = (float(np.log(0.08)), 0.75)
    log_alpha_tau: float = 0.5
    u_mu: tuple[float, float] = (-1.0, 1.0)  # reducible part ~ 1/3 of the irreducible at s_ref
    u_tau: float = 0.75
    log_beta_mu: tuple[float, float] = (float(np.log(0.5)), 0.5)
    log_beta_tau: float = 0.4
    log_eps: tuple[float, float] = (float(np.log(1e-3)), 1.0)


def _hierarchical(name: str, mu: tuple[float, float], tau: float, *, log: bool,
                  fixed_scale: bool = False) -> Any:
    """Per-domain parameter with a population mean and scale (centred).

    The scale's Gamma(2, 2 / tau) prior (mean ``tau``) vanishes at zero: in the centred form a scale
    near zero opens a funnel whenever domains happen to be alike, and a boundary-avoiding prior
    (Chung et al. 2013) keeps the sampler out of it while still allowing strong pooling. With
    ``fixed_scale`` the scale is ``tau`` itself, not sampled (where the data cannot inform it).
    """
    import pymc as pm

    m = pm.Normal(f"{name}_mu", *mu)
    t = tau if fixed_scale else pm.Gamma(f"{name}_tau", alpha=2.0, beta=2.0 / tau)
    if log:
        return pm.LogNormal(name.removeprefix("log_"), m, t, dims="domain")
    return pm.Normal(name, m, t, dims="domain")


class BiMix(Law):
    """The plain BiMix law: each domain's loss depends on its own share only.

    Sampled parameters are chosen for geometry; the law's coefficients are deterministic
    functions of them:

    * ``level_i``: the log-loss of domain i at its typical proportion and the reference step
      (``r = exp(centre_i)``, the geometric mean of the domain's non-zero proportions;
      ``s = s_ref``). It is what the data pin down best, so sampling it instead of ``log_c``
      removes the strong ``log_c``-``alpha`` and ``log_c``-``u`` correlations:
      ``log_c = level - softplus(u) + alpha * centre``.
    * ``alpha, beta`` are log-normal, ``level, u`` normal, each with a population mean and scale
      over domains (partial pooling, centred: every domain has hundreds of points, so the centred
      form is the well-conditioned one).
    * ``eps_i`` (log-normal around 1e-3) keeps a domain that was not trained on at a finite loss.
    * With losses at one step only (:attr:`~bimix_bayes.model.Design.has_step_axis` false) the
      step term is fixed flat (``u = beta = 0``), not sampled: the reduced form of the law.
    """

    name = "bimix"
    summary = "BiMix: each domain's loss is a power law in its own share and in steps"
    parameters = {c: ("domain",) for c in COEFFICIENTS}
    Priors = Priors
    # Across sizes the irreducible level and the reducible part scale as power laws in N, and the
    # proportion and step exponents drift; eps is shared. A shared step exponent (Chinchilla's
    # data exponent does not depend on N) mispredicted the curves of the next size up from two
    # sizes: with its slope, MRE there fell from 3.95 to 3.38 % (3Mix), 3.00 to 1.19 % (5Mix) and
    # 1.77 to 1.26 % (RedPajama) (benchmarks/results/cross_scale.md). See size_coefficients for
    # three sizes or more.
    size_terms = {"log_c": "linear", "u": "linear", "alpha": "log", "beta": "log"}
    #: Least-squares box and multi-start of the paper's fit (:mod:`bimix_bayes.leastsq`);
    #: alpha > 0 keeps the summed-loss optimum defined.
    least_squares_bounds = {"log_c": (-5.0, 5.0), "alpha": (1e-6, 3.0), "u": (-15.0, 15.0),
                            "beta": (1e-3, 5.0), "log_eps": (float(np.log(1e-5)), 0.0)}
    least_squares_starts = {"alpha": (0.05, 0.5), "u": (-1.0, 1.5), "beta": (0.3, 1.0),
                            "log_eps": (float(np.log(1e-3)), float(np.log(3e-2)))}

    def build(self, design: Any, priors: Priors) -> dict[str, Any]:
        import pymc as pm
        import pytensor.tensor as pt

        p = priors
        level = _hierarchical("level", p.level_mu, p.level_tau, log=False)
        alpha = _hierarchical("log_alpha", p.log_alpha_mu, p.log_alpha_tau, log=True)
        if design.has_step_axis:
            u = _hierarchical("u", p.u_mu, p.u_tau, log=False)
            beta = _hierarchical("log_beta", p.log_beta_mu, p.log_beta_tau, log=True)
        else:
            # One step (a RegMix or Olmix swarm) identifies no step term: sampling u and beta
            # would only explore their priors (and slow the sampler). Fix a flat step term; the
            # level then is the loss at that step, and predictions at other steps are refused.
            u = pm.Deterministic("u", pt.zeros(len(design.coords["domain"])), dims="domain")
            beta = pm.Deterministic("beta", pt.zeros(len(design.coords["domain"])),
                                    dims="domain")
        eps = pm.LogNormal("eps", *p.log_eps, dims="domain")
        log_c = pm.Deterministic("log_c", level - pt.softplus(u) + alpha * design.centre,
                                 dims="domain")
        return {"log_c": log_c, "alpha": alpha, "u": u, "beta": beta, "eps": eps}

    def size_coefficients(self, design: Any) -> dict[str, str]:
        terms = super().size_coefficients(design)
        if design is None:
            return terms
        if not design.has_step_axis:
            del terms["u"], terms["beta"]  # fixed at 0 in the reduced form (one step)
        elif scale.learns_scales(design):
            # Measured, not reasoned: predicting 1B from four sizes (5Mix, RedPajama; 8 targets,
            # short chains) the step slope left the chains in different modes (R-hat 2.2-2.3
            # against 1.04-1.10) and doubled the MRE (4.7 and 5.4 % against 2.5 and 3.3 %), with
            # the learned offsets' scale beside it. Until longer runs say otherwise, beta is
            # shared there.
            del terms["beta"]
        return terms

    def effective_proportion(self, params: Params, own: Any, mixture: Any,
                             xp: ModuleType = np) -> Any:
        return own + params["eps"]

    def log_loss_at(self, params: Params, r_eff: Any, steps: Any, s_ref: float,
                    xp: ModuleType = np) -> Any:
        return log_loss(r_eff, steps, log_c=params["log_c"], alpha=params["alpha"], u=params["u"],
                        beta=params["beta"], s_ref=s_ref, xp=xp)

    def d_log_loss(self, params: Params, r_eff: np.ndarray, step: float, s_ref: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        # log L is linear in log r_eff with slope -alpha.
        alpha = params["alpha"]
        return -alpha / r_eff, alpha / r_eff**2

    def paper_coefficients(self, params: Params, s_ref: float) -> dict[str, np.ndarray]:
        return to_paper(log_c=params["log_c"], alpha=params["alpha"], u=params["u"],
                        beta=params["beta"], s_ref=s_ref)

    def summed_loss_optimum(self, params: Params, step: float, s_ref: float, *, weights: Any,
                            lower: Any, upper: Any) -> np.ndarray | None:
        if np.any(np.asarray(weights) <= 0) or np.any(params["alpha"] <= 0):
            return None  # a domain whose loss does not fall with its share has no optimum
        return summed_loss_optimum(step, **{k: params[k] for k in COEFFICIENTS}, s_ref=s_ref,
                                   weights=weights, lower=lower, upper=upper)
