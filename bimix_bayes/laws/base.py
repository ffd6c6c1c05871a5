"""The interface every data-mixing law implements, and the registry that names them.

A law says how each evaluated domain's mean log-loss depends on the training mixture and the step.
Every law in this package sees the mixture through one **effective proportion** per domain,

    r_eff_i = eps_i + sum_j R_ij r_j          (R: the law's mixing rows; default the own share)

and maps it to a log-loss ``log L_i = f_i(r_eff_i, s) + sum_j G_ij r_j`` (``G``: an optional
linear term, :meth:`Law.linear_rows`; none by default). "Effective proportion" is BiMix's word; in
general it is the law's **mixture score**, any affine function of the mixture (for the Data Mixing
Laws form, ``sum_j t_ij r_j`` of either sign). That one structure is what the optimizer needs: the
mixture gradient and Hessian of any law follow by the chain rule from the law's rows, its linear
term and its two derivatives of ``f`` in ``r_eff`` (:meth:`Law.d_log_loss`), with no finite
differences.

A law owns, in one module each (``bimix_bayes/laws/<name>.py``):

* its parameters and their dims (:attr:`Law.parameters`, the names in the posterior file);
* its priors (:attr:`Law.Priors`) and the parameterisation it samples (:meth:`Law.build`);
* its formula, one expression for numpy and PyTensor (:meth:`Law.log_loss`, ``xp`` argument);
* its derivatives in the effective proportion (:meth:`Law.d_log_loss`), its rows
  (:meth:`Law.mixing_rows`) and, where it has one, its linear term (:meth:`Law.linear_rows`);
* where they exist, the paper's coefficients (:meth:`Law.paper_coefficients`) and the paper's
  summed-loss optimum (:meth:`Law.summed_loss_optimum`, or a start for the numerical one).

Adding a law is one module with a subclass plus one :func:`register` call.

Examples
--------
>>> from bimix_bayes import laws
>>> sorted(laws.names())
['bimix', 'dml', 'transfer', 'transfer_linear']
>>> laws.get("bimix").parameters["alpha"]
('domain',)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from bimix_bayes.errors import BimixInputError

Params = Mapping[str, Any]


@dataclass(frozen=True)
class NoPriors:
    """A law without hyperparameters of its own."""


def apply_rows(rows: Any, mixture: Any, xp: ModuleType = np) -> Any:
    """``sum_j M_ij r_j`` (..., domain) of rows ``M`` (..., domain, source) and the mixture
    (..., source), leading axes broadcast (posterior draws against mixtures); numpy or PyTensor.

    A contraction, not a broadcast product and sum: PyTensor turns it into one matrix product,
    where the (run, domain, source) temporary made each gradient of the transfer law on RegMix's
    512 runs x 17 sources ~1.7x slower and its first compile ~1.6x longer.
    """
    return xp.einsum("...s,...ds->...d", mixture, rows)


class Law(ABC):
    """A data-mixing law: ``log L_i = f_i(r_eff_i, s) + G_i . r`` with ``r_eff = eps + R r``
    (module docstring).

    Attributes
    ----------
    name : str
        The name users pass (``--law NAME``) and the posterior file records.
    summary : str
        One line for ``--help`` and reports.
    parameters : dict
        Parameter name -> dims after ``(chain, draw)``, e.g. ``{"alpha": ("domain",)}``.
    Priors : type
        Frozen dataclass of the law's prior hyperparameters (defaults are the package's priors).
    sees_other_domains : bool
        Whether a domain's loss may depend on other domains' shares. A law that only sees each
        domain's own share cannot predict a target domain (one no run trained on).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    parameters: ClassVar[dict[str, tuple[str, ...]]]
    Priors: ClassVar[type] = NoPriors
    sees_other_domains: ClassVar[bool] = False
    #: Coefficient -> ``"linear"`` or ``"log"``: how it changes with log model size when the
    #: observations hold several sizes (:mod:`bimix_bayes.scale`); the others are shared by sizes.
    size_terms: ClassVar[dict[str, str]] = {}

    # ---------------------------------------------------------------------------- the model
    @abstractmethod
    def build(self, design: Any, priors: Any) -> dict[str, Any]:
        """Create the law's PyMC variables inside the current model; return its parameters.

        Parameters
        ----------
        design : bimix_bayes.model.Design
            The arrays of the data (``own``, ``mixture``, ``centre``, ``steps``, ``s_ref``,
            ``coords``); array fields may be PyTensor shared variables.
        priors : Law.Priors

        Returns
        -------
        dict
            Every name of :attr:`parameters` -> a PyTensor variable with those dims. Derived
            parameters are ``pm.Deterministic`` so that they land in the posterior.
        """

    def size_coefficients(self, design: Any) -> dict[str, str]:
        """The coefficients with a model-size slope in ``design`` (None: wherever the law has
        one), and how they change (:attr:`size_terms`; :mod:`bimix_bayes.scale`)."""
        return dict(self.size_terms)

    # ---------------------------------------------------------------------------- the formula
    @abstractmethod
    def effective_proportion(self, params: Params, own: Any, mixture: Any,
                             xp: ModuleType = np) -> Any:
        """``r_eff`` (..., domain), the law's mixture score, from each domain's own share
        (..., domain) and the mixture (..., source); parameters broadcast against the leading
        axes."""

    @abstractmethod
    def log_loss_at(self, params: Params, r_eff: Any, steps: Any, s_ref: float,
                    xp: ModuleType = np) -> Any:
        """``log L`` at effective proportions ``r_eff`` and ``steps`` (numpy broadcasting)."""

    def log_loss(self, params: Params, own: Any, mixture: Any, steps: Any, s_ref: float,
                 xp: ModuleType = np) -> Any:
        """Mean log-loss of each domain: :meth:`log_loss_at` of :meth:`effective_proportion`,
        plus the linear term of :meth:`linear_rows` where the law has one.

        ``own`` and ``mixture`` carry a trailing ``domain`` / ``source`` axis; ``steps`` and the
        parameters broadcast against the result's leading axes.
        """
        log_l = self.log_loss_at(params, self.effective_proportion(params, own, mixture, xp=xp),
                                 steps, s_ref, xp=xp)
        linear = self.linear_rows(params)
        return log_l if linear is None else log_l + apply_rows(linear, mixture, xp)

    # ---------------------------------------------------------------------------- the optimizer
    @abstractmethod
    def d_log_loss(self, params: Params, r_eff: np.ndarray, step: float, s_ref: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """First and second derivative of ``log L_i`` in ``r_eff_i`` (elementwise, numpy)."""

    def mixing_rows(self, params: Params, own_onehot: np.ndarray) -> np.ndarray | None:
        """``R`` (..., domain, source): ``d r_eff / d mixture``.

        None means each domain's own share only (``own_onehot``), which lets the optimizer use a
        diagonal Hessian.
        """
        return None

    def linear_rows(self, params: Params) -> Any:
        """``G`` (..., domain, source): a term ``sum_j G_ij r_j`` added to ``log L_i``, or None.

        It adds ``G_i`` to the mixture gradient of ``log L_i`` and nothing to its Hessian
        (:class:`bimix_bayes.surface.LossSurface`). Called with numpy or PyTensor parameters.
        """
        return None

    # ---------------------------------------------------------------------------- the paper
    def paper_coefficients(self, params: Params, s_ref: float) -> dict[str, np.ndarray] | None:
        """The BiMix paper's ``A, alpha, B, beta, C`` where the law has them, else None."""
        return None

    def summed_loss_optimum(self, params: Params, step: float, s_ref: float, *, weights: Any,
                            lower: Any, upper: Any) -> np.ndarray | None:
        """The paper's closed-form optimum of the weighted summed loss, or None where the law
        has none (the optimizer then solves numerically from :meth:`optimum_start`).

        ``params`` carry a leading sample axis; ``weights``, ``lower`` and ``upper`` are per
        evaluated domain; the result is ``(sample, domain)``.
        """
        return None

    def optimum_start(self, params: Params, step: float, s_ref: float, *, weights: Any,
                      lower: Any, upper: Any) -> np.ndarray | None:
        """A good start for the numerical optimum (same shapes as :meth:`summed_loss_optimum`);
        None: the centre of the feasible set."""
        return self.summed_loss_optimum(params, step, s_ref, weights=weights, lower=lower,
                                        upper=upper)


_REGISTRY: dict[str, Law] = {}


def register(law: Law) -> Law:
    """Make ``law`` available by its name (``--law NAME``, posterior files); returns it."""
    _REGISTRY[law.name] = law
    return law


def get(name: str) -> Law:
    """The registered law called ``name``.

    Raises
    ------
    BimixInputError
        For a name no law is registered under.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BimixInputError(f"unknown law {name!r}; expected one of {', '.join(names())}") from None


def names() -> list[str]:
    """Names of the registered laws, in registration order."""
    return list(_REGISTRY)
