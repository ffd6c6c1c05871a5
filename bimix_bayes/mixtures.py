"""Mixtures: the wide CSV of DESIGN §4, a ``mixture`` column plus one proportion column per domain.

Examples
--------
>>> import pandas as pd
>>> mix = validate_mixtures(pd.DataFrame({"mixture": ["m1"], "web": [0.6], "code": [0.4]}))
>>> mix.loc["m1", "code"]
0.4
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bimix_bayes._io import file_lines, read_text_csv, write_csv
from bimix_bayes.errors import BimixInputError

SUM_TOL = 1e-6
#: Columns that ``bimix suggest`` adds beside the proportions; readers skip them.
ANNOTATIONS = ("score", "expected_loss", "loss_sd", "rule")
#: The units line of a mixture file with the planner's annotations (see :func:`write_mixtures`).
SUGGESTION_UNITS = ("domain columns are shares of the training tokens; expected_loss and loss_sd "
                    "in nats per token")


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
        if abs(row.sum() - 1.0) > SUM_TOL:
            raise BimixInputError(f"mixture {names[i]!r}: proportions sum to {row.sum():.9g}, not 1",
                                  path=source, line=i + 2)
    values.index = pd.Index(names, name="mixture")
    return values.astype(float)


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
