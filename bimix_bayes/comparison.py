"""Which law the data prefer: PSIS-LOO over whole curves and scores on held-out runs.

:func:`compare_laws` fits each law of the family to the same observations and compares them by
PSIS-LOO (ArviZ 1.x ``loo`` and ``compare``) on the posterior files' own ``log_likelihood`` group,
which holds one value per observed (run, domain) curve with the run offset integrated out by the
noise model, and optionally by held-out runs (MRE of the posterior-mean loss and coverage of the
predictive band, :mod:`bimix_bayes.calibration`).

Examples
--------
>>> cmp = compare_laws(obs, heldout=test_obs, draws=500, tune=500)      # doctest: +SKIP
>>> print(cmp.summary())                                                # doctest: +SKIP
>>> cmp.table                                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bimix_bayes.calibration import interval_coverage
from bimix_bayes.errors import BimixInputError
from bimix_bayes.metrics import score
from bimix_bayes.model import BayesianBiMix
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior


@dataclass(frozen=True)
class LawComparison:
    """Result of :func:`compare_laws`.

    Attributes
    ----------
    table : pandas.DataFrame
        ArviZ's comparison table (index law; ``elpd``, ``elpd_diff``, ``dse``, ``weight``, ...),
        best law first.
    loo : dict
        Law name -> ArviZ ELPD data (pointwise, with Pareto k).
    posteriors : dict
        Law name -> :class:`~bimix_bayes.posterior.Posterior`.
    heldout : pandas.DataFrame or None
        Index law; ``mre`` (posterior-mean loss), ``coverage`` (of the predictive band),
        ``prob``, ``n`` on the held-out observations.
    """

    table: pd.DataFrame
    loo: dict[str, Any]
    posteriors: dict[str, Posterior]
    heldout: pd.DataFrame | None

    @property
    def best(self) -> str:
        """The law with the highest estimated elpd."""
        return str(self.table.index[0])

    def summary(self) -> str:
        """A few lines: which law wins by PSIS-LOO and on held-out data, and by how much."""
        t = self.table
        other = t.index[1]
        # ArviZ 1.x reports elpd_diff of a worse model as negative; state the margin as positive.
        diff, se = abs(float(t.loc[other, "elpd_diff"])), float(t.loc[other, "dse"])
        lines = [f"PSIS-LOO (leave one curve out): {self.best} wins by elpd {diff:.1f} "
                 f"(SE {se:.1f}, {diff / se if se > 0 else np.inf:.1f} SE) over {other}"]
        unreliable = 0
        for name, elpd in self.loo.items():
            k = np.asarray(elpd.pareto_k).ravel()
            unreliable += int((k > 0.7).sum())
            lines.append(f"  {name}: elpd_loo {elpd.elpd:.1f} (SE {elpd.se:.1f}), p_loo "
                         f"{elpd.p:.1f}, {int((k > 0.7).sum())}/{k.size} curves with Pareto k > 0.7")
        if unreliable:
            lines.append("  Pareto k > 0.7: those curves' PSIS estimates are unreliable (each curve "
                         "is influential); trust the held-out comparison (exact refits) more")
        if self.heldout is not None:
            h = self.heldout
            lines.append("held-out runs: " + "; ".join(
                f"{law} MRE {r.mre:.4f}, {r.prob:.0%} band coverage {r.coverage:.3f}"
                for law, r in h.iterrows()))
        return "\n".join(lines)


def compare_laws(
    observations: Observations,
    *,
    heldout: Observations | None = None,
    laws: Sequence[str] = ("bimix", "transfer"),
    noise: str = "normal",
    prob: float = 0.9,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    **options: Any,
) -> LawComparison:
    """Fit each law to ``observations`` and compare them by PSIS-LOO and on held-out runs.

    Parameters
    ----------
    observations : Observations
        What every law is fitted to.
    heldout : Observations, optional
        Runs not fitted on (same training domains): scored by MRE of the posterior-mean loss and
        the coverage of the central ``prob`` observation band.
    laws : sequence of str
        Laws of :class:`~bimix_bayes.model.BayesianBiMix` to compare.
    noise : {"normal", "student"}
        Noise model; either way the LOO unit is a (run, domain) curve.
    prob : float
    draws, tune, chains, seed, **options
        Passed to :class:`~bimix_bayes.model.BayesianBiMix`.

    Returns
    -------
    LawComparison

    Examples
    --------
    >>> cmp = compare_laws(obs, heldout=test, draws=500, tune=500, chains=2)   # doctest: +SKIP
    >>> cmp.best, cmp.table[["elpd", "elpd_diff", "dse"]]                      # doctest: +SKIP
    """
    import arviz as az

    if len(laws) < 2:
        raise BimixInputError("compare_laws needs at least two laws")
    loo, posteriors, held = {}, {}, {}
    for law in laws:
        est = BayesianBiMix(law=law, noise=noise, draws=draws, tune=tune, chains=chains,
                            seed=seed, **options).fit(observations)
        loo[law] = az.loo(est.posterior_.tree, pointwise=True)
        posteriors[law] = est.posterior_
        if heldout is not None:
            s = score(est.posterior_, heldout).loc["all"]
            c = interval_coverage(est.posterior_, heldout, prob, seed=seed).loc["all"]
            held[law] = {"mre": float(s["mre"]), "coverage": c["coverage"], "prob": prob,
                         "n": int(s["n"])}
    table = az.compare(loo, round_to="none")
    return LawComparison(
        table=table, loo=loo, posteriors=posteriors,
        heldout=pd.DataFrame.from_dict(held, orient="index").rename_axis("law") if held else None)
