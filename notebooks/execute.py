"""Execute the research notebooks.

The test suite (``tests/test_notebooks.py``) calls :func:`execute` on a copy of each notebook with
the small settings (``BIMIX_FAST=1``); run this file to refresh the committed outputs in place, at
the full settings (4 chains x 1000 draws, hundreds of training steps; a few minutes in all), after
changing a notebook or the package::

    .venv/bin/python notebooks/execute.py                        # all four, outputs saved
    .venv/bin/python notebooks/execute.py 03_planning.ipynb      # one

The kernel is the ``python3`` kernel of the interpreter running this file (the repository's
``.venv``): jupyter_client starts native kernels with ``sys.executable``, so nothing needs to be
registered globally. Every notebook runs with this folder as its working directory, so relative
paths inside the notebooks (``../tests/data``, ``../../shared/data``) mean the same in both cases.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted(p.name for p in HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(notebook: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
            cell_timeout: int = 300, fast: bool = True, env: dict[str, str] | None = None
            ) -> nbformat.NotebookNode:
    """Run every cell of ``notebook`` in a fresh kernel; raise on the first failing cell.

    Parameters
    ----------
    notebook : path-like
        The ``.ipynb`` to run.
    out : path-like, optional
        Where to write the executed notebook (outputs saved); default: write nothing.
    cell_timeout : int
        Seconds any one cell may take.
    fast : bool
        Set ``BIMIX_FAST=1`` for the kernel (few draws and training steps).
    env : dict, optional
        More environment variables for the kernel (e.g. ``TMPDIR``: the notebooks write their
        files into temporary folders).

    Returns
    -------
    nbformat.NotebookNode
        The executed notebook.

    Examples
    --------
    >>> execute(HERE / "01_quickstart.ipynb")          # doctest: +SKIP
    """
    nb = nbformat.read(notebook, as_version=4)
    env = {**os.environ, "BIMIX_FAST": "1" if fast else "0", "PYTHONHASHSEED": "0",
           # One thread per library: on a shared 2-core machine spinning OpenMP threads only wait.
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    # No per-cell timestamps: a rerun then changes only what the notebook computes.
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env=env)  # passed on to the kernel manager's start_kernel
    if out is not None:
        nbformat.write(nb, out)
    return nb


def main(names: list[str]) -> None:
    for name in names or NOTEBOOKS:
        path = HERE / Path(name).name
        start = time.perf_counter()
        # Readers see the real settings' fits and diagnostics, not the suite's shortened ones.
        execute(path, path, fast=False, cell_timeout=900)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
