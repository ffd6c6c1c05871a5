"""The observations CSV as a crash-safe log that training runs append to.

Each evaluation appends its rows (one per domain) in one atomic replace of the file: the new content
is written beside it, fsynced and renamed over it, so a reader or a crash never sees half a row.
An exclusive ``flock`` on the file's directory serialises writers (the file itself is replaced, so
it cannot carry the lock), so several processes (one mixture per GPU) can share one file without
leaving a lock file behind. Rows whose ``(run, domain, step)`` is already present are skipped, which
makes a resumed run that repeats an evaluation write nothing twice.

Examples
--------
>>> import tempfile, pathlib
>>> log = ObservationLog(pathlib.Path(tempfile.mkdtemp()) / "obs.csv")
>>> row = {"run": "a", "domain": "web", "proportion": 1.0, "step": 10, "loss": 3.25,
...        "params": 393856, "tokens": 640, "model": "tiny", "seed": 0}
>>> log.append([row]), log.append([row])
(1, 0)
>>> log.path.read_text().splitlines()
['run,domain,proportion,step,loss,params,tokens,model,seed', 'a,web,1,10,3.25,393856,640,tiny,0']

A file written before the trainer recorded ``params`` (:data:`LEGACY_COLUMNS`) keeps its columns:
runs resumed into it append rows without ``params``, exactly as the older trainer would have.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bimix_bayes._io import atomic_path
from bimix_bayes.errors import BimixInputError

COLUMNS = ("run", "domain", "proportion", "step", "loss", "params", "tokens", "model", "seed")
#: The trainer's columns before it recorded the model size: files written then are continued as
#: they are (same columns), so that a run interrupted before an upgrade resumes into its file.
LEGACY_COLUMNS = tuple(c for c in COLUMNS if c != "params")


class ObservationLog:
    """Append-only view of an observations CSV with the trainer's columns (:data:`COLUMNS`).

    Parameters
    ----------
    path : str or PathLike
        The CSV; created with a header on the first append. An existing file must have exactly
        :data:`COLUMNS` (or :data:`LEGACY_COLUMNS`, then rows are written without ``params``) as
        its header.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def check(self) -> None:
        """Raise :class:`BimixInputError` if an existing file cannot take the trainer's rows."""
        self.rows()

    def rows(self) -> list[dict[str, str]]:
        """The rows already in the file, as strings (empty when the file does not exist)."""
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) not in (COLUMNS, LEGACY_COLUMNS):
                raise BimixInputError(
                    f"existing output has columns {reader.fieldnames}, not the trainer's "
                    f"{','.join(COLUMNS)}; choose another --out", path=self.path, line=1)
            return list(reader)

    def columns(self) -> tuple[str, ...]:
        """The columns rows are written with: the existing file's, :data:`COLUMNS` for a new one."""
        if not self.path.exists():
            return COLUMNS
        with open(self.path, newline="", encoding="utf-8") as fh:
            header = tuple(next(csv.reader(fh), ()))
        return LEGACY_COLUMNS if header == LEGACY_COLUMNS else COLUMNS

    def keys(self) -> set[tuple[str, str, int]]:
        """The ``(run, domain, step)`` triples already present."""
        return {(r["run"], r["domain"], int(r["step"])) for r in self.rows() if r["step"]}

    def append(self, rows: Sequence[dict[str, Any]]) -> int:
        """Add the rows not yet present, atomically; return how many were written."""
        with self._locked():
            existing = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            have = self.keys()
            new = [r for r in rows if (str(r["run"]), str(r["domain"]), int(r["step"])) not in have]
            if not new:
                return 0
            columns = self.columns()
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            if not existing:
                writer.writerow(columns)
            for r in new:
                writer.writerow([_format(r[c]) for c in columns])
            with atomic_path(self.path) as tmp:
                tmp.write_text(existing + buf.getvalue(), encoding="utf-8")
            return len(new)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _format(value: Any) -> str:
    # Ten significant digits: the same text on every run, far below training noise.
    return f"{value:.10g}" if isinstance(value, float) else str(value)


class RunClaims:
    """Exclusive claims of training runs by this process: one ``flock``-ed ``RUN.lock`` per run.

    A trainer claims every run it will train *before* it checks the rows and checkpoints already
    there, so the checks and the training see no other writer of those runs. A second trainer on
    the same ``--out`` that finds a run claimed reads the holder's settings from the lock file:
    other settings are refused at once (their rows would interleave); the same settings wait for
    the holder, then find the run complete and skip it. The kernel drops a lock when its process
    dies, even by SIGKILL, so a crash never blocks the rerun; :meth:`release` deletes the file
    while still holding the lock, and :meth:`claim` retries when the file it locked was deleted
    meanwhile, so two processes never both hold a run.

    Parameters
    ----------
    directory : path-like
        Where the lock files live (the checkpoint folder).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> mine, theirs = RunClaims(folder), RunClaims(folder)
    >>> mine.claim("a-seed0", "steps=20")
    >>> theirs.claim("a-seed0", "steps=40")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bimix_bayes.errors.BimixInputError: ...run 'a-seed0' is being trained right now by another...
    >>> mine.release_all(); sorted(p.name for p in folder.iterdir())
    []
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._held: dict[str, int] = {}

    def claim(self, run: str, settings: str, wait: Any = None) -> None:
        """Hold ``run`` exclusively; ``settings`` (the run fingerprint) is shown to other claimants.

        ``wait``, if given, is called with one line before waiting for a holder with the same
        settings (or one still writing them).

        Raises
        ------
        BimixInputError
            Another live process holds ``run`` with other settings.
        """
        path = self.directory / f"{run}.lock"
        while True:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:  # another trainer removed the empty folder just now
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 1 << 20, 0).decode("utf-8", "replace")
                if holder and holder != settings:
                    os.close(fd)
                    raise BimixInputError(
                        f"run {run!r} is being trained right now by another process with other "
                        "settings (preset, steps, seed, mixture or corpus); wait for it to finish "
                        "or choose another --out", path=path) from None
                if wait is not None:
                    wait(f"{run}: another process is training it with the same settings; waiting")
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if not current:  # the holder finished and deleted the file we locked: lock anew
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, settings.encode("utf-8"), 0)
            self._held[run] = fd
            return

    def holds(self, run: str) -> bool:
        """Whether this process holds ``run``."""
        return run in self._held

    def release(self, run: str) -> None:
        """Give ``run`` up and delete its lock file (a no-op when not held)."""
        fd = self._held.pop(run, None)
        if fd is None:
            return
        (self.directory / f"{run}.lock").unlink(missing_ok=True)  # while the lock is still ours
        os.close(fd)

    def release_all(self) -> None:
        """Give up every run still held."""
        for run in list(self._held):
            self.release(run)
