"""The transfer law plus a linear cross-domain term in the log-loss.

Least squares on real 7-domain runs found that the transfer law (:mod:`bimix_bayes.laws.transfer`)
predicts held-out mixtures better still with a term linear in the mixture added to its log-loss
(about 0.55 % vs 0.65 % MRE; DESIGN §3):

    log L_i = Transfer_i(r_eff_i, s) + sum_j g_ij r_j

Transfer only lets other domains *help* (``w_ij >= 0`` adds to the effective proportion, with a
diminishing return); ``g_ij`` of either sign lets a domain's share raise or lower another's loss
at a constant rate in log-loss, independent of the step (a fixed multiplicative factor on the
loss).

**Identifiability.** The shares sum to one, so adding ``a`` to every ``g_ij`` of row ``i`` is the
same as adding ``a`` to ``log_c_i``: one entry per row is fixed at zero, the domain's own entry
``g_ii`` (its own share already has its own term, the power law, as in transfer's ``w_ii = 0``).
``g_ij`` is then the change of ``log L_i`` when share moves from domain ``i`` to domain ``j``,
beyond what transfer explains. An evaluated domain that is not a training domain has no own entry;
its row fixes the first source's entry instead.

**Prior.** ``g_ij = tau_g * z_ij`` with standard normal ``z`` and a half-normal overall scale
``tau_g`` (non-centred, as the transfer weights: most entries are weakly identified and the
hierarchy shrinks them towards zero, i.e. towards the transfer law).

The law's derivative in the mixture is transfer's plus ``g_i`` (:meth:`TransferLinear.linear_rows`);
its Hessian in ``log L`` is transfer's. ``L_i`` stays convex in the mixture (``log L_i`` is a
convex function plus a linear one).

Examples
--------
>>> import numpy as np
>>> law = TransferLinear()
>>> params = {"log_c": np.zeros(2), "alpha": np.full(2, 0.1), "u": np.zeros(2),
...           "beta": np.full(2, 0.5), "eps": np.zeros(2), "transfer": np.zeros((2, 2)),
...           "linear": np.array([[0.0, 0.2], [0.0, 0.0]])}
>>> mix = np.array([0.5, 0.5])
>>> law.log_loss(params, mix, mix, 10.0, 10.0) - law.log_loss({**params, "linear": 0 * params[
...     "linear"]}, mix, mix, 10.0, 10.0)
array([0.1, 0. ])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bimix_bayes.laws import transfer
from bimix_bayes.laws.base import Params


@dataclass(frozen=True)
class Priors(transfer.Priors):
    """The transfer law's priors plus the half-normal scale of the linear term's strength.

    ``linear_tau = 0.05``: a typical ``|g_ij|`` of a few hundredths, i.e. moving all of the mixture
    from domain ``i`` to ``j`` changes ``L_i`` by a few per cent beyond transfer, the size of the
    improvement least squares finds on real data; the half-normal tail still allows 10-20 %. The
    prior predictive stays that of the transfer law (about 0.9-13 nats for 90 % of prior mean
    losses on the tests' tiny design, every curve falling with steps:
    ``tests/test_law_family.py::test_prior_predictive_gives_a_few_nats_falling_with_steps``).
    """

    linear_tau: float = 0.05


def fixed_columns(domains: list[Any], sources: list[Any]) -> np.ndarray:
    """Per evaluated domain, the source whose ``g`` entry is fixed at zero: its own, else the first.

    Examples
    --------
    >>> fixed_columns(["web", "task"], ["code", "web"])
    array([1, 0])
    """
    return np.array([sources.index(d) if d in sources else 0 for d in domains], dtype=int)


class TransferLinear(transfer.Transfer):
    """The transfer law with a linear cross-domain term ``sum_j g_ij r_j`` (module docstring)."""

    name = "transfer_linear"
    summary = ("transfer plus a linear cross-domain term in the log-loss (shares of other domains "
               "raise or lower it)")
    parameters = {**transfer.Transfer.parameters, "linear": ("domain", "source")}
    Priors = Priors

    def build(self, design: Any, priors: Priors) -> dict[str, Any]:
        import pymc as pm
        import pytensor.tensor as pt

        params = super().build(design, priors)
        domains, sources = list(design.coords["domain"]), list(design.coords["source"])
        free = np.ones((len(domains), len(sources)), dtype=bool)
        free[np.arange(len(domains)), fixed_columns(domains, sources)] = False
        rows, cols = np.nonzero(free)
        g = pt.zeros(free.shape)
        if len(rows):
            tau_g = pm.HalfNormal("linear_tau", priors.linear_tau)
            z = pm.Normal("linear_z", 0.0, 1.0, shape=len(rows))
            g = g[rows, cols].set(tau_g * z)
        params["linear"] = pm.Deterministic("linear", g, dims=("domain", "source"))
        return params

    def linear_rows(self, params: Params) -> Any:
        return params["linear"]
