"""Least-squares reference laws across model size: what the scale-aware Bayesian law must beat.

Three baselines for predicting a larger model's losses from runs at smaller sizes (issue 12's
evidence), each fitted per evaluated domain ``i`` by least squares on log-loss with the package's
one multi-start (:func:`bimix_bayes.leastsq.multistart`), and each answering one question
through one method, ``predict(mixtures, steps, params) -> loss`` of shape (mixture, step, domain):

* :class:`ShukorAdditive`: Shukor et al. 2025, "Scaling Laws for Optimal Data Mixtures"
  (arXiv 2507.09404), the **additive** law

      L_i(N, D, h) = E + 1 / sum_j C_j h_j^gamma_j + A / N^alpha + B / D^beta

  with ``h`` the training mixture (shares of the ``k`` training domains), ``N`` the model size in
  parameters and ``D`` the training tokens; 2k + 5 coefficients per evaluated domain. The mixture
  changes only the level, so the best mixture does not depend on scale.
* :class:`ShukorJoint`: the paper's **joint** law, whose size and data terms depend on the mixture:

      L_i(N, D, h) = E + 1 / sum_j C_j h_j^gamma_j + A_h / N^alpha_h + B_h / D^beta_h,
      A_h = sum_j A_j h_j,  alpha_h = sum_j alpha_j h_j,  B_h = sum_j B_j h_j,  beta_h = sum_j beta_j h_j

  (6k + 1 coefficients). Our choice: the mixture-dependent coefficients are the mixture-weighted
  means of per-training-domain values (linear in ``h``), our reading of the paper's joint form,
  which we could not check against its text here; the additive law above is as the paper (and
  DESIGN.md) write it.
* :class:`NearestSizeBiMix`: the paper's per-size BiMix fit (:class:`bimix_bayes.leastsq.LeastSquaresFit`)
  at the fitted size closest to the target in log N, used unchanged at the target: a per-size law
  cannot extrapolate in size, and this is what it gives when forced to.

Choices the paper leaves open, made here and said where they matter:

* ``D``: the ``tokens`` column when every evaluated row has a positive one, else the training
  step (the mixinglaws files have steps only, at about 1M tokens per step for every size: the
  law's ``B`` absorbs the unit). :attr:`~_ShukorLaw.axis_` says which.
* Scale: ``N`` and ``D`` enter as ``N / N_ref`` and ``D / D_ref`` (the geometric means of the
  fitted values), so that ``A`` and ``B`` are the terms' sizes at the reference; the law is the
  same.
* One fitted ``D`` (a final-step swarm such as RegMix, every size at the same token count): the
  ``D`` term is constant and cannot be told from ``E``; it is left out (``B = 0``, recorded in
  ``not_estimable_``), so predictions at another ``D`` ignore the extra data. One fitted size:
  the ``N`` term cannot be estimated at all, so :meth:`~_ShukorLaw.fit` refuses.
* Target domains (evaluated, trained on by no run) are fine for Shukor's laws (``h`` is the
  whole training mixture); :class:`NearestSizeBiMix` needs each evaluated domain's own share and
  refuses them.
* Band: the fitted residual scale of log-loss, ``sigma`` per domain (``sqrt(SSR / (n - p))``), as
  a log-normal new-run band (:meth:`interval`), the band ``leastsq`` reports too. It carries no
  coefficient uncertainty.

The scale-aware Bayesian law is the lead's (``bimix_bayes/scale.py``); these are its yardsticks.

Examples
--------
>>> law = ShukorAdditive().fit(obs)                                  # doctest: +SKIP
>>> law.predict(mixtures, steps=[30000, 60000], params=1e9).shape    # doctest: +SKIP
(4, 2, 22)
>>> lower, upper = law.interval(law.predict(mixtures, [30000], 1e9), 1e9)  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from bimix_bayes.errors import BimixInputError
from bimix_bayes.leastsq import LeastSquaresFit, multistart
from bimix_bayes.observations import Observations

#: The least-squares box of each coefficient (log scales for positive ones; exponents >= 0).
BOUNDS = {"E": (0.0, None), "log_C": (-5.0, 15.0), "gamma": (1e-3, 3.0), "log_A": (-12.0, 3.0),
          "alpha": (0.0, 3.0), "log_B": (-12.0, 3.0), "beta": (0.0, 3.0)}
#: Starting exponents (every combination is one start); levels start from the data (see ``_starts``).
STARTS = {"gamma": (0.1, 0.4, 1.0), "alpha": (0.2, 0.6), "beta": (0.3, 0.8)}


def shukor_loss(h: Any, n: Any, d: Any, p: dict[str, Any], joint: bool,
                xp: ModuleType = np) -> Any:
    """Shukor et al.'s law (additive or joint, see the module docstring), one expression for
    numpy and PyTensor.

    Parameters
    ----------
    h : array (..., k)
        Training mixtures.
    n, d : array (...)
        Model size and data (tokens or steps) relative to their references.
    p : dict
        ``E`` (scalar), ``C``, ``gamma`` (k,); ``A``, ``alpha``, ``B``, ``beta``: scalars for the
        additive law, (k,) per-training-domain values for the joint law (mixture-weighted means).
    joint : bool

    Examples
    --------
    >>> p = {"E": 1.0, "C": np.array([2.0, 2.0]), "gamma": np.array([1.0, 1.0]), "A": 0.5,
    ...      "alpha": 1.0, "B": 0.0, "beta": 0.5}
    >>> float(shukor_loss(np.array([0.5, 0.5]), 1.0, 1.0, p, joint=False))  # 1 + 1/2 + 1/2
    2.0
    """
    mixture_term = 1.0 / xp.sum(p["C"] * h ** p["gamma"], axis=-1)

    def coef(name: str) -> Any:
        return xp.sum(p[name] * h, axis=-1) if joint else p[name]

    return (p["E"] + mixture_term + coef("A") * n ** -coef("alpha")
            + coef("B") * d ** -coef("beta"))


def lognormal_interval(median: np.ndarray, sigma: np.ndarray, prob: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The central ``prob`` band of a loss whose log is normal around ``log(median)`` with sd
    ``sigma`` (per domain, the last axis)."""
    if not 0 < prob < 1:
        raise BimixInputError(f"prob must be in (0, 1), got {prob}")
    z = norm.ppf(0.5 + prob / 2) * np.asarray(sigma, dtype=float)
    return median * np.exp(-z), median * np.exp(z)


def _target_size(params: float) -> float:
    size = float(params)
    if not np.isfinite(size) or size <= 0:
        raise BimixInputError(f"params must be a positive number of parameters, got {params!r}")
    return size


def _mixture_matrix(mixtures: pd.DataFrame, sources: Sequence[str]) -> np.ndarray:
    missing = [s for s in sources if s not in mixtures.columns]
    if missing:
        raise BimixInputError(f"the mixtures lack training domain(s) {', '.join(missing)}")
    return mixtures[list(sources)].to_numpy(dtype=float)


def _sizes(observations: Observations) -> pd.Series:
    sizes = observations.sizes
    if sizes is None:
        raise BimixInputError("the observations have no params column (the model size); a "
                              "model-size law needs it", path=observations.source)
    return sizes


class _ShukorLaw:
    """Per-domain least-squares fit of :func:`shukor_loss` (sklearn manners: ``fit`` returns
    self, fitted state ends in ``_``).

    Attributes
    ----------
    coefficients_ : pandas.DataFrame
        Index ``domain``; the fitted coefficients ``E``, ``log_C[j]``, ``gamma[j]``, ``log_A``,
        ``alpha``, ``log_B``, ``beta`` (``[j]``: one per training domain ``j``, e.g.
        ``log_A[web]`` for the joint law; ``A``, ``B`` in the reference scale of the module
        docstring), ``sigma``, ``n``, ``cost``, ``starts_converged``.
    sources_ : list of str
        The training domains (the columns ``predict`` reads from ``mixtures``).
    domains_ : list of str
        The evaluated domains predicted (the last axis of ``predict``).
    axis_ : {"tokens", "step"}
        What ``D`` is.
    n_ref_, d_ref_ : float
    not_estimable_ : list of str
        ``["D term"]`` when the fitted rows have one ``D`` (the term is left out).
    """

    joint = False

    def fit(self, observations: Observations) -> _ShukorLaw:
        """Fit every evaluated domain of multi-size observations; returns ``self``."""
        sizes = _sizes(observations)
        if sizes.nunique() < 2:
            raise BimixInputError(f"{type(self).__name__} needs runs at two or more model sizes "
                                  f"to fit its N term; got {sizes.nunique()}",
                                  path=observations.source)
        f = observations.frame
        rows = f[f["loss"].notna()]
        self.sources_ = observations.sources
        self.domains_ = observations.evaluated_domains
        self.axis_ = "tokens" if self._has_tokens(rows) else "step"
        mix = observations.mixtures()[self.sources_]
        n_all = rows["run"].map(sizes).to_numpy(dtype=float)
        d_all = rows[self.axis_].to_numpy(dtype=float)
        self.n_ref_ = float(np.exp(np.mean(np.log(np.unique(n_all)))))
        self.d_ref_ = float(np.exp(np.mean(np.log(np.unique(d_all)))))
        self.not_estimable_ = ["D term"] if len(np.unique(d_all)) < 2 else []
        records = {}
        for domain in self.domains_:
            keep = (rows["domain"] == domain).to_numpy()
            d = rows[keep]
            records[domain] = self._fit_domain(
                mix.loc[d["run"]].to_numpy(dtype=float), n_all[keep] / self.n_ref_,
                d_all[keep] / self.d_ref_, np.log(d["loss"].to_numpy(dtype=float)),
                domain, observations.source)
        self.coefficients_ = pd.DataFrame.from_dict(records, orient="index").rename_axis("domain")
        return self

    @staticmethod
    def _has_tokens(rows: pd.DataFrame) -> bool:
        if "tokens" not in rows.columns:
            return False
        tokens = pd.to_numeric(rows["tokens"], errors="coerce")
        return bool(tokens.notna().all() and (tokens > 0).all())

    # ------------------------------------------------------------------------- parameters
    def _names(self) -> list[tuple[str, int | None]]:
        """(coefficient, training-domain index or None) of each free parameter, in order."""
        k = len(self.sources_)
        per = range(k) if self.joint else [None]
        scale = ["log_A", "alpha"] + ([] if self.not_estimable_ else ["log_B", "beta"])
        return ([("E", None)] + [("log_C", j) for j in range(k)]
                + [("gamma", j) for j in range(k)]
                + [(name, j) for name in scale for j in per])

    def _unpack(self, theta: np.ndarray) -> dict[str, Any]:
        k = len(self.sources_)
        values: dict[str, Any] = {}
        for (name, j), x in zip(self._names(), theta, strict=True):
            if j is None:
                values[name] = x
            else:
                values.setdefault(name, np.zeros(k))[j] = x
        # Without a D term (one fitted D), B = 0 and beta is moot.
        zero = np.zeros(k) if self.joint else 0.0
        return {"E": values["E"], "C": np.exp(values["log_C"]), "gamma": values["gamma"],
                "A": np.exp(values["log_A"]), "alpha": values["alpha"],
                "B": np.exp(values["log_B"]) if "log_B" in values else zero,
                "beta": values.get("beta", zero)}

    def _box(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # E below the smallest loss: the rest of the law is positive.
        hi = {"E": float(np.exp(y.min()))}
        names = [n for n, _ in self._names()]
        lower = np.array([BOUNDS[n][0] for n in names])
        upper = np.array([hi.get(n, BOUNDS[n][1]) for n in names])
        return lower, upper

    def _starts(self, y: np.ndarray) -> list[np.ndarray]:
        """One start per combination of :data:`STARTS`; the level split between ``E`` (half of
        the smallest loss), the mixture term (a fifth) and the size and data terms (15 % each)."""
        floor = float(np.exp(y.min()))
        level = {"E": 0.5 * floor, "log_C": -np.log(0.2 * floor),
                 "log_A": np.log(0.15 * floor), "log_B": np.log(0.15 * floor)}
        names = self._names()
        exponents = [e for e in STARTS if any(n == e for n, _ in names)]
        starts = []
        for combo in itertools.product(*(STARTS[e] for e in exponents)):
            value = {**level, **dict(zip(exponents, combo, strict=True))}
            starts.append(np.array([value[n] for n, _ in names]))
        return starts

    def _fit_domain(self, h: np.ndarray, n: np.ndarray, d: np.ndarray, y: np.ndarray,
                    domain: str, source: str) -> dict[str, Any]:
        names = self._names()
        if len(y) <= len(names):
            raise BimixInputError(f"domain {domain!r} has {len(y)} evaluated rows; "
                                  f"{type(self).__name__} needs more than {len(names)}",
                                  path=source)
        lower, upper = self._box(y)

        def residuals(theta: np.ndarray) -> np.ndarray:
            return np.log(shukor_loss(h, n, d, self._unpack(theta), self.joint)) - y

        best, converged = multistart(residuals, self._starts(y), lower, upper,
                                     jac=lambda theta: self._jacobian(theta, h, n, d))
        dof = max(len(y) - len(names), 1)
        return {**dict(zip(self._labels(), map(float, best.x), strict=True)),
                "sigma": float(np.sqrt(2 * best.cost / dof)), "n": len(y),
                "cost": float(best.cost), "starts_converged": converged}

    def _jacobian(self, theta: np.ndarray, h: np.ndarray, n: np.ndarray, d: np.ndarray
                  ) -> np.ndarray:
        """d log L / d theta, (rows, parameters) in :meth:`_names` order: the analytic
        derivative (a fit with finite differences took 80 s on 5Mix's 22 domains)."""
        p = self._unpack(theta)
        loss = shukor_loss(h, n, d, p, self.joint)
        log_h = np.log(np.where(h > 0, h, 1.0))  # h^gamma log h -> 0 at h = 0
        ch = p["C"] * h ** p["gamma"]  # (rows, k)
        d_mix = -1.0 / ch.sum(axis=1) ** 2  # d (1 / S) / d S
        cols = {"E": np.ones((len(loss), 1)), "log_C": d_mix[:, None] * ch,
                "gamma": d_mix[:, None] * ch * log_h}
        for coef, expo, x in (("A", "alpha", n), ("B", "beta", d)):
            if self.joint:
                power = x ** -(h @ p[expo])
                term = (h @ p[coef]) * power
                cols[f"log_{coef}"] = p[coef] * h * power[:, None]
                cols[expo] = -(term * np.log(x))[:, None] * h
            else:
                term = p[coef] * x ** -p[expo]
                cols[f"log_{coef}"], cols[expo] = term[:, None], -(term * np.log(x))[:, None]
        names = list(dict.fromkeys(name for name, _ in self._names()))
        return np.hstack([cols[name] for name in names]) / loss[:, None]

    # ------------------------------------------------------------------------- prediction
    def predict(self, mixtures: pd.DataFrame, steps: Sequence[float], params: float, *,
                tokens: Sequence[float] | None = None) -> np.ndarray:
        """Loss (nats) of each mixture at each step for a model of ``params`` parameters.

        Parameters
        ----------
        mixtures : pandas.DataFrame
            One row per mixture, a column per training domain (:attr:`sources_`).
        steps : sequence of float
            Training steps (``D`` when :attr:`axis_` is ``"step"``).
        params : float
            The target model size.
        tokens : sequence of float, optional
            Tokens seen at each step; required when the law was fitted on tokens.

        Returns
        -------
        numpy.ndarray
            Shape (mixture, step, domain), domains in :attr:`domains_` order.
        """
        h = _mixture_matrix(mixtures, self.sources_)[:, None, :]
        if self.axis_ == "tokens":
            if tokens is None or len(tokens) != len(steps):
                raise BimixInputError("this law was fitted on tokens: give tokens, one per step")
            data = np.asarray(tokens, dtype=float)
        else:
            data = np.asarray(steps, dtype=float)
        n = _target_size(params) / self.n_ref_
        d = (data / self.d_ref_)[None, :]
        out = np.empty((h.shape[0], len(data), len(self.domains_)))
        for i, domain in enumerate(self.domains_):
            theta = self.coefficients_.loc[domain, self._labels()].to_numpy(dtype=float)
            out[:, :, i] = shukor_loss(h, n, d, self._unpack(theta), self.joint)
        return out

    def _labels(self) -> list[str]:
        """The column of ``coefficients_`` of each free parameter (``C[j]`` as ``log_C[web]``)."""
        return [name if j is None else f"{name}[{self.sources_[j]}]" for name, j in self._names()]

    def interval(self, predicted: np.ndarray, params: float, prob: float = 0.9
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The new-run band around ``predict``'s output at ``params`` (log-normal with the fitted
        ``sigma``; the same at every size)."""
        return lognormal_interval(predicted, self.coefficients_["sigma"].to_numpy(), prob)


class ShukorAdditive(_ShukorLaw):
    """Shukor et al.'s additive law by least squares (see the module docstring).

    Examples
    --------
    >>> ShukorAdditive().joint
    False
    """

    joint = False


class ShukorJoint(_ShukorLaw):
    """Shukor et al.'s joint law by least squares: size and data terms depend on the mixture.

    Examples
    --------
    >>> ShukorJoint().joint
    True
    """

    joint = True


class NearestSizeBiMix:
    """The paper's BiMix fit at the size nearest the target (in log N), used unchanged there.

    ``fit`` fits :class:`~bimix_bayes.leastsq.LeastSquaresFit` at every size in the observations;
    ``predict`` uses the one nearest ``params``.

    Attributes
    ----------
    fits_ : dict of float to LeastSquaresFit
    sources_, domains_ : list of str
        Training and evaluated domains (as in the Shukor laws).

    Examples
    --------
    >>> law = NearestSizeBiMix().fit(obs)                               # doctest: +SKIP
    >>> law.nearest(1e9)                                                # doctest: +SKIP
    410000000.0
    """

    def fit(self, observations: Observations) -> NearestSizeBiMix:
        """Fit the per-size BiMix law at each size; returns ``self``."""
        sizes = _sizes(observations)
        if observations.targets:
            raise BimixInputError(
                f"the per-size BiMix law needs each evaluated domain's own share; "
                f"{len(observations.targets)} evaluated domain(s) (e.g. "
                f"{observations.targets[0]!r}) are trained on by no run", path=observations.source)
        self.sources_ = observations.sources
        self.domains_ = observations.evaluated_domains
        self.fits_ = {float(n): LeastSquaresFit().fit(observations.at_sizes([n]))
                      for n in sorted(sizes.unique())}
        return self

    def nearest(self, params: float) -> float:
        """The fitted size closest to ``params`` in log N."""
        target = np.log(_target_size(params))
        return min(self.fits_, key=lambda n: abs(np.log(n) - target))

    def predict(self, mixtures: pd.DataFrame, steps: Sequence[float], params: float) -> np.ndarray:
        """Loss (nats) of each mixture at each step: the nearest size's law, shape
        (mixture, step, domain)."""
        post = self.fits_[self.nearest(params)].to_posterior()
        mix = pd.DataFrame(_mixture_matrix(mixtures, post.sources), index=mixtures.index,
                           columns=post.sources)
        log_l = post.log_loss_draws(mix, list(steps))[0]  # one draw: (mixture, step, domain)
        order = [post.domains.index(d) for d in self.domains_]
        return np.exp(log_l[..., order])

    def interval(self, predicted: np.ndarray, params: float, prob: float = 0.9
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest size's new-run band (its fitted residual scale) around ``predict``'s output."""
        sigma = self.fits_[self.nearest(params)].coefficients_["sigma"].reindex(self.domains_)
        return lognormal_interval(predicted, sigma.to_numpy(), prob)
