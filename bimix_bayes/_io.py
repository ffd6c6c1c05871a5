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
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise BimixInputError("the file is empty; expected a header row", path=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BimixInputError(f"not a readable CSV ({exc})", path=path) from None
