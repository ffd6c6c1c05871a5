"""The research notebooks run end to end with the small settings (``BIMIX_FAST=1``).

Each notebook is executed in a fresh kernel (the ``python3`` kernel of the interpreter running the
tests) from a copy in a temporary folder, so the committed files, outputs included, are never
touched; every cell must finish without an error within the per-cell timeout.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _executor():
    """``notebooks/execute.py`` (a script beside the notebooks, not part of the package)."""
    spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOK_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_all_five_notebooks_exist():
    assert NOTEBOOKS == ["01_quickstart.ipynb", "02_published_data.ipynb", "03_planning.ipynb",
                         "04_entropy_proxies.ipynb", "05_model_size.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_without_errors(name: str, tmp_path: Path) -> None:
    committed = NOTEBOOK_DIR / name
    before = _digest(committed)
    copy = tmp_path / name
    shutil.copy(committed, copy)

    # The notebooks write their outputs into temporary folders: keep those under tmp_path.
    nb = _executor().execute(copy, cell_timeout=300, fast=True, env={"TMPDIR": str(tmp_path)})

    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    ran = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert ran and all(cell.get("execution_count") for cell in ran)
    assert _digest(committed) == before, "executing the copy changed the committed notebook"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_carry_outputs_without_errors(name: str) -> None:
    """The committed versions were executed (outputs saved) and show no error."""
    import nbformat

    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "notebook committed unexecuted"
    assert not any(out.get("output_type") == "error" for cell in code for out in cell.outputs)
    assert nb.metadata["kernelspec"]["name"] == "python3"
