"""Which law the data prefer: held-out mixtures, PSIS-LOO over whole curves, held-out runs.

:func:`select_law` chooses a law by grouped cross-validation over mixtures (what ``--law auto``,
the default, runs): every candidate is refitted with each fold's mixtures masked out and scored on
them. :func:`compare_laws` fits each law of the family to the same observations and compares them by
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

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bimix_bayes import sampling
from bimix_bayes.calibration import interval_coverage
from bimix_bayes.draws import Draws, shaped
from bimix_bayes.errors import BimixInputError
from bimix_bayes.metrics import mixture_folds, mixture_groups, score
from bimix_bayes.model import AUTO_LAWS, BayesianBiMix, Design, build_model
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.spec import ModelSpec, SamplerConfig


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
    noise : {"normal", "student", "ar1"}
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


# ------------------------------------------------------------------------ held-out mixtures
#: Sampler of the cross-validation refits: shorter chains than a final fit, no retry (a few
#: divergences barely move a held-out score, and the final fit is checked on its own).
CV_SAMPLER = SamplerConfig(draws=300, tune=300, chains=2, retry_target_accept=None)
#: Fewer distinct mixtures than this cannot tell laws apart by held-out mixtures.
MIN_MIXTURES = 4
#: With runs at this many model sizes or more, law selection also holds out the largest size.
MIN_SIZES_TO_EXTRAPOLATE = 3


@dataclass(frozen=True)
class LawSelection:
    """Result of :func:`select_law`: every law's held-out score and the one chosen.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``law`` (candidates in order, simplest first); columns ``elpd`` (summed log
        predictive density of the held-out curves, a new run's band: run offset and residual
        included), ``elpd_se``, ``elpd_diff`` and ``diff_se`` (against the best law, paired over
        mixtures), ``mre`` and ``mre_se`` (posterior-mean loss), ``coverage`` (of the central
        ``prob`` new-run band), ``n_curves``, ``n_divergent`` (summed over folds).
    chosen : str
    reason : str
        Why, in one sentence.
    folds : int
        Folds of mixtures (0 when too few mixtures to compare).
    prob : float
    """

    table: pd.DataFrame
    chosen: str
    reason: str
    folds: int
    prob: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (stored in the posterior file as ``law_selection``)."""
        return {"chosen": self.chosen, "reason": self.reason, "folds": self.folds,
                "prob": self.prob, "table": self.table.reset_index().to_dict(orient="list")}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LawSelection:
        table = pd.DataFrame(values["table"]).set_index("law")
        return cls(table=table, chosen=values["chosen"], reason=values["reason"],
                   folds=int(values["folds"]), prob=float(values["prob"]))

    def summary(self) -> str:
        """The comparison table and the choice, for the terminal."""
        if not self.folds:
            return f"law: {self.chosen} ({self.reason})"
        percent = [c for c in ("mre", "mre_se", "mre_largest_size") if c in self.table]
        shown = self.table.assign(**{c: self.table[c] * 100 for c in percent})
        shown = shown.rename(columns={"mre": "MRE %", "mre_se": "MRE SE %",
                                      "mre_largest_size": "MRE % largest size",
                                      "coverage": f"{self.prob:.0%} band coverage"})
        return (f"held-out mixtures ({self.folds}-fold, grouped by mixture):\n"
                f"{shown.round(3).to_string()}\nlaw: {self.chosen} ({self.reason})")


def _fold_scores(design: Design, spec: ModelSpec, heldout: np.ndarray, config: SamplerConfig,
                 prob: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Fit with the held-out runs' cells masked (the compiled model of the whole design is
    reused) and score those runs: per-curve elpd and per-row error and band hits."""
    masked = dataclasses.replace(design, mask=design.mask * ~heldout[:, None, None])
    model = build_model(masked, spec)
    trace, _ = sampling.sample(model, masked, spec, config)
    draws = Draws.from_dataset(trace["posterior"].to_dataset(), spec.law_component,
                               spec.noise_component, design.s_ref, design.coords["source"],
                               params_ref=design.params_ref,
                               fitted_sizes=design.coords.get("size", ()))
    runs = np.flatnonzero(heldout)
    observed = design.log_loss[runs].transpose(0, 2, 1)  # (run, step, domain)
    mask = design.mask[runs].transpose(0, 2, 1)
    sizes = None if design.params is None else design.params[runs]
    mu = draws.log_loss(design.mixture[runs], design.steps, sizes)  # (sample, run, step, domain)
    ll = draws.noise.curve_log_likelihood(shaped(draws.noise_params, lead=2),
                                          observed * mask - mu, mask,
                                          design.steps)  # (sample, run, domain)
    elpd = special.logsumexp(ll, axis=0) - np.log(draws.n)
    rng = np.random.default_rng(seed)
    new_run = np.exp(mu + draws.noise_sample(mu.shape, rng, design.steps))
    tail = (1 - prob) / 2
    lower, upper = np.quantile(new_run, [tail, 1 - tail], axis=0)
    loss, predicted = np.exp(observed), np.exp(mu).mean(axis=0)
    r, t, d = np.nonzero(mask)
    rows = pd.DataFrame({"run": runs[r], "error": np.abs(predicted - loss)[r, t, d] / loss[r, t, d],
                         "inside": ((lower <= loss) & (loss <= upper))[r, t, d]})
    cr, cd = np.nonzero(mask.any(axis=1))
    curves = pd.DataFrame({"run": runs[cr], "elpd": elpd[cr, cd]})
    return curves, rows, int(trace["sample_stats"]["diverging"].sum())


def select_law(
    observations: Observations,
    *,
    laws: Sequence[str] = AUTO_LAWS,
    noise: str = "normal",
    folds: int = 5,
    prob: float = 0.9,
    config: SamplerConfig = CV_SAMPLER,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> LawSelection:
    """Choose a law by grouped cross-validation over mixtures.

    The distinct mixtures are split into ``folds`` groups; each law is fitted once per fold with
    that fold's runs masked out of the likelihood (they stay in the design, so the one compiled
    model of each law serves every fold and the final fit) and scored on them by the log
    predictive density of each held-out curve under the new-run band (the noise model's run offset
    and residual included), the MRE of the posterior-mean loss and the coverage of the central
    ``prob`` new-run band. The law with the highest summed elpd wins, unless a simpler law (earlier
    in ``laws``) is within one standard error of the paired difference: then the simpler one.
    With runs at :data:`MIN_SIZES_TO_EXTRAPOLATE` or more model sizes, one more refit holds out
    every run of the largest size (fitted on the smaller sizes only): its scores join the sums,
    and its MRE is the table's ``mre_largest_size``.

    Parameters
    ----------
    observations : Observations
    laws : sequence of str
        Candidates, simplest first.
    noise : str
        Noise model of every fit (its mask must be data: normal or ar1).
    folds : int
        Folds of mixtures (fewer when there are fewer mixtures).
    prob : float
        Probability of the band whose coverage is reported.
    config : SamplerConfig
        Sampler of the refits.
    seed : int
        Seeds the folds, the refits and the band draws.
    progress : callable, optional
        Called with a line of text after each refit.

    Returns
    -------
    LawSelection

    Examples
    --------
    >>> sel = select_law(obs)                                    # doctest: +SKIP
    >>> print(sel.summary())                                     # doctest: +SKIP
    """
    if not laws:
        raise BimixInputError("select_law needs at least one law")
    specs = [ModelSpec(law=name, noise=noise) for name in laws]  # unknown names fail here
    if observations.targets:  # only laws with cross-domain terms can predict a target
        specs = [s for s in specs if s.law_component.sees_other_domains] or specs
        laws = [s.law for s in specs]
    if not specs[0].noise_component.mask_is_data:
        raise BimixInputError(f"--law auto needs a noise model whose mask is data; {noise!r} "
                              "fixes it: give --law")
    groups = mixture_groups(observations)
    n_groups = int(groups.max()) + 1
    if len(laws) == 1 or n_groups < MIN_MIXTURES:
        why = ("the only candidate" if len(laws) == 1 else
               f"only {n_groups} distinct mixtures: too few to compare laws on held-out mixtures; "
               "the simplest law")
        return LawSelection(table=pd.DataFrame(index=pd.Index(list(laws), name="law")),
                            chosen=laws[0], reason=why, folds=0, prob=prob)
    k = min(folds, n_groups)
    fold = mixture_folds(observations, k, seed)
    design = Design.from_observations(observations)
    heldouts = [fold == f for f in range(k)]
    if design.has_size_axis and len(np.unique(design.params)) >= MIN_SIZES_TO_EXTRAPOLATE:
        # The question users ask of a ladder: the largest size from the smaller ones.
        heldouts.append(design.params == design.params.max())
    records, per_group = {}, {}
    for spec in specs:
        curves, rows, n_div = [], [], 0
        for f, heldout in enumerate(heldouts):
            c, r, d = _fold_scores(design, spec, heldout,
                                   dataclasses.replace(config, seed=seed + f), prob, seed + f)
            curves.append(c)
            rows.append(r.assign(extrapolation=f == k))
            n_div += d
            if progress is not None:
                what = f"fold {f + 1}/{k}" if f < k else "the largest size from the smaller ones"
                progress(f"{spec.law}: {what} scored ({d} divergent)")
        curves, rows = pd.concat(curves), pd.concat(rows)
        by_group = curves.groupby(groups[curves["run"]])["elpd"].sum()
        err_by_group = rows.groupby(groups[rows["run"]])["error"].mean()
        per_group[spec.law] = by_group
        records[spec.law] = {
            "elpd": float(by_group.sum()),
            "elpd_se": float(np.sqrt(n_groups * by_group.var(ddof=1))),
            "mre": float(rows["error"].mean()),
            "mre_se": float(err_by_group.std(ddof=1) / np.sqrt(n_groups)),
            "coverage": float(rows["inside"].mean()),
            "n_curves": len(curves), "n_divergent": n_div}
        if len(heldouts) > k:
            records[spec.law]["mre_largest_size"] = float(
                rows.loc[rows["extrapolation"], "error"].mean())
    table = pd.DataFrame.from_dict(records, orient="index").rename_axis("law")
    best = str(table["elpd"].idxmax())
    diff = {law: per_group[law] - per_group[best] for law in table.index}
    table.insert(2, "elpd_diff", [float(diff[law].sum()) for law in table.index])
    table.insert(3, "diff_se", [float(np.sqrt(n_groups * diff[law].var(ddof=1)))
                                for law in table.index])
    chosen = next(law for law in table.index
                  if law == best or -table.loc[law, "elpd_diff"] <= table.loc[law, "diff_se"])
    reason = (f"highest held-out elpd, by {-table.drop(best)['elpd_diff'].max():.1f} "
              f"(SE {table.drop(best)['diff_se'].min():.1f}) over the next law" if chosen == best
              else f"within one SE of {best} (elpd {table.loc[chosen, 'elpd_diff']:.1f}, SE "
                   f"{table.loc[chosen, 'diff_se']:.1f}), and simpler")
    return LawSelection(table=table, chosen=chosen, reason=reason, folds=k, prob=prob)
