"""Observations: every rejection rule of the validator, and exact round trips (property-based)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations

COLUMNS = ["run", "domain", "proportion", "step", "loss"]
PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def valid_frames(draw, unevaluated: bool = True) -> pd.DataFrame:
    """Valid observations: every run lists every domain; proportions k/1000 summing to 1.

    Rows are in canonical order (run, domain, ascending step), the order the xarray form returns.
    Values have at most 10 significant digits, so the CSV (written with %.10g) is exact. One
    domain may be trained on but never evaluated (proportion-only rows).
    """
    domains = draw(st.lists(st.sampled_from(["web", "code", "books", "math", "arxiv"]),
                            min_size=1, max_size=4, unique=True))
    silent = draw(st.sampled_from([None, *domains[1:]])) if unevaluated else None
    steps = sorted(draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=3, unique=True)))
    n_runs = draw(st.integers(1, 4))
    rows = []
    for r in range(n_runs):
        cuts = sorted(draw(st.lists(st.integers(0, 1000), min_size=len(domains) - 1,
                                    max_size=len(domains) - 1)))
        counts = np.diff([0, *cuts, 1000])
        for d, k in zip(domains, counts, strict=True):
            if d == silent:
                rows.append((f"run{r}", d, k / 1000, None, None))
                continue
            for s in steps:
                rows.append((f"run{r}", d, k / 1000, s, draw(st.integers(1, 10**5)) / 1000))  # <= MAX_LOSS
    return pd.DataFrame(rows, columns=COLUMNS)


def _read(tmp_path, frame: pd.DataFrame) -> Observations:
    path = tmp_path / "obs.csv"
    frame.to_csv(path, index=False)
    return Observations.read_csv(path)


def _rejects(tmp_path, frame: pd.DataFrame, line: int, pattern: str) -> None:
    """Reading ``frame`` from a CSV fails with one error naming the file, the line and the problem."""
    with pytest.raises(BimixInputError) as info:
        _read(tmp_path, frame)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "obs.csv") + ": ")
    assert f": line {line}: " in message
    assert re.search(pattern, message), message
    assert "\n" not in message


# ------------------------------------------------------------------------------------ round trips
@PROPERTY
@given(frame=valid_frames())
def test_csv_round_trip_is_exact(tmp_path, frame):
    obs = _read(tmp_path, frame)
    obs.to_csv(tmp_path / "again.csv")
    again = Observations.read_csv(tmp_path / "again.csv")
    pd.testing.assert_frame_equal(again.frame, obs.frame)
    np.testing.assert_array_equal(obs.frame["proportion"], frame["proportion"])
    np.testing.assert_array_equal(obs.frame["loss"].fillna(-1), frame["loss"].fillna(-1))


@PROPERTY
@given(frame=valid_frames())
def test_xarray_round_trip_is_exact(tmp_path, frame):
    obs = Observations.from_frame(frame)
    ds = obs.to_dataset()
    assert ds["loss"].dims == ("run", "domain", "step")
    assert ds["proportion"].dims == ("run", "domain")
    assert int(ds["loss"].notnull().sum()) == int(frame["loss"].notna().sum())
    back = Observations.from_dataset(ds)
    pd.testing.assert_frame_equal(back.frame, obs.frame)
    # And through a CSV of the rebuilt frame.
    back.to_csv(tmp_path / "x.csv")
    pd.testing.assert_frame_equal(Observations.read_csv(tmp_path / "x.csv").frame, obs.frame)


def test_extra_columns_survive_csv_and_xarray(tmp_path):
    frame = pd.DataFrame({"run": ["a", "a", "b", "b"], "domain": ["web", "code"] * 2,
                          "proportion": [0.7, 0.3, 0.0, 1.0], "step": [10, 10, 10, 10],
                          "loss": [3.1, 2.2, 4.0, 1.9], "model": ["70M"] * 4})
    obs = _read(tmp_path, frame)
    assert obs.extra_columns == ["model"]
    back = Observations.from_dataset(obs.to_dataset())
    pd.testing.assert_frame_equal(back.frame, obs.frame)


# ------------------------------------------------------------------------------ rejection rules
@PROPERTY
@given(frame=valid_frames(unevaluated=False), data=st.data())
def test_rejects_proportions_not_summing_to_one(tmp_path, frame, data):
    run = data.draw(st.sampled_from(sorted(frame["run"].unique())))
    rows = frame.index[frame["run"] == run]
    domain = frame.loc[rows[0], "domain"]
    frame.loc[(frame["run"] == run) & (frame["domain"] == domain), "proportion"] += 0.02
    if frame.loc[rows[0], "proportion"] > 1:  # would trip the [0, 1] rule first
        return
    _rejects(tmp_path, frame, rows[-1] + 2, rf"run '{run}': proportions sum to 1\.02")


def test_rounded_proportions_are_renormalised_with_one_note(tmp_path):
    from bimix_bayes.mixtures import ROUNDING_TOL, RenormalisedWarning, read_mixtures

    frame = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
                          "domain": ["web", "code", "math"] * 3,
                          "proportion": [0.333, 0.333, 0.333, 0.5, 0.25, 0.25, 0.667, 0.167, 0.167],
                          "step": [10] * 9, "loss": [3.0, 2.0, 1.0] * 3})
    frame.to_csv(tmp_path / "obs.csv", index=False)
    with pytest.warns(RenormalisedWarning, match=r"2 run\(s\) .* within 0\.01") as notes:
        obs = Observations.read_csv(tmp_path / "obs.csv")
    assert len(notes) == 1
    shares = obs.mixtures()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert shares.loc["b"].tolist() == [0.5, 0.25, 0.25]  # exact rows are kept as written
    np.testing.assert_allclose(shares.loc["a"], [1 / 3] * 3)

    (tmp_path / "mix.csv").write_text("mixture,web,code\nm1,0.3333,0.6666\nm2,0.5,0.5\n"
                                      f"m3,0.5,{0.5 + 2 * ROUNDING_TOL}\n")
    with pytest.raises(BimixInputError, match=r"mix\.csv: line 4: mixture 'm3': proportions sum "
                                              r"to 1\.02, not 1 \(accepted within 0\.01\)"):
        read_mixtures(tmp_path / "mix.csv")
    (tmp_path / "mix.csv").write_text("mixture,web,code\nm1,0.3333,0.6666\nm2,0.5,0.5\n")
    with pytest.warns(RenormalisedWarning, match="1 mixture"):
        mix = read_mixtures(tmp_path / "mix.csv")
    assert mix.loc["m1", "web"] == pytest.approx(0.3333 / 0.9999) and mix.loc["m2", "web"] == 0.5


@PROPERTY
@given(frame=valid_frames(), data=st.data(),
       bad=st.sampled_from([("-0.1", "within \\[0, 1\\]"), ("nan", "within \\[0, 1\\]|not a number"),
                            ("", "proportion is missing"), ("abc", "not a number"),
                            ("1.5", "within \\[0, 1\\]")]))
def test_rejects_bad_proportions(tmp_path, frame, data, bad):
    value, pattern = bad
    i = data.draw(st.integers(0, len(frame) - 1))
    frame = frame.astype({"proportion": object})
    frame.loc[i, "proportion"] = value
    _rejects(tmp_path, frame, i + 2, pattern)


@PROPERTY
@given(frame=valid_frames(), data=st.data(),
       bad=st.sampled_from(["0", "-5", "2.5", "abc", "inf"]))
def test_rejects_bad_steps(tmp_path, frame, data, bad):
    evaluated = frame.index[frame["step"].notna()]
    i = data.draw(st.sampled_from(list(evaluated)))
    frame = frame.astype({"step": object})
    frame.loc[i, "step"] = bad
    _rejects(tmp_path, frame, i + 2, r"step (must be a positive integer|is not a number)")


@PROPERTY
@given(frame=valid_frames(), data=st.data(), bad=st.sampled_from(["0", "-1.5", "nan", "inf", "x"]))
def test_rejects_bad_losses(tmp_path, frame, data, bad):
    evaluated = frame.index[frame["loss"].notna()]
    i = data.draw(st.sampled_from(list(evaluated)))
    frame = frame.astype({"loss": object})
    frame.loc[i, "loss"] = bad
    _rejects(tmp_path, frame, i + 2, "loss must be a positive finite number")


@PROPERTY
@given(frame=valid_frames(), data=st.data())
def test_rejects_half_empty_rows(tmp_path, frame, data):
    evaluated = frame.index[frame["loss"].notna()]
    i = data.draw(st.sampled_from(list(evaluated)))
    frame.loc[i, data.draw(st.sampled_from(["step", "loss"]))] = None
    _rejects(tmp_path, frame, i + 2, "step and loss must both be given")


@PROPERTY
@given(frame=valid_frames(), data=st.data())
def test_rejects_duplicate_rows(tmp_path, frame, data):
    evaluated = frame.index[frame["loss"].notna()]
    i = data.draw(st.sampled_from(list(evaluated)))
    frame = pd.concat([frame, frame.loc[[i]]], ignore_index=True)
    _rejects(tmp_path, frame, len(frame) + 1, rf"duplicate row .*\(first at line {i + 2}\)")


@PROPERTY
@given(frame=valid_frames(), data=st.data())
def test_rejects_changing_proportion_within_a_run(tmp_path, frame, data):
    pairs = frame.groupby(["run", "domain"]).size()
    multi = pairs[pairs > 1]
    if multi.empty:
        return
    run, domain = data.draw(st.sampled_from(list(multi.index)))
    rows = frame.index[(frame["run"] == run) & (frame["domain"] == domain)]
    p = frame.loc[rows[-1], "proportion"]
    frame.loc[rows[-1], "proportion"] = p - 0.002 if p >= 0.5 else p + 0.002
    _rejects(tmp_path, frame, rows[-1] + 2, "on an earlier row")


@PROPERTY
@given(frame=valid_frames(), data=st.data())
def test_rejects_run_lacking_a_domain(tmp_path, frame, data):
    if frame["domain"].nunique() < 2:
        return
    run = data.draw(st.sampled_from(sorted(frame["run"].unique())))
    domain = data.draw(st.sampled_from(sorted(frame["domain"].unique())))
    keep = ~((frame["run"] == run) & (frame["domain"] == domain))
    if not ((frame["run"] != run) & (frame["domain"] == domain)).any():
        return  # the domain then disappears altogether: nothing is lacking
    frame = frame[keep].reset_index(drop=True)
    last = frame.index[frame["run"] == run]
    if last.empty:
        return  # the whole run is gone: it lacks nothing
    _rejects(tmp_path, frame, last[-1] + 2, rf"gives no proportion for domain\(s\) .*'{domain}'")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("run,domain,proportion,step\na,web,1,10\n", "line 1: missing column.*loss"),
        ("run,domain,proportion,step,loss\n", "line 2: no data rows"),
        ("", "the file is empty"),
        ("run,domain,proportion,step,loss\n,web,1,10,2.0\n", "line 2: run is empty"),
        ("run,domain,proportion,step,loss\na,web,1,,\n", "no evaluated rows"),
    ],
)
def test_rejects_malformed_files(tmp_path, text, pattern):
    path = tmp_path / "obs.csv"
    path.write_text(text)
    with pytest.raises(BimixInputError, match=pattern):
        Observations.read_csv(path)
    with pytest.raises(BimixInputError, match="file not found"):
        Observations.read_csv(tmp_path / "none.csv")
