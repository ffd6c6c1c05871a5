"""The Data Mixing Laws form (Ye et al. 2024, arXiv 2403.16952) with a power law in steps.

Ye et al. fit each domain's validation loss as ``L_i(r) = c_i + k_i exp(sum_j t_ij r_j)``: an
irreducible part ``c_i`` plus a reducible part that is exponential in the mixture, so that
``log(L_i - c_i)`` is linear in the mixture. Their step law multiplies the reducible part by a power
of the step; on the log-loss scale the law sampled here is

    log L_i = logaddexp(log_c_i, log_k_i + sum_j t_ij r_j - beta_i * log(s / s_ref))

(``k_i`` the reducible loss at ``s_ref`` of a mixture with zero score). The law's **mixture score**
``x_i = sum_j t_ij r_j`` plays the part the effective proportion plays in BiMix
(:mod:`bimix_bayes.laws.base`): the rows are ``t`` (of either sign), and the derivatives of
``log L_i`` in ``x_i`` are ``sigmoid(z_i)`` and ``sigmoid(z_i) (1 - sigmoid(z_i))`` with
``z_i = log_k_i + x_i - beta_i log(s / s_ref) - log_c_i`` the log ratio of the reducible to the
irreducible loss. ``L_i`` is convex in the mixture (an exponential of an affine function).

**Identifiability.** The shares sum to one, so adding ``a`` to every ``t_ij`` of row ``i`` and
subtracting it from ``log_k_i`` gives the same law: one entry per row is redundant. We remove it
with ``sum_j t_ij = 0`` rather than by fixing one entry (such as ``t_ii = 0``):

* the form treats every training domain alike, and with a fixed reference entry the prior (and
  the meaning of every other entry) would depend on which source was chosen as the reference;
  rows ``t_i = Q z_i`` with ``Q`` an orthonormal basis of the sum-zero subspace (Helmert contrasts)
  and iid normal ``z_i`` give every source the same prior, so the prior is exchangeable;
* it needs no "own" source, so it holds unchanged for evaluated domains that are not training
  domains (a downstream task or another validation set);
* ``t_ij - t_ik`` is the change of the log reducible loss when share moves from source ``k`` to
  source ``j``, the quantity the data inform.

**Centring.** As BiMix samples the log-loss at a domain's typical proportion
(:class:`bimix_bayes.laws.bimix.BiMix`), this law samples ``level_i``, the log-loss at the design's
mean mixture ``rbar`` and ``s_ref``, and ``reducible_i``, the log ratio of the reducible to the
irreducible loss there; then ``log_c = level - softplus(reducible)`` and
``log_k = log_c + reducible - t_i . rbar``. The data pin down ``level`` best, so it decouples
``log_c`` from ``log_k`` and ``t`` in the posterior.

Examples
--------
>>> import numpy as np
>>> law = DataMixingLaw()
>>> params = {"log_c": np.log([1.5]), "log_k": np.log([2.0]), "t": np.array([[-1.0, 1.0]]),
...           "beta": np.array([0.5])}
>>> mix = np.array([[1.0, 0.0], [0.0, 1.0]])
>>> bool(np.all(np.diff(law.log_loss(params, mix[:, :1], mix, 1000.0, 1000.0), axis=0) > 0))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from scipy.special import expit

from bimix_bayes.laws.base import Law, Params, apply_rows
from bimix_bayes.laws.bimix import _hierarchical


def helmert(n: int) -> np.ndarray:
    """``(n, n - 1)`` orthonormal basis of the vectors of length ``n`` that sum to zero.

    Column ``k`` is ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k + 1))`` with ``k`` ones.

    Examples
    --------
    >>> q = helmert(3)
    >>> np.allclose(q.sum(axis=0), 0), np.allclose(q.T @ q, np.eye(2))
    (True, True)
    """
    q = np.zeros((n, max(n - 1, 0)))
    for k in range(1, n):
        q[:k, k - 1] = 1.0
        q[k, k - 1] = -k
        q[:, k - 1] /= np.sqrt(k * (k + 1))
    return q


@dataclass(frozen=True)
class Priors:
    """Prior hyperparameters, on the scales the model samples on (see :meth:`DataMixingLaw.build`).

    ``level`` and ``beta`` as BiMix's (about 3 nats at the reference point; step exponents
    0.1-1.5); ``reducible`` as BiMix's ``u``. ``t_sd`` is the sd of each sum-zero coordinate of a
    row of ``t``: moving all of the mixture from one source to another then changes the log
    reducible loss by about ``sqrt(2) * t_sd`` (sd), i.e. by a factor of 0.1-10 at 90 %, and the
    log-loss by about a quarter of that at the prior's typical reducible share. With these
    defaults 90 % of prior mean losses lie within about 0.9-15 nats (median 3) on the tests'
    tiny design, and every curve falls with steps
    (``tests/test_law_family.py::test_prior_predictive_gives_a_few_nats_falling_with_steps``).
    """

    level_mu: tuple[float, float] = (1.1, 0.5)
    level_tau: float = 0.4
    reducible_mu: tuple[float, float] = (-1.0, 1.0)
    reducible_tau: float = 0.75
    log_beta_mu: tuple[float, float] = (float(np.log(0.5)), 0.5)
    log_beta_tau: float = 0.4
    t_sd: float = 1.0


class DataMixingLaw(Law):
    """Ye et al.'s exponential mixture law with a power law in steps (module docstring)."""

    name = "dml"
    summary = ("Data Mixing Laws (Ye et al.): log(L - c) linear in the mixture, power law in "
               "steps")
    parameters = {"log_c": ("domain",), "log_k": ("domain",), "beta": ("domain",),
                  "t": ("domain", "source")}
    Priors = Priors
    sees_other_domains = True
    # Across sizes the irreducible and the reducible level move as power laws in N; the mixture
    # score t and the step exponent are shared.
    size_terms = {"log_c": "linear", "log_k": "linear"}

    def build(self, design: Any, priors: Priors) -> dict[str, Any]:
        import pymc as pm
        import pytensor.tensor as pt

        p = priors
        n_dom, n_src = len(design.coords["domain"]), len(design.coords["source"])
        level = _hierarchical("level", p.level_mu, p.level_tau, log=False)
        reducible = _hierarchical("reducible", p.reducible_mu, p.reducible_tau, log=False)
        if design.has_step_axis:
            beta = _hierarchical("log_beta", p.log_beta_mu, p.log_beta_tau, log=True)
        else:  # one step identifies no step exponent (the reduced form, as in bimix)
            beta = pm.Deterministic("beta", pt.zeros(n_dom), dims="domain")
        if n_src > 1:
            z = pm.Normal("t_z", 0.0, p.t_sd, shape=(n_dom, n_src - 1))
            t = pt.dot(z, helmert(n_src).T)
        else:  # one training domain: the mixture never changes, there is nothing to fit
            t = pt.zeros((n_dom, n_src))
        t = pm.Deterministic("t", t, dims=("domain", "source"))
        # The design's mean mixture: a constant of the design, whatever the data.
        rbar = design.mixture.mean(axis=0)
        log_c = pm.Deterministic("log_c", level - pt.softplus(reducible), dims="domain")
        log_k = pm.Deterministic("log_k", log_c + reducible - pt.dot(t, rbar), dims="domain")
        return {"log_c": log_c, "log_k": log_k, "beta": beta, "t": t}

    def effective_proportion(self, params: Params, own: Any, mixture: Any,
                             xp: ModuleType = np) -> Any:
        # The mixture score x_i = sum_j t_ij r_j (the law's "effective proportion").
        return apply_rows(params["t"], mixture, xp)

    def log_loss_at(self, params: Params, r_eff: Any, steps: Any, s_ref: float,
                    xp: ModuleType = np) -> Any:
        reducible = params["log_k"] + r_eff - params["beta"] * xp.log(steps / s_ref)
        return xp.logaddexp(params["log_c"], reducible)

    def d_log_loss(self, params: Params, r_eff: np.ndarray, step: float, s_ref: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        # d/dx logaddexp(a, b + x) = sigmoid(b + x - a): the reducible share of the loss.
        share = expit(params["log_k"] + r_eff - params["beta"] * np.log(step / s_ref)
                      - params["log_c"])
        return share, share * (1.0 - share)

    def mixing_rows(self, params: Params, own_onehot: np.ndarray) -> np.ndarray:
        return params["t"]
