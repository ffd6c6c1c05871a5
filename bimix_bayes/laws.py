"""The BiMix law in an identifiable parameterisation, shared by every backend.

The paper (Ge et al., arXiv 2405.14908, eq. 4) writes the validation loss of domain i as

    L_i(r_i, s) = A_i / r_i^alpha_i * (B_i / s^beta_i + C_i)

which is not identifiable: scaling A_i up and B_i, C_i down gives the same curve. We use

    log L_i = log_c_i - alpha_i * log(r_eff_i) + softplus(u_i - beta_i * log(s / s_ref))

with the effective proportion ``r_eff_i = r_i + eps_i + sum_j w_ij r_j`` (``eps_i`` keeps a domain that
was not trained on at a finite loss; ``w`` is the optional cross-domain transfer matrix of the transfer
law) and ``s_ref`` a reference step that makes ``u_i`` the log ratio of the reducible to the irreducible
part of the loss at ``s_ref``. Under the convention ``C_i = 1`` the paper's coefficients are

    A_i = exp(log_c_i),   B_i = exp(u_i) * s_ref ** beta_i,   C_i = 1.

:func:`log_loss` takes an array module (``numpy`` or ``pytensor.tensor``) so the least-squares fit, the
PyMC model and the optimizer evaluate one and the same expression.

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
