"""File plumbing shared by the readers and writers.

Atomic writes (a reader never sees a half-written file, a crash never leaves one behind), the guard
every command runs on its output paths before any work (an output never overwrites an input, two
outputs never collide, an unusable path is one clear error), and the CSV reading every validator
starts from (cells as text, so validation sees what the user wrote).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import tempfile
from collections.abc import Iterator, Mapping
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
    if target.is_dir():
        raise BimixInputError("is a directory; give a file name", path=target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # a parent that is a file, a read-only or missing place
        raise _unwritable(target, exc) from None
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
        try:
            os.replace(tmp, target)
        except OSError as exc:  # the target became a directory meanwhile, say
            raise _unwritable(target, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _unwritable(target: Path, exc: OSError) -> BimixInputError:
    """The one line a user sees for an output path the system refuses."""
    reason = {errno.ENOTDIR: "a parent of this path is a file, not a directory",
              errno.EEXIST: "a parent of this path is a file, not a directory",
              errno.EISDIR: "is a directory; give a file name",
              errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the device"}
    return BimixInputError(f"cannot write here: {reason.get(exc.errno, exc.strerror or exc)}",
                           path=target)


PathLike = str | os.PathLike[str]


def check_outputs(
    files: Mapping[str, PathLike | None] | None = None,
    dirs: Mapping[str, PathLike | None] | None = None,
    inputs: Mapping[str, PathLike | None] | None = None,
) -> None:
    """Refuse, before any work, outputs that would destroy an input, collide or cannot be written.

    Every CLI command calls this first with all it reads and writes. An output is refused when it
    resolves (symbolic links followed) to an input, lies inside an input directory (a corpus),
    names the same path as another output, is an existing directory where a file is written (or a
    file where a directory is), or lies under a file. A folder output may hold an input (the demo
    keeps its corpus inside its study folder).

    Parameters
    ----------
    files : mapping of str to path, optional
        File outputs by the option that names them (``{"--out": "pred.csv"}``); None values are
        skipped (an option not given).
    dirs : mapping of str to path, optional
        Directory outputs (a study folder, a demo folder).
    inputs : mapping of str to path, optional
        Inputs (files or directories) by the option or argument that names them.

    Raises
    ------
    BimixInputError
        Naming the output path and the problem.

    Examples
    --------
    >>> check_outputs(files={"--out": "obs.csv"}, inputs={"OBS": "obs.csv"})
    Traceback (most recent call last):
    ...
    bimix_bayes.errors.BimixInputError: obs.csv: --out would overwrite the input OBS; choose another name
    >>> check_outputs(files={"--out": "e.csv", "--mixture-out": "./e.csv"})
    Traceback (most recent call last):
    ...
    bimix_bayes.errors.BimixInputError: e.csv: --out and --mixture-out name the same file
    """
    ins = {name: Path(p) for name, p in (inputs or {}).items() if p is not None}
    outs = [(name, Path(p), False) for name, p in (files or {}).items() if p is not None]
    outs += [(name, Path(p), True) for name, p in (dirs or {}).items() if p is not None]
    seen: dict[Path, str] = {}
    for name, path, is_dir in outs:
        where = path.resolve()
        if where in seen:
            raise BimixInputError(f"{seen[where]} and {name} name the same file", path=path)
        seen[where] = name
        for in_name, in_path in ins.items():
            src = in_path.resolve()
            if where == src or (path.exists() and in_path.exists() and os.path.samefile(path, in_path)):
                raise BimixInputError(f"{name} would overwrite the input {in_name}; choose another "
                                      "name", path=path)
            if in_path.is_dir() and where.is_relative_to(src):
                raise BimixInputError(f"{name} lies inside the input {in_name} ({in_path}), which "
                                      "it would change; choose a place outside it", path=path)
        if not is_dir and path.is_dir():
            raise BimixInputError(f"{name} is a directory; give a file name", path=path)
        if is_dir and path.exists() and not path.is_dir():
            raise BimixInputError(f"{name} is a file; give a folder", path=path)
        parent = where if is_dir else where.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise BimixInputError(f"{name} lies under {parent}, which is a file, not a directory",
                                  path=path)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BimixInputError(f"{name}: cannot write in {parent} (permission denied)",
                                  path=path)


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
        # index_col=False: a row with one field too many must not turn the first column into
        # an index (pandas infers that from the first data row) and shift every name.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            skiprows=skip, index_col=False)
        frame.attrs["comment_lines"] = skip
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for _ in range(skip):
                next(reader, None)
            header = next(reader, [])
            for row in reader:
                # A short row is padded with empty cells, which the validators name; a long one
                # pandas would shift or truncate.
                if len(row) > len(header):
                    raise BimixInputError(f"the row has {len(row)} fields, the header only "
                                          f"{len(header)}", path=path, line=reader.line_num)
    except pd.errors.EmptyDataError:
        raise BimixInputError("the file is empty; expected a header row", path=path) from None
    except UnicodeDecodeError as exc:
        raise BimixInputError(f"not a readable CSV: not UTF-8 text (byte "
                              f"{exc.object[exc.start]:#04x} at offset {exc.start})",
                              path=path) from None
    except pd.errors.ParserError as exc:
        # pandas' parser messages span lines; the user's error is one line.
        raise BimixInputError(f"not a readable CSV ({' '.join(str(exc).split())})",
                              path=path) from None
    # Names are compared stripped everywhere (observations, mixtures): " code" is "code". pandas
    # renames a repeated name to "name.1", which would silently drop one of the two columns.
    names = [name.strip() for name in header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BimixInputError(f"column {repeated[0]!r} appears more than once in the header",
                              path=path, line=1 + skip)
    if len(names) == len(frame.columns):
        frame.columns = names
    return frame


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
