"""The paper's least-squares fit of the BiMix law, one domain at a time.

As in the paper (Ge et al., arXiv 2405.14908) each evaluated domain's law is fitted on its own with
scipy's Trust Region Reflective solver (``least_squares(method="trf")``) from several starting
points, in log space: the residuals are ``log_loss(model) - log(observed loss)``. We fit the
identifiable form of :mod:`bimix_bayes.laws` (``log_c, alpha, u, beta``) and report the paper's
coefficients with :func:`bimix_bayes.laws.bimix.to_paper`.

Zero proportions: the law uses ``r + eps``. With ``eps="auto"`` a domain whose observations include
runs that did not train on it (proportion 0) gets ``eps`` fitted within ``[1e-5, 1]`` (log scale);
a domain without such runs has nothing to fit ``eps`` on and keeps the fixed floor
:data:`EPS_FLOOR`. A float fixes ``eps`` for every domain.

Examples
--------
>>> from bimix_bayes.leastsq import LeastSquaresFit
>>> fit = LeastSquaresFit().fit(obs)                       # doctest: +SKIP
>>> fit.coefficients_                                       # doctest: +SKIP
>>> fit.to_posterior().save("fit.nc")                      # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import OptimizeResult, least_squares

from bimix_bayes import laws
from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations

#: ``eps`` of a domain that no run left out (nothing to fit it on): small next to any real share.
EPS_FLOOR = 1e-3
#: The law fitted: the paper's, whose component owns the solver's box and starts.
LAW = laws.get("bimix")


class LeastSquaresFit:
    """Per-domain least-squares BiMix fit (sklearn style: cheap constructor, ``fit`` returns self).

    Parameters
    ----------
    eps : "auto" or float
        ``"auto"``: fit ``eps`` for domains with zero-proportion runs, else :data:`EPS_FLOOR`;
        a float: fixed for every domain.
    s_ref : float, optional
        Reference step; default the geometric mean of the distinct evaluation steps, so that
        ``log(s / s_ref)`` is centred.

    Attributes
    ----------
    coefficients_ : pandas.DataFrame
        Index ``domain``; columns ``log_c, alpha, u, beta, eps`` (identifiable form), ``sigma``
        (residual sd of log-loss, ``sqrt(SSR / (n - p))``), ``n`` (rows fitted), ``eps_fitted``,
        ``cost`` (half the sum of squared residuals), ``starts_converged`` and
        ``n_proportions`` (distinct proportions of the domain), ``not_estimable`` (the
        coefficients the data cannot determine, comma-separated: ``alpha`` from a single
        proportion, ``u,beta`` from a single step; their values are whatever the solver stopped
        at) and ``at_bound`` (the coefficients that ended on an edge of the law's
        ``least_squares_bounds``: the data pull them outside the box, so the value is the box's,
        not the data's).
        :meth:`warnings` says both in words.
    s_ref_ : float
    observations_ : Observations

    Examples
    --------
    >>> fit = LeastSquaresFit(eps=1e-3)
    >>> fit.eps
    0.001
    """

    #: The law this estimator fits.
    law = LAW

    def __init__(self, *, eps: Literal["auto"] | float = "auto", s_ref: float | None = None):
        self.eps = eps
        self.s_ref = s_ref

    def fit(self, observations: Observations) -> LeastSquaresFit:
        """Fit every evaluated domain; returns ``self``."""
        if not (self.eps == "auto" or (isinstance(self.eps, float | int) and self.eps >= 0)):
            raise BimixInputError(f"eps must be 'auto' or a number >= 0, got {self.eps!r}")
        if len(observations.distinct_sizes) > 1:
            raise BimixInputError(
                f"the paper's least-squares fit is for one model size, and these runs span "
                f"{len(observations.distinct_sizes)} (params column); use the Bayesian fit, "
                "whose law has a model-size axis, or fit one size", path=observations.source)
        f = observations.frame
        rows = f[f["loss"].notna()]
        steps = rows["step"].to_numpy(dtype=float)
        self.s_ref_ = float(self.s_ref or np.exp(np.mean(np.log(np.unique(steps)))))
        records = {}
        for domain in observations.evaluated_domains:
            d = rows[rows["domain"] == domain]
            records[domain] = self._fit_domain(
                d["proportion"].to_numpy(dtype=float),
                d["step"].to_numpy(dtype=float),
                np.log(d["loss"].to_numpy(dtype=float)),
                domain,
                observations.source,
            )
        self.coefficients_ = pd.DataFrame.from_dict(records, orient="index").rename_axis("domain")
        self.observations_ = observations
        return self

    def _fit_domain(self, r: np.ndarray, s: np.ndarray, y: np.ndarray, domain: str,
                    source: str) -> dict[str, Any]:
        fit_eps = self.eps == "auto" and bool(np.any(r == 0))
        fixed_eps = EPS_FLOOR if self.eps == "auto" else float(self.eps)
        if not fit_eps and fixed_eps == 0 and np.any(r == 0):
            raise BimixInputError(f"domain {domain!r} has runs with proportion 0 and eps=0: its "
                                  "law is infinite there; use eps='auto' or eps > 0", path=source)
        names = ["log_c", "alpha", "u", "beta"] + (["log_eps"] if fit_eps else [])
        n_params = len(names)
        if len(y) <= n_params:
            raise BimixInputError(f"domain {domain!r} has {len(y)} evaluated rows; the least-squares "
                                  f"law needs more than {n_params}", path=source)
        lower, upper = (np.array([LAW.least_squares_bounds[k][i] for k in names]) for i in (0, 1))

        def residuals(theta: np.ndarray) -> np.ndarray:
            p = dict(zip(names, theta, strict=True))
            eps = np.exp(p.pop("log_eps")) if fit_eps else fixed_eps
            return LAW.log_loss_at({**p, "eps": eps}, r + eps, s, self.s_ref_) - y

        grid = [LAW.least_squares_starts[k] for k in names[1:]]
        starts = [np.array([y.min() - 0.1, *start]) for start in itertools.product(*grid)]
        best, converged = multistart(residuals, starts, lower, upper)
        p = dict(zip(names, best.x, strict=True))
        eps = float(np.exp(p.pop("log_eps"))) if fit_eps else fixed_eps
        dof = max(len(y) - n_params, 1)
        not_estimable = (["alpha"] if len(np.unique(r)) < 2 else []) + (
            ["u", "beta"] if len(np.unique(s)) < 2 else [])
        # An edge within a millionth of the box's width: the solver stopped against it.
        width = upper - lower
        at_bound = [k for k, x, lo, hi, w in zip(names, best.x, lower, upper, width, strict=True)
                    if k not in not_estimable and min(x - lo, hi - x) < 1e-6 * w]
        return {**{k: float(v) for k, v in p.items()}, "eps": eps,
                "sigma": float(np.sqrt(2 * best.cost / dof)), "n": len(y), "eps_fitted": fit_eps,
                "cost": float(best.cost), "starts_converged": converged,
                "n_proportions": len(np.unique(r)), "not_estimable": ",".join(not_estimable),
                "at_bound": ",".join(at_bound)}

    def warnings(self) -> list[str]:
        """One sentence per domain whose shown coefficients the data do not support.

        Examples
        --------
        >>> import pandas as pd
        >>> from bimix_bayes.observations import Observations
        >>> obs = Observations.from_frame(pd.DataFrame({"run": "a", "domain": "web",
        ...     "proportion": 1.0, "step": [10, 20, 40, 80, 160, 320],
        ...     "loss": [5.0, 4.1, 3.6, 3.3, 3.1, 3.0]}))
        >>> LeastSquaresFit().fit(obs).warnings()[0]  # doctest: +ELLIPSIS
        "domain 'web': alpha is not estimable (one proportion...); its value is arbitrary"
        """
        return coefficient_warnings(self.coefficients_["not_estimable"].to_dict(),
                                    self.coefficients_["at_bound"].to_dict())

    def paper_coefficients(self) -> pd.DataFrame:
        """The paper's ``A, alpha, B, beta, C`` per domain (convention ``C = 1``; steps as given)."""
        c = self.coefficients_
        paper = LAW.paper_coefficients({k: c[k].to_numpy() for k in LAW.parameters}, self.s_ref_)
        return pd.DataFrame(paper, index=c.index)

    def to_posterior(self) -> Any:
        """The fit as a :class:`~bimix_bayes.posterior.Posterior` of one chain and one draw.

        ``sigma`` is the per-domain residual scale of normal noise, so ``predict(...,
        observation=True)`` adds the fitted noise; there is no per-run effect (``sigma_run = 0``).
        """
        from bimix_bayes.posterior import Posterior
        from bimix_bayes.spec import ModelSpec

        c = self.coefficients_.assign(sigma_run=0.0)
        draws = xr.Dataset(
            {k: (("chain", "draw", "domain"), c[k].to_numpy(dtype=float)[None, None, :])
             for k in (*LAW.parameters, "sigma", "sigma_run")},
            coords={"chain": [0], "draw": [0], "domain": list(c.index)},
        )
        return Posterior.from_draws(
            draws, self.observations_, spec=ModelSpec(law=LAW.name, noise="normal"),
            method="leastsq", s_ref=self.s_ref_,
            diagnostics={"eps": self.eps, "solver": "scipy least_squares trf",
                         "cost": c["cost"].to_dict(), "n": c["n"].to_dict(),
                         "starts_converged": c["starts_converged"].to_dict(),
                         "eps_fitted": c["eps_fitted"].to_dict(),
                         "n_proportions": c["n_proportions"].to_dict(),
                         "not_estimable": c["not_estimable"].to_dict(),
                         "at_bound": c["at_bound"].to_dict()},
        )


def multistart(residuals: Callable[[np.ndarray], np.ndarray], starts: Iterable[np.ndarray],
               lower: np.ndarray, upper: np.ndarray,
               jac: Callable[[np.ndarray], np.ndarray] | str = "2-point"
               ) -> tuple[OptimizeResult, int]:
    """Trust Region Reflective least squares from each start; the lowest-cost result.

    The one multi-start of the package's least-squares fits (the paper's BiMix here, the
    model-size baselines in :mod:`bimix_bayes.scaling_laws`). Starts are clipped just inside the
    box (TRF needs a strictly feasible start). ``jac``: the residuals' Jacobian, or scipy's
    finite-difference scheme.

    Returns
    -------
    (scipy.optimize.OptimizeResult, int)
        The best result and how many starts converged (``success``).

    Examples
    --------
    >>> best, n = multistart(lambda t: t - 2.0, [np.array([0.0]), np.array([5.0])],
    ...                      np.array([-10.0]), np.array([10.0]))
    >>> round(float(best.x[0]), 6), n
    (2.0, 2)
    """
    best, converged = None, 0
    for start in starts:
        theta0 = np.clip(np.asarray(start, dtype=float), lower + 1e-9, upper - 1e-9)
        res = least_squares(residuals, theta0, jac=jac, bounds=(lower, upper), method="trf",
                            x_scale="jac")
        converged += bool(res.success)
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        raise ValueError("multistart needs at least one start")
    return best, converged


def coefficient_warnings(not_estimable: dict[str, str], at_bound: dict[str, str]) -> list[str]:
    """Sentences for coefficients a least-squares fit could not determine (see ``warnings``).

    Parameters
    ----------
    not_estimable, at_bound : dict of str to str
        Per domain, comma-separated coefficient names (as in ``coefficients_`` and the posterior
        file's diagnostics).
    """
    reasons = {"alpha": "one proportion: a single run, or every run at the same share",
               "u": "one evaluation step", "beta": "one evaluation step"}
    lines = []
    for domain, names in not_estimable.items():
        names = [n for n in str(names).split(",") if n]
        if names:
            why = "; ".join(dict.fromkeys(reasons[n] for n in names))
            lines.append(f"domain {domain!r}: {', '.join(names)} "
                         f"{'is' if len(names) == 1 else 'are'} not estimable ({why}); "
                         f"{'its value is' if len(names) == 1 else 'their values are'} arbitrary")
    for domain, names in at_bound.items():
        names = [n for n in str(names).split(",") if n]
        if names:
            box = ", ".join(f"{n} in [{LAW.least_squares_bounds[n][0]:g}, "
                            f"{LAW.least_squares_bounds[n][1]:g}]" for n in names)
            lines.append(f"domain {domain!r}: the fit stopped on the solver's bounds ({box}); "
                         "the data pull it outside them: the value shown is the box's edge, not "
                         "an estimate")
    return lines
