"""Class 6 of issue 13: tampered or inconsistent posterior files must be refused in one line.

Each case edits a valid least-squares posterior file the way a careless script or a bad copy would, then runs
``bimix predict`` on it: one ``error:`` line naming the file, exit 2, no output.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from adversarial_cases import MIX, OBS


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bimix_bayes.leastsq import LeastSquaresFit
    from bimix_bayes.observations import Observations

    path = tmp_path_factory.mktemp("post") / "fit.nc"
    LeastSquaresFit().fit(Observations.read_csv(OBS)).to_posterior().save(path)
    return path


def _law_edited_to_bimix_on_a_transfer_fit(tree: xr.DataTree) -> None:
    draws = tree["posterior"].to_dataset()
    domains = draws["domain"].to_numpy()
    draws["transfer"] = (("chain", "draw", "domain", "source"),
                         np.full((1, 1, len(domains), len(domains)), 0.1))
    draws = draws.assign_coords(source=domains)
    tree["posterior"] = xr.DataTree(draws)
    tree.attrs["law"] = "bimix"  # was "transfer": predicting would drop the transfer weights


def _nan_draw(tree: xr.DataTree) -> None:
    draws = tree["posterior"].to_dataset()
    alpha = draws["alpha"].to_numpy().copy()
    alpha[0, 0, 0] = np.nan
    draws["alpha"] = (draws["alpha"].dims, alpha)
    tree["posterior"] = xr.DataTree(draws)


def _infinite_draw(tree: xr.DataTree) -> None:
    draws = tree["posterior"].to_dataset()
    u = draws["u"].to_numpy().copy()
    u[0, 0, -1] = np.inf
    draws["u"] = (draws["u"].dims, u)
    tree["posterior"] = xr.DataTree(draws)


def _drop_attr(name: str) -> Callable[[xr.DataTree], None]:
    def edit(tree: xr.DataTree) -> None:
        del tree.attrs[name]
    return edit


def _set_attr(name: str, value: object) -> Callable[[xr.DataTree], None]:
    def edit(tree: xr.DataTree) -> None:
        tree.attrs[name] = value
    return edit


TAMPERING = {
    "law edited on a transfer fit": _law_edited_to_bimix_on_a_transfer_fit,
    "NaN draw": _nan_draw,
    "infinite draw": _infinite_draw,
    "no s_ref": _drop_attr("s_ref"),
    "no method": _drop_attr("method"),
    "file_format abc": _set_attr("file_format", "abc"),
    "s_ref not a number": _set_attr("s_ref", "abc"),
    "negative s_ref": _set_attr("s_ref", -5.0),
    "diagnostics not JSON": _set_attr("diagnostics", "{not json"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_posterior_is_one_line_naming_the_file(cli, fitted, tmp_path, case):
    tampered = tmp_path / "tampered.nc"
    with xr.open_datatree(fitted, engine="netcdf4") as opened:
        tree = opened.load()
    TAMPERING[case](tree)
    tree.to_netcdf(tampered, engine="netcdf4")
    shutil.copy(MIX, tmp_path / "mix.csv")
    out = tmp_path / "pred.csv"
    done = cli("predict", tampered, "--mixtures", tmp_path / "mix.csv", "--steps", "1000",
               "--out", out)
    done.assert_user_error(str(tampered))
    assert not out.exists()
