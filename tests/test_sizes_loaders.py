"""The model-size axis in the loaders and the CLI: ``params`` from file names, one set of runs
over every size of a dataset, and the column's validation messages.

Fast tests use the fixtures in tests/data (RegMix's MIT-licensed rows; the Data Mixing Laws format
with made-up losses, as its data carry no licence). The published files themselves, in
``../shared/data`` beside the repository as DESIGN.md places them, are read only by the slow
test, which is skipped where they are absent (a fresh clone).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bimix_bayes.errors import BimixInputError
from bimix_bayes.loaders import (
    REGMIX_STEPS,
    load_mixinglaws,
    load_mixinglaws_sizes,
    load_regmix,
    load_regmix_sizes,
    nominal_size,
)
from bimix_bayes.observations import Observations

DATA = Path(__file__).parent / "data"
ML = DATA / "mixinglaws" / "3mix.txt"
REGMIX = DATA / "regmix" / "sizes"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.parametrize(("name", "size"), [
    ("70M", 7e7), ("160M", 1.6e8), ("305M", 3.05e8), ("1B", 1e9), ("1m", 1e6), ("60m", 6e7),
    ("1.5B", 1.5e9), ("proportions", None), ("3mix", None), ("M", None), ("70", None),
])
def test_nominal_size_reads_size_names(name, size):
    assert nominal_size(name) == size


def _size_folder(tmp_path: Path) -> Path:
    """A dataset folder in the mixinglaws layout: 70M.txt with ``70M_`` run folders, 410M.txt
    whose run folders carry no prefix (as 3Mix/410M.txt), and a proportions.txt."""
    folder = tmp_path / "3Mix"
    folder.mkdir()
    text = ML.read_text()
    (folder / "70M.txt").write_text(text)
    lines = []
    for line in text.splitlines():
        ckpt, vfile, loss = line.split("\t")
        lines.append(f"{ckpt.replace('70M_', '')}\t{vfile}\t{float(loss) * 0.9}")
    (folder / "410M.txt").write_text("\n".join(lines) + "\n")
    (folder / "proportions.txt").write_text("0.25-0.125-0.625\n0.5-0.5-0.0\n")
    return folder


def test_mixinglaws_file_named_for_its_size_gets_params(tmp_path):
    folder = _size_folder(tmp_path)
    obs = load_mixinglaws(folder / "70M.txt")
    assert obs.distinct_sizes == [7e7] and (obs.frame["params"] == 7e7).all()
    assert obs.runs == load_mixinglaws(ML).runs  # already prefixed: names unchanged
    assert load_mixinglaws(ML).sizes is None  # 3mix.txt names no size: no column
    assert "params" not in load_mixinglaws(folder / "70M.txt", params=False).frame
    assert load_mixinglaws(ML, params=1.2e8).distinct_sizes == [1.2e8]
    # Unprefixed run folders take the size, so that the files' runs stay apart.
    big = load_mixinglaws(folder / "410M.txt")
    assert big.runs == ["410M_1-0.25-0.125-0.625", "410M_2-0.5-0.5-0.0", "410M_3-0.0-0.25-0.75"]
    assert load_mixinglaws(folder / "410M.txt", params=False).runs[0] == "1-0.25-0.125-0.625"


def test_mixinglaws_size_errors_name_the_file():
    with pytest.raises(BimixInputError, match=r"3mix\.txt: the file name does not name a model "
                                              r"size \('3mix'"):
        load_mixinglaws(ML, params=True)
    for bad in (0, -7e7, float("inf")):
        with pytest.raises(BimixInputError, match=r"3mix\.txt: params must be a positive"):
            load_mixinglaws(ML, params=bad)


def test_mixinglaws_sizes_joins_every_size_file(tmp_path):
    folder = _size_folder(tmp_path)
    obs = load_mixinglaws_sizes(folder)  # proportions.txt is no size file
    assert obs.distinct_sizes == [7e7, 4.1e8]
    assert len(obs.runs) == 6 and len(set(obs.runs)) == 6
    sizes = obs.sizes
    assert sizes["70M_1-0.25-0.125-0.625"] == 7e7 and sizes["410M_1-0.25-0.125-0.625"] == 4.1e8
    mix = obs.mixtures()  # the same mixture at both sizes
    pd.testing.assert_series_equal(mix.loc["70M_2-0.5-0.5-0.0"], mix.loc["410M_2-0.5-0.5-0.0"],
                                   check_names=False)
    assert load_mixinglaws_sizes(folder, sizes=["410M"]).distinct_sizes == [4.1e8]
    # Options reach every file: 5Mix and RedPajama need unmatched="target" or "drop".
    for name in ("70M.txt", "410M.txt"):
        path = folder / name
        path.write_text(path.read_text().replace("valid.Books3.bin", "valid.ArXiv.bin"))
    with pytest.raises(BimixInputError, match=r"70M\.txt: validation domain\(s\) ArXiv"):
        load_mixinglaws_sizes(folder)
    targets = load_mixinglaws_sizes(folder, unmatched="target")
    assert targets.targets == ["ArXiv"] and targets.distinct_sizes == [7e7, 4.1e8]


def test_mixinglaws_sizes_errors_name_the_folder_or_file(tmp_path):
    folder = _size_folder(tmp_path)
    with pytest.raises(BimixInputError, match=r"3Mix/1B\.txt: file not found"):
        load_mixinglaws_sizes(folder, sizes=["70M", "1B"])
    with pytest.raises(BimixInputError, match=r"proportions\.txt: 'proportions' is no model size"):
        load_mixinglaws_sizes(folder, sizes=["proportions"])
    with pytest.raises(BimixInputError, match="params comes from each file's name"):
        load_mixinglaws_sizes(folder, params=1e8)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "proportions.txt").write_text("0.5-0.5\n")
    with pytest.raises(BimixInputError, match=r"empty: no size files"):
        load_mixinglaws_sizes(empty)
    with pytest.raises(BimixInputError, match=r"nowhere: folder not found"):
        load_mixinglaws_sizes(tmp_path / "nowhere")
    # Two size files whose runs have the same names: concat refuses, naming the second file.
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "70M.txt").write_text(ML.read_text())
    (clash / "160M.txt").write_text(ML.read_text())
    with pytest.raises(BimixInputError, match=r"160M\.txt: run '70M_1-.*' is in more than one"):
        load_mixinglaws_sizes(clash)


def test_regmix_file_named_for_its_size_gets_params():
    obs = load_regmix(REGMIX / "test_mixture_60m.csv", REGMIX / "test_pile_loss_60m.csv",
                      step=1000)
    assert obs.distinct_sizes == [6e7]
    assert load_regmix(DATA / "regmix" / "mixture.csv", DATA / "regmix" / "loss.csv",
                       step=1000).sizes is None
    with pytest.raises(BimixInputError, match=r"mixture\.csv: the file name does not name"):
        load_regmix(DATA / "regmix" / "mixture.csv", DATA / "regmix" / "loss.csv", step=1000,
                    params=True)
    explicit = load_regmix(REGMIX / "test_mixture_1m.csv", REGMIX / "test_pile_loss_1m.csv",
                           step=1000, params=1.3e6)
    assert explicit.distinct_sizes == [1.3e6]


def test_regmix_sizes_names_runs_by_size_at_each_final_step():
    obs = load_regmix_sizes(REGMIX)
    assert obs.runs == ["1m-1", "1m-2", "1m-3", "60m-1", "60m-2", "60m-3", "1B-0", "1B-1", "1B-2"]
    assert obs.distinct_sizes == [1e6, 6e7, 1e9]
    steps = obs.frame.dropna(subset=["step"]).groupby("params")["step"].unique()
    assert {k: list(v) for k, v in steps.items()} == {1e6: [1000], 6e7: [1000], 1e9: [25000]}
    assert REGMIX_STEPS == {"1m": 1000, "60m": 1000, "1B": 25000}
    mix = obs.mixtures()  # 1m and 60m: the same mixtures under the same index
    pd.testing.assert_series_equal(mix.loc["1m-2"], mix.loc["60m-2"], check_names=False)
    assert (mix.loc["1B-1"] - mix.loc["1m-1"]).abs().max() > 0.01  # 1B: other mixtures
    some = load_regmix_sizes(REGMIX, sizes=["1M", "1b"], swarm=True)
    assert some.runs == ["1m-1", "1m-2", "1m-3", "1m-train-1", "1m-train-2", "1m-train-3",
                         "1B-0", "1B-1", "1B-2"]
    with pytest.raises(BimixInputError, match="unknown RegMix size '7B'; the sizes are 1m, 60m, 1B"):
        load_regmix_sizes(REGMIX, sizes=["7B"])


def test_regmix_sizes_missing_file_is_named(tmp_path):
    for name in ("test_mixture_1m.csv", "test_pile_loss_1m.csv"):
        (tmp_path / name).write_bytes((REGMIX / name).read_bytes())
    with pytest.raises(BimixInputError, match=r"test_mixture_60m\.csv: file not found"):
        load_regmix_sizes(tmp_path)
    assert load_regmix_sizes(tmp_path, sizes=["1m"]).distinct_sizes == [1e6]


# ------------------------------------------------------------------------------ bimix validate
def _sized_csv(tmp_path: Path, edit=None) -> Path:
    frame = load_regmix_sizes(REGMIX, sizes=["1m", "1B"]).frame.copy()
    frame["params"] = frame["params"].map(lambda v: f"{v:g}")
    if edit is not None:
        edit(frame)
    path = tmp_path / "obs.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_validate_prints_the_model_sizes(tmp_path, cli):
    done = cli("validate", _sized_csv(tmp_path))
    assert done.code == 0, done.err
    assert "OK: 6 runs" in done.out
    assert "2 model sizes: 1e+06 (3 runs), 1e+09 (3 runs)" in done.out
    plain = tmp_path / "plain.csv"
    pd.read_csv(_sized_csv(tmp_path)).drop(columns="params").to_csv(plain, index=False)
    assert "size" not in cli("validate", plain).out


@pytest.mark.parametrize(("edit", "line", "problem"), [
    (lambda f: f.__setitem__("params", f["params"].where(f.index != 3, "big")), 5,
     "params is not a number: 'big'"),
    (lambda f: f.__setitem__("params", f["params"].where(f.index != 0, "-1e6")), 2,
     "params must be a positive number of parameters, got '-1e6'"),
    (lambda f: f.__setitem__("params", f["params"].where(f.index != 5, "2e6")), 7,
     "run '1m-1' has params 2e+06 here but 1e+06 on an earlier row"),
    (lambda f: f.__setitem__("params", f["params"].where(f["run"] != "1m-2", "")), 19,
     "run '1m-2' has no params"),
])
def test_cli_validate_names_file_line_and_problem_of_bad_params(tmp_path, cli, edit, line,
                                                                problem):
    path = _sized_csv(tmp_path, edit)
    cli("validate", path).assert_user_error(f"{path}: line {line}: {problem}")
    assert not list(tmp_path.glob("*.tmp"))


# ------------------------------------------------------------------------------ published data
@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "mixinglaws" / "data").is_dir(),
                    reason="the published data (../shared/data) are not beside this checkout")
def test_published_datasets_load_at_every_size():
    root = SHARED / "mixinglaws" / "data"
    five = ("academic", "prose", "dialogue", "symbolic", "internet")
    redpajama = tuple(f"RedPajama-{i}" for i in range(1, 8))
    expected = {
        "2Mix": ({}, [7e7, 1.6e8], 10),
        "3Mix": ({}, [7e7, 1.6e8, 4.1e8], 41),
        "5Mix": ({"domains": five, "unmatched": "target"}, [7e7, 1.6e8, 3.05e8, 4.1e8, 1e9], 110),
        "RedPajama": ({"domains": redpajama, "unmatched": "target", "sum_tol": 0.025},
                      [7e7, 1.6e8, 3.05e8, 4.1e8, 1e9], 107),
    }
    for name, (options, sizes, runs) in expected.items():
        obs = load_mixinglaws_sizes(root / name, **options)
        assert obs.distinct_sizes == sizes, name
        assert len(obs.runs) == runs, name
        # Every run name carries its size (3Mix/410M.txt's folders got the prefix).
        named = obs.sizes.index.str.split("_").str[0].map(nominal_size)
        assert (named.to_numpy() == obs.sizes.to_numpy()).all(), name
    regmix = load_regmix_sizes(SHARED / "regmix" / "data", swarm=True)
    assert regmix.sizes.value_counts().to_dict() == {1e6: 768, 6e7: 256, 1e9: 64}
    mix = regmix.mixtures()
    small = [f"1m-{i}" for i in range(1, 257)]
    assert (mix.loc[small].to_numpy() == mix.loc[[f"60m-{i}" for i in range(1, 257)]]
            .to_numpy()).all()
    assert isinstance(regmix, Observations)
