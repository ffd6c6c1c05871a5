"""Mixtures: the wide CSV of DESIGN §4, a ``mixture`` column plus one proportion column per domain.

Examples
--------
>>> import pandas as pd
>>> mix = validate_mixtures(pd.DataFrame({"mixture": ["m1"], "web": [0.6], "code": [0.4]}))
>>> float(mix.loc["m1", "code"])
0.4
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bimix_bayes._io import file_lines, read_text_csv, write_csv
from bimix_bayes.errors import BimixInputError

#: Shares that sum to 1 within this are taken exactly as written (float rounding).
SUM_TOL = 1e-6
#: Shares that sum to 1 within this (but not within :data:`SUM_TOL`) are renormalised with one note;
#: further off is an error. Files rounded to 3 decimals (published swarms) or written by hand sum
#: to 1 within a few 1e-3 (RegMix's 17-domain rows: 0.996-1.003).
ROUNDING_TOL = 1e-2
#: Columns that ``bimix suggest`` adds beside the proportions; readers skip them. Across model
#: sizes it also writes each run's ``params`` (the size to train it at) and ``cost`` (FLOPs).
ANNOTATIONS = ("score", "expected_loss", "loss_sd", "rule", "params", "cost")
#: The units line of a mixture file with the planner's annotations (see :func:`write_mixtures`).
SUGGESTION_UNITS = ("domain columns are shares of the training tokens; expected_loss and loss_sd "
                    "in nats per token; params in parameters and cost in FLOPs (6 x params x "
                    "tokens) where present")


class RenormalisedWarning(UserWarning):
    """Shares that summed to 1 only within :data:`ROUNDING_TOL` were divided by their sum."""


def sum_divisors(
    sums: pd.Series, *, source: str, lines: Sequence[int], what: str = "mixture",
    tol: float = ROUNDING_TOL, note: bool = True,
) -> pd.Series:
    """Check the share sums of mixtures (or runs) and say what to divide each one's shares by.

    The one rule of the package for shares that do not sum to 1 exactly: within :data:`SUM_TOL`
    they are kept, within ``tol`` they are renormalised (with one :class:`RenormalisedWarning`
    for the whole file, which the CLI prints as one line on stderr), beyond it they are refused.

    Parameters
    ----------
    sums : pandas.Series
        Each mixture's (run's) sum of shares, indexed by its name.
    source : str
        The file, for the note and the error.
    lines : sequence of int
        The line of the file each sum comes from (for the error).
    what : str
        What a row is, in the messages ("mixture", "run").
    tol : float
        Largest accepted distance of a sum from 1.
    note : bool
        Warn when anything is renormalised.

    Returns
    -------
    pandas.Series
        The sum where a row is renormalised, 1.0 where it is kept as it is.

    Raises
    ------
    BimixInputError
        Naming the file, the line and the first sum further than ``tol`` from 1.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     d = sum_divisors(pd.Series({"a": 1.0, "b": 0.999}), source="m.csv", lines=[2, 3])
    >>> d.tolist(), len(caught)
    ([1.0, 0.999], 1)
    """
    off = (sums - 1.0).abs()
    bad = (off > tol).to_numpy() | ~np.isfinite(sums.to_numpy(dtype=float))
    if bad.any():
        i = int(np.argmax(bad))
        raise BimixInputError(f"{what} {sums.index[i]!r}: proportions sum to {sums.iloc[i]:.9g}, "
                              f"not 1 (accepted within {tol:g})", path=source, line=lines[i])
    fix = off > SUM_TOL
    if fix.any() and note:
        worst = off[fix].idxmax()
        warnings.warn(f"{source}: {int(fix.sum())} {what}(s) with proportions summing to 1 only "
                      f"within {tol:g} (furthest: {what} {worst!r}, sum {sums[worst]:.6g}); "
                      "renormalised to sum to 1", RenormalisedWarning, stacklevel=3)
    return sums.where(fix, 1.0)


def read_mixtures(
    path: str | os.PathLike[str], domains: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read a wide mixture CSV into a DataFrame indexed by ``mixture``, one float column per domain.

    Parameters
    ----------
    path : path-like
        The CSV file.
    domains : sequence of str, optional
        The domains the caller knows (a posterior's, a corpus's). When given, unknown or missing
        domain columns are errors and the columns come back in this order. A domain column missing
        from the file is an error, not a silent zero.

    Raises
    ------
    BimixInputError
        Naming the file, the line and the problem.
    """
    frame = read_text_csv(path)
    with file_lines(frame):
        return validate_mixtures(frame, domains=domains, source=str(path))


def validate_mixtures(
    frame: pd.DataFrame, domains: Sequence[str] | None = None, source: str = "<mixtures>"
) -> pd.DataFrame:
    """Validate a wide mixture table (strings or numbers) and return it indexed by ``mixture``.

    The :data:`ANNOTATIONS` columns that ``bimix suggest`` writes are skipped, so its output can be
    trained directly.
    """
    if "mixture" not in frame.columns:
        raise BimixInputError("missing column 'mixture'", path=source, line=1)
    columns = [c for c in frame.columns if c != "mixture" and c not in ANNOTATIONS]
    if domains is not None:
        unknown = [c for c in columns if c not in domains]
        if unknown:
            raise BimixInputError(
                f"unknown domain column(s) {', '.join(unknown)}; known: {', '.join(domains)}",
                path=source, line=1)
        lacking = [d for d in domains if d not in columns]
        if lacking:
            raise BimixInputError(f"missing domain column(s) {', '.join(lacking)}",
                                  path=source, line=1)
        columns = list(domains)
    if not columns:
        raise BimixInputError("no domain columns", path=source, line=1)
    if frame.empty:
        raise BimixInputError("no mixtures", path=source, line=2)

    names = frame["mixture"].astype(str).str.strip()
    if (names == "").any():
        raise BimixInputError("mixture name is empty", path=source, line=int(np.argmax(names == "")) + 2)
    dup = names.duplicated()
    if dup.any():
        i = int(np.argmax(dup.to_numpy()))
        raise BimixInputError(f"duplicate mixture {names[i]!r}", path=source, line=i + 2)

    values = frame[columns].apply(
        lambda s: pd.to_numeric(s.astype(str).str.strip().replace("", None), errors="coerce")
    )
    for i, row in enumerate(values.to_numpy(dtype=float)):
        bad = [c for c, v in zip(columns, row, strict=True) if not np.isfinite(v)]
        if bad:
            raise BimixInputError(f"proportion of {bad[0]!r} is missing or not a number",
                                  path=source, line=i + 2)
        neg = [c for c, v in zip(columns, row, strict=True) if v < 0]
        if neg:
            raise BimixInputError(f"proportion of {neg[0]!r} is negative", path=source, line=i + 2)
    values = values.astype(float)
    values.index = pd.Index(names, name="mixture")
    divisors = sum_divisors(values.sum(axis=1), source=source,
                            lines=range(2, len(values) + 2), what="mixture")
    return values.div(divisors, axis=0)


def read_sizes(path: str | os.PathLike[str]) -> pd.Series | None:
    """The ``params`` column of a mixture file: the model size to train each mixture at.

    ``bimix suggest --params-choices`` writes it; None when the file has no such column. Read
    the mixtures themselves with :func:`read_mixtures` (which checks the names).

    Raises
    ------
    BimixInputError
        A size that is blank, not a number or not positive, naming the file and the line.
    """
    frame = read_text_csv(path)
    if "params" not in frame.columns:
        return None
    text = frame["params"].astype(str).str.strip()
    size = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    with file_lines(frame):
        for i, value in enumerate(size):
            if not (np.isfinite(value) and value > 0):
                raise BimixInputError(f"params (the model size to train this mixture at) must be "
                                      f"a positive number of parameters, got {text[i]!r}",
                                      path=path, line=i + 2)
    names = pd.Index(frame["mixture"].astype(str).str.strip(), name="mixture")
    return pd.Series(size, index=names, name="params")


def write_mixtures(mixtures: pd.DataFrame, path: str | os.PathLike[str], *,
                   units: str | None = None) -> None:
    """Write mixtures (index ``mixture``; extra columns such as scores are kept) atomically.

    ``units`` adds a leading ``# units: ...`` line (:func:`bimix_bayes._io.write_csv`), which
    :func:`read_mixtures` skips.
    """
    write_csv(mixtures.rename_axis("mixture").reset_index(), path, units=units, index=False,
              float_format="%.10g")


def most_distinct(mixtures: pd.DataFrame, k: int) -> pd.DataFrame:
    """``k`` mixtures of ``mixtures`` that lie far apart (greedy farthest-point, total variation).

    Starts from the first mixture and adds, each time, the one farthest from those already
    chosen, so near-duplicates are the last to be picked. Returns them in their original order;
    all of them when there are at most ``k``.

    Examples
    --------
    >>> mix = pd.DataFrame({"a": [0.5, 0.51, 0.9], "b": [0.5, 0.49, 0.1]}, index=["m1", "m2", "m3"])
    >>> most_distinct(mix, 2).index.tolist()
    ['m1', 'm3']
    """
    if len(mixtures) <= k:
        return mixtures
    x = mixtures.to_numpy(dtype=float)
    chosen = [0]
    dist = np.abs(x - x[0]).sum(axis=1) / 2
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.abs(x - x[nxt]).sum(axis=1) / 2)
    return mixtures.iloc[sorted(chosen)]


# ------------------------------------------------------------------------------ design spread
#: Shares below this count as this in the design checks: the effective proportion adds an
#: ``eps`` of about this size (the prior's centre), so smaller shares move the law no further.
SHARE_FLOOR = 1e-3
#: A domain whose share varies by less than this factor across a design (largest / smallest,
#: floored at :data:`SHARE_FLOOR`) leaves its proportion exponent close to the prior. The exponent
#: is a slope in log-share: with run-to-run noise of 1 % of the loss (real curves scatter by
#: 0.3-0.9 %) and 8 runs spread evenly in log-share, a 3x range resolves exponents down to about
#: 0.02 at two standard errors (2 x 0.01 / (0.32 x sqrt 8)); the prior's median exponent is 0.08.
#: The README tour's runs have exponents of 0.006-0.02: there its 8-run design (4 entropy + 4
#: Dirichlet mixtures, one domain at 2.9x) is borderline (contractions 0.46-0.74), and the four
#: entropy mixtures alone (1.2-1.8x) resolve only exponents above about 0.15
#: (benchmarks/results/readme_tour.md).
MIN_SHARE_RATIO = 3.0
#: The share range a widened design suggests stays within these (trainable shares).
SUGGESTED_SHARES = (0.01, 0.8)


def share_spread(mixtures: pd.DataFrame) -> pd.DataFrame:
    """Each domain's lowest and highest share across a design, and their ratio.

    Parameters
    ----------
    mixtures : pandas.DataFrame
        Wide mixtures (one row per mixture or run, one column per domain).

    Returns
    -------
    pandas.DataFrame
        Index ``domain``; columns ``low``, ``high`` (the shares as written) and ``ratio``
        (``high / low`` with both floored at :data:`SHARE_FLOOR`).

    Examples
    --------
    >>> mix = pd.DataFrame({"web": [0.7, 0.3], "code": [0.3, 0.7]})
    >>> share_spread(mix).round(2).loc["web"].tolist()
    [0.3, 0.7, 2.33]
    """
    values = mixtures.astype(float)
    low, high = values.min(axis=0), values.max(axis=0)
    ratio = high.clip(lower=SHARE_FLOOR) / low.clip(lower=SHARE_FLOOR)
    return pd.DataFrame({"low": low, "high": high, "ratio": ratio}).rename_axis("domain")


def wider_range(low: float, high: float, ratio: float) -> tuple[float, float]:
    """A share range spanning ``ratio`` (largest / smallest) around the geometric middle of
    ``[low, high]``, moved inside :data:`SUGGESTED_SHARES` (and no narrower than the given one).

    Examples
    --------
    >>> [round(x, 3) for x in wider_range(0.15, 0.2, 4.0)]
    [0.087, 0.346]
    """
    lo_cap, hi_cap = SUGGESTED_SHARES
    middle = float(np.sqrt(max(low, SHARE_FLOOR) * max(high, SHARE_FLOOR)))
    half = float(np.sqrt(ratio))
    lo, hi = middle / half, middle * half
    if hi > hi_cap:  # keep the span, shifted down
        lo, hi = lo * hi_cap / hi, hi_cap
    if lo < lo_cap:
        lo, hi = lo_cap, min(hi_cap, max(hi, lo_cap * ratio))
    return min(lo, low), max(hi, high)


def narrow_shares(mixtures: pd.DataFrame, min_ratio: float = MIN_SHARE_RATIO,
                  what: str = "this design") -> str | None:
    """Say which domains' shares vary too little across a design to identify the law, or None.

    The one check of a design's spread, used before training (``bimix suggest``, ``bimix entropy
    --mixture-out``) and before sampling (``bimix fit``). A law's proportion exponent is the slope
    of log-loss against log-share: a domain whose share barely varies leaves it to the prior,
    whatever the number of runs.

    Parameters
    ----------
    mixtures : pandas.DataFrame
        Wide mixtures (rows: mixtures or runs; columns: domains).
    min_ratio : float
        Smallest acceptable ratio of a domain's largest to smallest share
        (:data:`MIN_SHARE_RATIO`).
    what : str
        How the message names the design.

    Returns
    -------
    str or None
        One sentence naming every such domain with its range, and a range that would suffice.

    Examples
    --------
    >>> uniform = pd.DataFrame({"web": [0.2, 0.3, 0.25], "code": [0.3, 0.2, 0.25],
    ...                         "math": [0.5, 0.5, 0.5]})
    >>> print(narrow_shares(uniform))                          # doctest: +NORMALIZE_WHITESPACE
    this design is too close to uniform to identify the law: across its 3 mixtures the shares of
    web (0.2-0.3, 1.5x), code (0.2-0.3, 1.5x), math (0.5-0.5, 1.0x) vary by less than 3x, so
    their proportion exponents stay close to the prior; spread each over at least 3x, better
    more (e.g. web 0.1-0.6)
    >>> narrow_shares(pd.DataFrame({"web": [0.05, 0.5, 0.8], "code": [0.95, 0.5, 0.2]})) is None
    True
    """
    spread = share_spread(mixtures)
    narrow = spread[spread["ratio"] < min_ratio]
    if narrow.empty:
        return None
    n = len(mixtures.drop_duplicates())
    listed = ", ".join(f"{d} ({r.low:.2g}-{r.high:.2g}, {r.ratio:.1f}x)"
                       for d, r in narrow.iterrows())
    several = len(narrow) > 1
    # The example range has room to spare: twice the smallest acceptable ratio.
    lo, hi = wider_range(narrow.iloc[0].low, narrow.iloc[0].high, 2 * min_ratio)
    start = (f"{what} is too close to uniform to identify the law" if len(narrow) == len(spread)
             else f"{what} varies {'some shares' if several else 'one share'} too little to "
                  "identify the law")
    return (f"{start}: across its {n} mixture{'s' if n != 1 else ''} the "
            f"share{'s' if several else ''} of {listed} var{'y' if several else 'ies'} by less "
            f"than {min_ratio:g}x, so {'their' if several else 'its'} proportion exponent"
            f"{'s stay' if several else ' stays'} close to the prior; spread "
            f"{'each' if several else 'it'} over at least {min_ratio:g}x, better more (e.g. "
            f"{narrow.index[0]} {lo:.2g}-{hi:.2g})")
