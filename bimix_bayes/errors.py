"""The one exception type for bad user input.

Every module raises :class:`BimixInputError` for input a user can fix (a malformed CSV, an infeasible
constraint, an incompatible posterior file). The CLI turns it into one line on stderr and a non-zero
exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from os import PathLike


class BimixInputError(ValueError):
    """Bad input, with the file and the row it came from when known.

    Parameters
    ----------
    problem : str
        What is wrong, in words a user can act on.
    path : str or PathLike, optional
        The file the input came from.
    line : int, optional
        The 1-based line of that file (the header is line 1).

    Examples
    --------
    >>> str(BimixInputError("loss must be > 0, got -1.0", path="obs.csv", line=7))
    'obs.csv: line 7: loss must be > 0, got -1.0'
    """

    def __init__(
        self, problem: str, path: str | PathLike[str] | None = None, line: int | None = None
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.line = line
        where = [p for p in (self.path, None if line is None else f"line {line}") if p]
        super().__init__(": ".join([*where, problem]))
