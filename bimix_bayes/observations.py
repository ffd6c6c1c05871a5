"""Observations from training runs: the tidy CSV of DESIGN §4, its validation and its xarray form.

One row per run x domain x evaluation step::

    run,domain,proportion,step,loss[,params,tokens,model,seed,...]

``proportion`` is the domain's share of the run's training mixture, ``step`` the training step of the
evaluation and ``loss`` the validation loss in nats per token. A row whose ``step`` and ``loss`` are both
empty declares a proportion only: a domain the run trained on but never evaluated (RegMix trains on 17
Pile domains and evaluates 13). A domain evaluated in every run with proportion 0 is a **target**
that is not a training domain (a downstream task, another validation set; :attr:`Observations.targets`).
The optional ``params`` column is the run's model size in parameters (a positive number, the same
on every row of a run); observations at several sizes give the law a model-size axis
(:attr:`Observations.sizes`). Extra columns are kept as they are.

Examples
--------
>>> import pandas as pd
>>> obs = Observations.from_frame(pd.DataFrame({
...     "run": ["a", "a", "b", "b"], "domain": ["web", "code", "web", "code"],
...     "proportion": [0.7, 0.3, 0.2, 0.8], "step": [100, 100, 100, 100],
...     "loss": [3.1, 2.2, 3.6, 1.9]}))
>>> obs.domains, obs.runs
(['web', 'code'], ['a', 'b'])
>>> obs.to_dataset()["loss"].sel(run="b", domain="code", step=100).item()
1.9
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bimix_bayes._io import atomic_path, file_lines, read_text_csv
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import ROUNDING_TOL, SUM_TOL, sum_divisors

REQUIRED = ("run", "domain", "proportion", "step", "loss")
#: The optional column of the model size (parameters) of each run.
PARAMS = "params"
#: A prediction or plan at a step more than this many times beyond the observed steps (above the
#: last, or below the first) is extrapolation the fit cannot vouch for; the CLI warns.
EXTRAPOLATION_FACTOR = 3.0
#: Largest step accepted: integers up to 2**53 are exact as floats and fit int64.
MAX_STEP = 1e15
#: Largest plausible loss in nats per token; larger values are refused (a fit would sit on its
#: solver bounds and report nonsense without a word).
MAX_LOSS = 100.0


@dataclass(frozen=True)
class Observations:
    """Validated training-run observations.

    Build one with :meth:`read_csv`, :meth:`from_frame` or :meth:`from_dataset`; the constructor
    itself does not validate.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per run x domain x step (proportion-only rows have ``step`` and ``loss`` missing).
    source : str
        Where the rows came from, for error messages.
    """

    frame: pd.DataFrame
    source: str = field(default="<observations>")

    # ----------------------------------------------------------------------------------- reading
    @classmethod
    def read_csv(cls, path: str | os.PathLike[str]) -> Observations:
        """Read and validate a tidy observations CSV.

        Raises
        ------
        BimixInputError
            Naming the file, the line and the problem, for the first problem found.
        """
        frame = read_text_csv(path)
        with file_lines(frame):
            return cls.from_frame(frame, source=str(path))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "<frame>") -> Observations:
        """Validate a DataFrame with the observation columns (strings or numbers) and wrap it.

        Line numbers in errors count the header as line 1, so row ``i`` (0-based) is line ``i + 2``.
        """
        return cls(_validate(frame.reset_index(drop=True), source), source)

    # ----------------------------------------------------------------------------------- writing
    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the tidy CSV atomically (a crash never leaves a half-written file)."""
        with atomic_path(path) as tmp:
            self.frame.to_csv(tmp, index=False, float_format="%.10g", quoting=csv.QUOTE_MINIMAL)

    # ----------------------------------------------------------------------------- accessors
    @property
    def runs(self) -> list[str]:
        """Run names in order of first appearance."""
        return list(pd.unique(self.frame["run"]))

    @property
    def domains(self) -> list[str]:
        """Every domain in the file (trained on, evaluated or both), in order of first appearance."""
        return list(pd.unique(self.frame["domain"]))

    @property
    def sources(self) -> list[str]:
        """Training domains: those with a positive proportion in at least one run.

        A mixture gives a share to each of them; a domain no run trained on is a :attr:`targets`
        domain, or (never evaluated either) carries no information and is left out.
        """
        trained = self.frame.loc[self.frame["proportion"] > 0, "domain"]
        return [d for d in self.domains if d in set(trained)]

    @property
    def targets(self) -> list[str]:
        """Evaluated domains that no run trained on (a downstream task, another validation set).

        Their proportion is 0 in every run; a law predicts them from the training domains'
        shares through its cross-domain terms (the transfer law's weights).
        """
        sources = set(self.sources)
        return [d for d in self.evaluated_domains if d not in sources]

    @property
    def evaluated_domains(self) -> list[str]:
        """Domains with at least one loss, in order of first appearance."""
        return list(pd.unique(self.frame.loc[self.frame["loss"].notna(), "domain"]))

    @property
    def steps(self) -> list[int]:
        """Distinct evaluation steps, ascending."""
        return sorted(int(s) for s in self.frame["step"].dropna().unique())

    @property
    def sizes(self) -> pd.Series | None:
        """Each run's model size in parameters (index ``run``), or None without a ``params``
        column."""
        if PARAMS not in self.frame.columns:
            return None
        return self.frame.groupby("run", sort=False)[PARAMS].first().reindex(self.runs)

    @property
    def distinct_sizes(self) -> list[float]:
        """The distinct model sizes, ascending (empty without a ``params`` column)."""
        sizes = self.sizes
        return [] if sizes is None else sorted(float(v) for v in sizes.unique())

    def at_sizes(self, sizes: Sequence[float]) -> Observations:
        """The runs at the given model sizes only (for cross-scale splits)."""
        wanted = {float(s) for s in sizes}
        runs = [r for r, n in (self.sizes if self.sizes is not None else {}).items()
                if float(n) in wanted]
        return self.subset(runs)

    @classmethod
    def concat(cls, parts: Sequence[Observations], source: str | None = None) -> Observations:
        """The runs of several observation sets as one (e.g. one file per model size).

        Runs must be named apart and share their domains; the result is validated anew.

        Examples
        --------
        >>> a = Observations.from_frame(pd.DataFrame({"run": ["a"], "domain": ["web"],
        ...     "proportion": [1.0], "step": [10], "loss": [3.0], "params": [1e6]}))
        >>> b = Observations.from_frame(pd.DataFrame({"run": ["b"], "domain": ["web"],
        ...     "proportion": [1.0], "step": [10], "loss": [2.5], "params": [1e7]}))
        >>> Observations.concat([a, b]).distinct_sizes
        [1000000.0, 10000000.0]
        """
        clash = sorted(set.intersection(*(set(p.runs) for p in parts))) if len(parts) > 1 else []
        if clash:
            raise BimixInputError(f"run {clash[0]!r} is in more than one of the observation "
                                  "sets; name runs apart (e.g. prefix the model size)",
                                  path=parts[1].source)
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        name = source or " + ".join(p.source for p in parts)
        return cls.from_frame(frame.astype({"step": "object"}), source=name)

    @property
    def extra_columns(self) -> list[str]:
        """Columns beyond the required five, in file order."""
        return [c for c in self.frame.columns if c not in REQUIRED]

    def mixtures(self) -> pd.DataFrame:
        """Each run's mixture as a wide table (index ``run``, one column per domain)."""
        wide = (
            self.frame.drop_duplicates(["run", "domain"])
            .pivot(index="run", columns="domain", values="proportion")
            .reindex(index=self.runs, columns=self.domains)
        )
        wide.columns.name = None
        return wide

    def subset(self, runs: Sequence[str]) -> Observations:
        """The observations of the given runs only (for held-out splits)."""
        missing = sorted(set(runs) - set(self.runs))
        if missing:
            raise BimixInputError(f"unknown runs: {', '.join(missing)}", path=self.source)
        keep = self.frame["run"].isin(list(runs))
        return Observations(self.frame.loc[keep].reset_index(drop=True), self.source)

    def __len__(self) -> int:
        return len(self.frame)

    # ------------------------------------------------------------------------------- xarray
    def to_dataset(self) -> xr.Dataset:
        """Convert to an :class:`xarray.Dataset` with dims ``(run, domain, step)``.

        ``proportion`` has dims ``(run, domain)``; ``loss`` and every extra column have dims
        ``(run, domain, step)`` and are missing (NaN or None) where nothing was evaluated.
        :meth:`from_dataset` inverts it exactly.
        """
        f = self.frame
        evaluated = f[f["step"].notna()]
        index = pd.MultiIndex.from_arrays(
            [evaluated["run"], evaluated["domain"], evaluated["step"].astype("int64")],
            names=["run", "domain", "step"],
        )
        coords = {"run": self.runs, "domain": self.domains, "step": np.array(self.steps, "int64")}
        full = pd.MultiIndex.from_product(coords.values(), names=list(coords))
        data_vars = {}
        for col in ["loss", *self.extra_columns]:
            values = pd.Series(evaluated[col].to_numpy(), index=index).reindex(full).to_numpy()
            shape = tuple(len(v) for v in coords.values())
            data_vars[col] = (("run", "domain", "step"), values.reshape(shape))
        data_vars["proportion"] = (("run", "domain"), self.mixtures().to_numpy(dtype=float))
        ds = xr.Dataset(data_vars, coords=coords)
        ds["loss"].attrs["units"] = "nats per token"
        ds.attrs["source"] = self.source
        ds.attrs["extra_columns"] = list(self.extra_columns)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Observations:
        """Rebuild validated observations from :meth:`to_dataset`'s output."""
        extras = list(np.atleast_1d(ds.attrs.get("extra_columns", [])))
        cube = ds[["loss", *extras]].to_dataframe().reset_index()
        cube = cube[cube["loss"].notna()]
        props = ds["proportion"].to_dataframe().reset_index()
        rows = props.merge(cube, on=["run", "domain"], how="left")
        # Runs and domains keep their dataset order; steps ascend within each pair.
        rows["_r"] = rows["run"].map({r: i for i, r in enumerate(ds["run"].values)})
        rows["_d"] = rows["domain"].map({d: i for i, d in enumerate(ds["domain"].values)})
        rows = rows.sort_values(["_r", "_d", "step"], kind="stable")
        rows = rows[[*REQUIRED, *extras]].reset_index(drop=True)
        return cls.from_frame(rows, source=str(ds.attrs.get("source", "<dataset>")))


# --------------------------------------------------------------------------------- validation
def extrapolation(observed_steps: Sequence[float], steps: Sequence[float],
                  factor: float = EXTRAPOLATION_FACTOR) -> str | None:
    """A warning when ``steps`` reach more than ``factor`` times beyond the observed steps.

    Returns None when every step lies within ``[first / factor, last * factor]`` of the
    observed steps.

    Examples
    --------
    >>> extrapolation([100, 300], [3000]).split(": ")[0]
    'step 3000 is 10x the last observed step (300)'
    >>> extrapolation([100, 300], [600]) is None
    True
    """
    first, last = min(observed_steps), max(observed_steps)
    high, low = max(steps), min(steps)
    if high > factor * last:
        return (f"step {high:g} is {high / last:.3g}x the last observed step ({last:g}): more than "
                f"{factor:g}x beyond the observed steps, the law is extrapolated and its bands are "
                "optimistic")
    if low < first / factor:
        return (f"step {low:g} is {first / low:.3g}x below the first observed step ({first:g}): "
                f"more than {factor:g}x outside the observed steps, the law is extrapolated and "
                "its bands are optimistic")
    return None


def _fail(source: str, row: int, problem: str) -> BimixInputError:
    return BimixInputError(problem, path=source, line=int(row) + 2)


def _cell(frame: pd.DataFrame, col: str, i: int) -> str:
    return repr(str(frame[col][i]).strip())


def _numbers(frame: pd.DataFrame, col: str) -> pd.Series:
    """Parse a column to floats; blanks become NaN, so do unparsable cells (reported by callers)."""
    values = frame[col]
    if values.dtype == object:
        values = values.astype(str).str.strip().replace({"": None, "None": None, "<NA>": None})
    return pd.to_numeric(values, errors="coerce")


def _blank(frame: pd.DataFrame, col: str) -> pd.Series:
    """Cells of ``col`` that are missing or only whitespace."""
    return frame[col].isna() | (frame[col].astype(str).str.strip() == "")


def _raise_first(checks: list, source: str) -> None:
    """Raise for the first row of the first ``(bad rows, message(row))`` check that fails."""
    for bad, message in checks:
        bad = bad.fillna(False).to_numpy(dtype=bool)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(source, i, message(i))


def _sizes(frame: pd.DataFrame, out: pd.DataFrame, source: str) -> pd.Series:
    """The ``params`` column as floats: positive, one value per run, given on at least one row of
    each run (a proportion-only row may leave it blank; it takes the run's value)."""
    size = _numbers(frame, PARAMS)
    blank = _blank(frame, PARAMS)
    unsized = blank.groupby(out["run"], sort=False).transform("all")
    checks = [
        (unsized, lambda i: f"run {out.loc[i, 'run']!r} has no params (the run's model size in "
                            "parameters, e.g. 1.2e8) on any row"),
        (size.isna() & ~blank, lambda i: f"params is not a number: {_cell(frame, PARAMS, i)}"),
        (size.notna() & ((size <= 0) | ~np.isfinite(size)),
         lambda i: f"params must be a positive number of parameters, got "
                   f"{_cell(frame, PARAMS, i)}"),
    ]
    _raise_first(checks, source)
    first = size.groupby(out["run"], sort=False).transform("first")
    differs = (size - first).abs() > 1e-9 * first
    if differs.any():
        i = int(np.argmax(differs.to_numpy()))
        raise _fail(source, i, f"run {out.loc[i, 'run']!r} has params {size[i]:g} here but "
                               f"{first[i]:g} on an earlier row: a run has one model size")
    return first.astype(float)


def _validate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BimixInputError(
            f"missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED)}",
            path=source,
            line=1,
        )
    if frame.empty:
        raise BimixInputError("no data rows", path=source, line=2)

    out = frame.copy()
    for col in ("run", "domain"):
        text = out[col].astype(str).str.strip()
        bad = frame[col].isna() | (text == "")
        if bad.any():
            raise _fail(source, bad.idxmax(), f"{col} is empty")
        out[col] = text

    blank = {c: _blank(frame, c) for c in REQUIRED}
    prop, step, loss = (_numbers(frame, c) for c in ("proportion", "step", "loss"))

    checks = [
        (blank["proportion"], lambda i: "proportion is missing"),
        (prop.isna() & ~blank["proportion"],
         lambda i: f"proportion is not a number: {_cell(frame, 'proportion', i)}"),
        (~np.isfinite(prop.fillna(0.0)) | (prop < 0) | (prop > 1 + ROUNDING_TOL),
         lambda i: f"proportion must be within [0, 1], got {prop[i]}"),
        (blank["step"] ^ blank["loss"],
         lambda i: "step and loss must both be given (or both be empty for a proportion-only row)"),
        (step.isna() & ~blank["step"], lambda i: f"step is not a number: {_cell(frame, 'step', i)}"),
        (step.notna() & ((step <= 0) | (step != np.round(step)) | ~np.isfinite(step)),
         lambda i: f"step must be a positive integer, got {_cell(frame, 'step', i)}"),
        (step.notna() & (step > MAX_STEP),
         lambda i: f"step must be at most {MAX_STEP:.0e}, got {_cell(frame, 'step', i)}"),
        (loss.isna() & ~blank["loss"],
         lambda i: f"loss must be a positive finite number, got {_cell(frame, 'loss', i)}"),
        (loss.notna() & ((loss <= 0) | ~np.isfinite(loss)),
         lambda i: f"loss must be a positive finite number, got {_cell(frame, 'loss', i)}"),
        (loss.notna() & (loss > MAX_LOSS),
         lambda i: f"loss must be in nats per token, at most {MAX_LOSS:g} (a uniform guess over "
                   f"a 10^43-token vocabulary), got {_cell(frame, 'loss', i)}: a perplexity?"),
    ]
    _raise_first(checks, source)

    out["proportion"] = prop.astype(float)
    out["step"] = step.astype("Int64")
    out["loss"] = loss.astype(float)
    if PARAMS in frame.columns:
        out[PARAMS] = _sizes(frame, out, source)

    evaluated = out["step"].notna()
    dup = out[evaluated].duplicated(["run", "domain", "step"], keep="first")
    if dup.any():
        i = dup[dup].index[0]
        r = out.loc[i]
        first = out[evaluated & (out["run"] == r["run"]) & (out["domain"] == r["domain"])
                    & (out["step"] == r["step"])].index[0]
        raise _fail(source, i, f"duplicate row for run {r['run']!r}, domain {r['domain']!r}, "
                               f"step {r['step']} (first at line {first + 2})")

    decl = out[~evaluated].duplicated(["run", "domain"], keep="first")
    if decl.any():
        i = decl[decl].index[0]
        raise _fail(source, i, f"run {out.loc[i, 'run']!r} declares domain "
                               f"{out.loc[i, 'domain']!r} twice")

    first_prop = out.groupby(["run", "domain"], sort=False)["proportion"].transform("first")
    differs = (out["proportion"] - first_prop).abs() > SUM_TOL
    if differs.any():
        i = int(np.argmax(differs.to_numpy()))
        raise _fail(source, i, f"run {out.loc[i, 'run']!r}, domain {out.loc[i, 'domain']!r} has "
                               f"proportion {out.loc[i, 'proportion']} here but {first_prop[i]} "
                               "on an earlier row")

    pairs = out.drop_duplicates(["run", "domain"])
    domains = list(pd.unique(out["domain"]))
    counts = pairs.groupby("run", sort=False)["domain"].agg(set)
    for run, have in counts.items():
        lacking = [d for d in domains if d not in have]
        if lacking:
            i = out.index[out["run"] == run][-1]
            raise _fail(source, i, f"run {run!r} gives no proportion for domain(s) "
                                   f"{', '.join(map(repr, lacking))}; every run must list every "
                                   "domain (use proportion 0 and empty step,loss if it was not "
                                   "trained on or evaluated)")

    sums = pairs.groupby("run", sort=False)["proportion"].sum()
    last_row = out.reset_index().groupby("run", sort=False)["index"].last()
    divisors = sum_divisors(sums, source=source, lines=(last_row[sums.index] + 2).tolist(),
                            what="run")
    out["proportion"] = out["proportion"] / out["run"].map(divisors)
    if not evaluated.any():
        raise BimixInputError("no evaluated rows (every row lacks step and loss)", path=source)
    return out
