"""File plumbing shared by the readers and writers.

Atomic writes (a reader never sees a half-written file, a crash never leaves one behind) and the
CSV reading every validator starts from (cells as text, so validation sees what the user wrote).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from bimix_bayes.errors import BimixInputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it over ``path`` only if the block succeeds.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic on POSIX.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the file the mode a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_text_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV with every cell as text (no NaN guessing); one clear error if it cannot be read.

    Raises
    ------
    BimixInputError
        The file is missing, empty or not parseable as CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise BimixInputError("file not found", path=path)
    try:
        # Our outputs may open with "# units: ..." lines (see write_csv): skip leading comments
        # only, so a "#" inside a cell (a run named "run#2") is data.
        with open(path, encoding="utf-8", errors="replace") as fh:
            skip = 0
            for line in fh:
                if not line.startswith("#"):
                    break
                skip += 1
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            skiprows=skip)
        frame.attrs["comment_lines"] = skip
        return frame
    except pd.errors.EmptyDataError:
        raise BimixInputError("the file is empty; expected a header row", path=path) from None
    except UnicodeDecodeError as exc:
        raise BimixInputError(f"not a readable CSV: not UTF-8 text (byte "
                              f"{exc.object[exc.start]:#04x} at offset {exc.start})",
                              path=path) from None
    except pd.errors.ParserError as exc:
        raise BimixInputError(f"not a readable CSV ({exc})", path=path) from None


#: The units line a CSV output opens with; pandas reads such a file with ``comment="#"``.
UNITS_LINE = "# units: {}\n"


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], *, units: str | None = None,
              **to_csv: object) -> None:
    """Write ``frame`` as CSV atomically, opening with a ``# units: ...`` line when given.

    The comment line keeps the table self-describing; ``pd.read_csv(path, comment="#")`` and
    every reader of this package (:func:`read_text_csv`) skip it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_csv(pd.DataFrame({"loss": [2.5]}), target, units="loss in nats per token", index=False)
    >>> target.read_text().splitlines()
    ['# units: loss in nats per token', 'loss', '2.5']
    >>> pd.read_csv(target, comment="#")["loss"].item()
    2.5
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            if units:
                fh.write(UNITS_LINE.format(units))
            frame.to_csv(fh, **to_csv)


@contextlib.contextmanager
def file_lines(frame: pd.DataFrame) -> Iterator[None]:
    """Make line numbers of errors raised in the block count the comment lines that
    :func:`read_text_csv` skipped above the header, so they name the file's real line.

    Examples
    --------
    >>> frame = pd.DataFrame({"a": ["1"]}); frame.attrs["comment_lines"] = 1
    >>> try:
    ...     with file_lines(frame):
    ...         raise BimixInputError("bad", path="t.csv", line=2)
    ... except BimixInputError as exc:
    ...     print(exc)
    t.csv: line 3: bad
    """
    try:
        yield
    except BimixInputError as exc:
        skip = frame.attrs.get("comment_lines", 0)
        if not skip or exc.line is None:
            raise
        raise BimixInputError(exc.problem, path=exc.path, line=exc.line + skip) from None
