"""Prediction accuracy as the paper reports it, and held-out splits to measure it on.

The BiMix paper scores a fitted law by the mean relative error of its predicted losses and by
R^2 of log-loss per domain. :func:`score` applies both to any :class:`~bimix_bayes.posterior.Posterior`
(least squares or Bayesian, using the posterior-mean loss) against observations it may not have
seen, and :func:`heldout_split` makes the standard split: fit on some runs up to a step, then
predict held-out runs at every checkpoint and the fitted runs' later checkpoints.

Examples
--------
>>> import numpy as np
>>> round(mean_relative_error([2.0, 4.0], [2.2, 3.6]), 6)
0.1
>>> r2_log([1.0, 2.0, 4.0], [1.0, 2.0, 4.0])
1.0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bimix_bayes._io import file_lines, read_text_csv
from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations


def mean_relative_error(observed: Any, predicted: Any) -> float:
    """Mean of ``|predicted - observed| / observed`` (losses in nats, not logs)."""
    y, p = np.asarray(observed, float), np.asarray(predicted, float)
    return float(np.mean(np.abs(p - y) / y))


def r2_log(observed: Any, predicted: Any) -> float:
    """Coefficient of determination of log-loss: ``1 - SS_res / SS_tot`` on ``log`` values.

    NaN when the observed log-losses do not vary (one row).
    """
    y, p = np.log(np.asarray(observed, float)), np.log(np.asarray(predicted, float))
    ss_tot = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - p) ** 2) / ss_tot) if ss_tot > 0 else float("nan")


def predicted_rows(posterior: Any, observations: Observations) -> pd.DataFrame:
    """Each evaluated row of ``observations`` with the posterior-mean loss as ``predicted``.

    Only the posterior's evaluated domains are scored; every run's mixture must use the
    posterior's training domains. A fit across model sizes predicts each run at its own size.
    """
    groups = posterior.size_groups(observations)
    if len(groups) > 1:
        return pd.concat([_predicted_rows(posterior, part, size) for size, part in groups],
                         ignore_index=True)
    return _predicted_rows(posterior, observations, groups[0][0])


def _predicted_rows(posterior: Any, observations: Observations, params: float | None
                    ) -> pd.DataFrame:
    f = observations.frame
    rows = f[f["loss"].notna() & f["domain"].isin(posterior.domains)].copy()
    if rows.empty:
        raise BimixInputError("no evaluated rows of the posterior's domains to score",
                              path=observations.source)
    mix = observations.mixtures().reindex(columns=posterior.sources)
    if mix.isna().any().any():
        raise BimixInputError("the observations lack some training domains of the posterior",
                              path=observations.source)
    log_l = posterior.log_loss_draws(mix, observations.steps, params)  # (sample, run, step, dom.)
    mean = np.exp(log_l).mean(axis=0)
    ri = rows["run"].map({r: i for i, r in enumerate(mix.index)}).to_numpy()
    si = rows["step"].map({s: i for i, s in enumerate(observations.steps)}).to_numpy()
    di = rows["domain"].map({d: i for i, d in enumerate(posterior.domains)}).to_numpy()
    rows["predicted"] = mean[ri, si, di]
    return rows.reset_index(drop=True)


def residuals(posterior: Any, observations: Observations | None = None) -> pd.DataFrame:
    """Relative residual ``observed / predicted - 1`` of every evaluated row, with its share.

    ``predicted`` is the posterior-mean loss (as in :func:`score`); ``share`` is the row's own
    domain's proportion in its run's mixture (``proportion``), so the residuals can be read
    against the step and against the share. A law that fits leaves residuals scattered around 0
    at every step and share; a trend says the law's form misses something there.

    Parameters
    ----------
    posterior : Posterior
        The fitted law.
    observations : Observations, optional
        Default: the observations the law was fitted to (in-sample).

    Returns
    -------
    pandas.DataFrame
        The evaluated rows with ``predicted``, ``residual`` and ``share`` added.

    Examples
    --------
    >>> res = residuals(post)                                                    # doctest: +SKIP
    >>> res.groupby("domain")["residual"].std()                                  # doctest: +SKIP
    """
    obs = posterior.observations if observations is None else observations
    rows = predicted_rows(posterior, obs)
    rows["residual"] = rows["loss"].astype(float) / rows["predicted"] - 1.0
    rows["share"] = rows["proportion"].astype(float)
    return rows


REGRET_COLUMNS = ("strategy", "runs", "regret")


def read_regret(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a regret table (``strategy,runs,regret[,seed]``, the planner benchmark's CSV).

    Raises
    ------
    BimixInputError
        The file is missing, is a posterior file (netCDF) or another binary file, or is not CSV.
    """
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head.startswith((b"\x89HDF", b"CDF")):
            raise BimixInputError("this is a posterior file (netCDF); --kind regret draws the "
                                  "planner benchmark's regret CSV (strategy,runs,regret[,seed]); "
                                  "draw a posterior with another --kind", path=path)
    frame = read_text_csv(path)
    with file_lines(frame):
        regret_summary(frame, source=str(path))  # checked here, so errors name the file's line
    return frame


def regret_summary(frame: pd.DataFrame, source: str = "<regret table>") -> pd.DataFrame:
    """Mean regret over seeds, its standard error and the seed count, per strategy and run count.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows ``strategy, runs, regret[, seed]`` (the planner benchmark's output).
    source : str
        Where the table came from, for error messages.

    Returns
    -------
    pandas.DataFrame
        Index ``(strategy, runs)`` with strategies in order of first appearance; columns
        ``mean``, ``sem`` (0 for a single seed) and ``count``.

    Examples
    --------
    >>> frame = pd.DataFrame({"strategy": ["a", "a"], "runs": [4, 4], "regret": [0.2, 0.4]})
    >>> regret_summary(frame).round(2).to_dict("records")
    [{'mean': 0.3, 'sem': 0.1, 'count': 2}]
    """
    missing = [c for c in REGRET_COLUMNS if c not in frame.columns]
    if missing:
        raise BimixInputError(f"missing column(s) {', '.join(missing)}; expected "
                              f"{','.join(REGRET_COLUMNS)}[,seed]", path=source, line=1)
    regret = pd.to_numeric(frame["regret"], errors="coerce")
    runs = pd.to_numeric(frame["runs"], errors="coerce")
    bad = regret.isna() | runs.isna() | (regret < 0)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise BimixInputError(f"runs and regret must be numbers, regret >= 0; got "
                              f"runs={frame['runs'].iloc[i]!r}, regret={frame['regret'].iloc[i]!r}",
                              path=source, line=i + 2)
    data = frame.assign(regret=regret, runs=runs)
    stats = data.groupby(["strategy", "runs"], sort=True)["regret"].agg(["mean", "sem", "count"])
    stats["sem"] = stats["sem"].fillna(0.0)
    order = list(pd.unique(frame["strategy"]))
    return stats.reindex(order, level="strategy")


def score(posterior: Any, observations: Observations) -> pd.DataFrame:
    """MRE and log-loss R^2 per domain, and over all domains (row ``all``).

    Returns
    -------
    pandas.DataFrame
        Index ``domain`` (plus ``all``); columns ``n``, ``mre``, ``r2_log``. The ``all`` row
        pools every row (R^2 over the pooled log-losses, as the paper's overall figure).
    """
    rows = predicted_rows(posterior, observations)
    groups = [(d, g) for d, g in rows.groupby("domain", sort=False)] + [("all", rows)]
    return pd.DataFrame(
        {"n": [len(g) for _, g in groups],
         "mre": [mean_relative_error(g["loss"], g["predicted"]) for _, g in groups],
         "r2_log": [r2_log(g["loss"], g["predicted"]) for _, g in groups]},
        index=pd.Index([d for d, _ in groups], name="domain"),
    )


def mixture_groups(observations: Observations) -> np.ndarray:
    """A group id per run (in :attr:`Observations.runs` order): runs with the same mixture (seeds,
    repeats) share one, so that a held-out split never fits one copy and scores another.

    Examples
    --------
    >>> obs = Observations.from_frame(pd.DataFrame({"run": ["a", "b", "c"], "domain": "web",
    ...     "proportion": 1.0, "step": 10, "loss": [3.0, 3.1, 2.9]}))
    >>> mixture_groups(obs).tolist()
    [0, 0, 0]
    """
    mix = observations.mixtures()
    keys = [tuple(np.round(row, 9)) for row in mix.to_numpy()]
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return np.array([ids[k] for k in keys])


def mixture_folds(observations: Observations, folds: int, seed: int = 0) -> np.ndarray:
    """A fold id per run for K-fold cross-validation over mixtures (grouped, seeded).

    The distinct mixtures (:func:`mixture_groups`) are shuffled with ``seed`` and dealt to
    ``min(folds, number of mixtures)`` folds in turn, so fold sizes differ by at most one
    mixture. ``--law auto`` (:func:`bimix_bayes.comparison.select_law`) and the benchmarks use
    this one rule, so the same seed gives the same folds.

    Examples
    --------
    >>> obs = Observations.from_frame(pd.DataFrame({"run": list("abcd"), "domain": "web",
    ...     "proportion": 1.0, "step": [10, 10, 10, 10], "loss": [3.0, 3.1, 2.9, 3.2]}))
    >>> mixture_folds(obs, folds=5).tolist()   # one mixture: one fold
    [0, 0, 0, 0]
    """
    if folds < 1:
        raise BimixInputError(f"folds must be at least 1, got {folds}")
    groups = mixture_groups(observations)
    n_groups = int(groups.max()) + 1
    fold_of_group = np.random.default_rng(seed).permutation(n_groups) % min(folds, n_groups)
    return fold_of_group[groups]


@dataclass(frozen=True)
class Split:
    """A held-out split of observations.

    Attributes
    ----------
    fit : Observations
        The fitted runs up to ``max_fit_step``.
    heldout_runs : Observations
        The held-out runs at every checkpoint.
    later_steps : Observations or None
        The fitted runs' checkpoints after ``max_fit_step`` (None when there are none).
    """

    fit: Observations
    heldout_runs: Observations
    later_steps: Observations | None


def heldout_split(
    observations: Observations, heldout: Sequence[str], max_fit_step: int | None = None
) -> Split:
    """Split observations into fitted runs (up to a step) and the two held-out sets.

    Parameters
    ----------
    observations : Observations
    heldout : sequence of str
        Runs (mixtures) kept out of the fit and predicted at every checkpoint.
    max_fit_step : int, optional
        Last step of the fitted runs used for fitting; their later checkpoints form
        ``later_steps``. Default: fit on every checkpoint.
    """
    runs = observations.runs
    unknown = sorted(set(heldout) - set(runs))
    if unknown:
        raise BimixInputError(f"unknown held-out runs: {', '.join(unknown)}",
                              path=observations.source)
    fitted = [r for r in runs if r not in set(heldout)]
    if not fitted or not heldout:
        raise BimixInputError("a held-out split needs at least one fitted and one held-out run",
                              path=observations.source)
    f = observations.subset(fitted).frame
    late = f["step"].notna() & (f["step"] > (max_fit_step if max_fit_step is not None else np.inf))
    return Split(
        fit=_observations(f[~late], f, observations.source),
        heldout_runs=observations.subset(list(heldout)),
        later_steps=_observations(f[late], f, observations.source) if late.any() else None,
    )


def _observations(part: pd.DataFrame, whole: pd.DataFrame, source: str) -> Observations:
    """``part`` of ``whole`` as observations, declaring (run, domain) pairs it lost as proportions."""
    pairs = whole.drop_duplicates(["run", "domain"])[["run", "domain", "proportion"]]
    have = part[["run", "domain"]].drop_duplicates()
    lost = pairs.merge(have, on=["run", "domain"], how="left", indicator=True)
    lost = lost[lost["_merge"] == "left_only"].drop(columns="_merge")
    lost = lost[lost["run"].isin(part["run"])]
    frame = pd.concat([part, lost], ignore_index=True)
    order = {r: i for i, r in enumerate(pd.unique(whole["run"]))}
    frame = frame.sort_values("run", key=lambda c: c.map(order), kind="stable")
    return Observations.from_frame(frame.reset_index(drop=True), source=source)
