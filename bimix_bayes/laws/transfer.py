"""The transfer law: BiMix with cross-domain transfer in the effective proportion.

Training on one domain lowers the loss of others (code helps math). The transfer law keeps BiMix's
form (:mod:`bimix_bayes.laws.bimix`) and lets every training domain j add to domain i's effective
proportion with a non-negative weight,

    r_eff_i = r_i + eps_i + sum_{j != i} w_ij r_j,

so a domain that was not trained on still improves with related data. The weights are
``w_ij = tau_w * z_ij`` with half-normal ``z`` and a half-normal overall strength ``tau_w``
(non-centred: most weights are weakly identified, and the hierarchy shrinks them towards zero);
``w_ii = 0``.

Examples
--------
>>> import numpy as np
>>> law = Transfer()
>>> params = {"eps": np.zeros(2), "transfer": np.array([[0.0, 0.5], [0.0, 0.0]])}
>>> law.effective_proportion(params, own=np.array([0.2, 0.8]), mixture=np.array([0.2, 0.8]))
array([0.6, 0.8])
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from bimix_bayes.laws import bimix
from bimix_bayes.laws.base import Params, apply_rows


@dataclass(frozen=True)
class Priors(bimix.Priors):
    """BiMix's priors plus the half-normal scale of the overall transfer strength."""

    transfer_tau: float = 0.1


class Transfer(bimix.BiMix):
    """BiMix with non-negative cross-domain transfer weights ``w_ij`` (module docstring)."""

    name = "transfer"
    summary = "BiMix plus cross-domain transfer: other domains' shares add to a domain's own"
    parameters = {**bimix.BiMix.parameters, "transfer": ("domain", "source")}
    Priors = Priors
    sees_other_domains = True

    def build(self, design: Any, priors: Priors) -> dict[str, Any]:
        import pymc as pm
        import pytensor.tensor as pt

        params = super().build(design, priors)
        domains, sources = design.coords["domain"], design.coords["source"]
        is_own = np.array([[s == d for s in sources] for d in domains])
        rows, cols = np.nonzero(~is_own)
        tau_w = pm.HalfNormal("transfer_tau", priors.transfer_tau)
        z = pm.HalfNormal("transfer_z", 1.0, shape=len(rows))
        w = pt.zeros(is_own.shape)[rows, cols].set(tau_w * z)
        params["transfer"] = pm.Deterministic("transfer", w, dims=("domain", "source"))
        return params

    def effective_proportion(self, params: Params, own: Any, mixture: Any,
                             xp: ModuleType = np) -> Any:
        return own + params["eps"] + apply_rows(params["transfer"], mixture, xp)

    def mixing_rows(self, params: Params, own_onehot: np.ndarray) -> np.ndarray:
        return own_onehot + params["transfer"]

    def summed_loss_optimum(self, params: Params, step: float, s_ref: float, *, weights: Any,
                            lower: Any, upper: Any) -> None:
        return None  # transfer couples the domains: no closed form

    def optimum_start(self, params: Params, step: float, s_ref: float, *, weights: Any,
                      lower: Any, upper: Any) -> np.ndarray:
        # BiMix's optimum of the same coefficients, ignoring transfer: close when weights are small.
        return super().summed_loss_optimum(params, step, s_ref, weights=weights, lower=lower,
                                           upper=upper)
