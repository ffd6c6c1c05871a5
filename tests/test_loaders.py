"""Loaders for RegMix, Data Mixing Laws and Olmix files (tiny fixtures under tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bimix_bayes.errors import BimixInputError
from bimix_bayes.loaders import load_mixinglaws, load_olmix, load_regmix

DATA = Path(__file__).parent / "data"
REGMIX_MIX, REGMIX_LOSS = DATA / "regmix" / "mixture.csv", DATA / "regmix" / "loss.csv"
ML = DATA / "mixinglaws" / "3mix.txt"
OLMIX_RATIOS, OLMIX_METRICS = DATA / "olmix" / "ratios.csv", DATA / "olmix" / "metrics.csv"


def test_regmix_loads_all_domains_and_zero_proportions():
    obs = load_regmix(REGMIX_MIX, REGMIX_LOSS, step=1000, run_prefix="1m-")
    assert obs.runs == [f"1m-{i}" for i in range(1, 7)]
    assert len(obs.domains) == 17 and len(obs.evaluated_domains) == 13
    # Trained-on but never evaluated domains are proportion-only rows.
    assert {"nih_exporter", "philpapers", "enron_emails", "europarl"} == \
        set(obs.domains) - set(obs.evaluated_domains)
    mix = obs.mixtures()
    np.testing.assert_allclose(mix.sum(axis=1), 1.0, atol=1e-12)  # rounded rows rescaled
    assert (mix == 0).to_numpy().sum() > 20  # zeros load as zeros
    raw = pd.read_csv(REGMIX_LOSS)
    got = obs.frame.set_index(["run", "domain"])["loss"]
    assert got[("1m-2", "pile_cc")] == pytest.approx(raw.loc[1, "metric/the_pile_pile_cc_val_loss"])
    assert obs.steps == [1000]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_regmix_errors_name_file_and_line(tmp_path):
    mix_text = REGMIX_MIX.read_text().splitlines()
    loss_text = REGMIX_LOSS.read_text().splitlines()
    with pytest.raises(BimixInputError, match="step must be a positive integer"):
        load_regmix(REGMIX_MIX, REGMIX_LOSS, step=0)
    # A mixture row far from summing to 1.
    bad = mix_text[:3] + [mix_text[3].replace("0.679", "0.179")] + mix_text[4:]
    path = _write(tmp_path, "m.csv", "\n".join(bad))
    with pytest.raises(BimixInputError, match=r"m\.csv: line 4: run '3': proportions sum to"):
        load_regmix(path, REGMIX_LOSS, step=1)
    # A loss that is not a number.
    cells = loss_text[2].split(",")
    cells[3] = "nan"
    path = _write(tmp_path, "l.csv", "\n".join([*loss_text[:2], ",".join(cells), *loss_text[3:]]))
    with pytest.raises(BimixInputError, match=r"l\.csv: line 3: .*must be a positive number"):
        load_regmix(REGMIX_MIX, path, step=1)
    # A run with no loss row, and a loss row with no run.
    path = _write(tmp_path, "l2.csv", "\n".join(loss_text[:-1]))
    with pytest.raises(BimixInputError, match=r"m.*: line 7: run '6' has no row"):
        load_regmix(REGMIX_MIX, path, step=1)
    path = _write(tmp_path, "m2.csv", "\n".join(mix_text[:-1]))
    with pytest.raises(BimixInputError, match=r"line 7: run '6' has no mixture"):
        load_regmix(path, REGMIX_LOSS, step=1)
    # Unexpected columns.
    path = _write(tmp_path, "m3.csv", "\n".join([mix_text[0] + ",junk", *mix_text[1:]]))
    with pytest.raises(BimixInputError, match="line 1: unexpected column 'junk'"):
        load_regmix(path, REGMIX_LOSS, step=1)


def test_mixinglaws_parses_paths_steps_and_domains():
    obs = load_mixinglaws(ML)
    assert obs.domains == ["Github", "Books3", "Pile-CC"]  # validation spelling wins over PileCC
    assert obs.runs == ["70M_1-0.25-0.125-0.625", "70M_2-0.5-0.5-0.0", "70M_3-0.0-0.25-0.75"]
    assert obs.steps == [1000, 2000, 4000, 8000]  # "last" dropped by default
    assert len(obs) == 3 * 3 * 4  # the repeated line and the trailing-slash spelling read once
    mix = obs.mixtures()
    assert mix.loc["70M_2-0.5-0.5-0.0", "Pile-CC"] == 0.0
    assert mix.loc["70M_1-0.25-0.125-0.625"].tolist() == [0.25, 0.125, 0.625]
    first = ML.read_text().splitlines()[0].split("\t")
    row = obs.frame[(obs.frame["run"] == "70M_1-0.25-0.125-0.625") & (obs.frame["domain"] ==
                                                                       "Github")].iloc[0]
    assert row["step"] == 1000 and row["loss"] == pytest.approx(float(first[2]))

    with_last = load_mixinglaws(ML, last_step=9000)
    assert with_last.steps == [1000, 2000, 4000, 8000, 9000]
    # Explicit names and a mapping for a validation name that does not match by spelling.
    named = load_mixinglaws(ML, domains=["code", "books", "web"],
                            validation={"Github": "code", "Books3": "books", "Pile-CC": "web"})
    assert named.domains == ["Github", "Books3", "Pile-CC"]


def test_mixinglaws_unmatched_validation_domains(tmp_path):
    text = ML.read_text().replace("valid.Books3.bin", "valid.ArXiv.bin")
    path = _write(tmp_path, "x.txt", text)
    with pytest.raises(BimixInputError, match="ArXiv match no training domain"):
        load_mixinglaws(path)
    obs = load_mixinglaws(path, unmatched="drop")
    assert obs.evaluated_domains == ["Github", "Pile-CC"]
    assert "Books3" in obs.domains  # still a training domain, now proportion-only


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/c/G-B-P//70M_1-0.5-0.5-0.0/100\t/v/pythia-pile.valid.G.bin", "expected 3 fields"),
        ("/c/G-B-P//70M_1-0.5-0.5-0.0/100\t/v/pythia-pile.valid.G.bin\t-1", "loss must be"),
        ("/c/G-B-P//70M_1-0.5-0.5-0.0/soon\t/v/pythia-pile.valid.G.bin\t2.0", "step 'soon'"),
        ("/c/G-B-P//70M_1-0.5-0.4-0.0/100\t/v/pythia-pile.valid.G.bin\t2.0", "sum to 0.9"),
        ("/c/model_configs//pythia_70m/100\t/v/pythia-pile.valid.G.bin\t2.0", "skip_non_mixture"),
    ],
)
def test_mixinglaws_malformed_lines(tmp_path, line, message):
    good = "/c/G-B-P//70M_2-0.5-0.5-0.0/100\t/v/pythia-pile.valid.G.bin\t2.5"
    path = _write(tmp_path, "bad.txt", f"{good}\n{line}\n")
    with pytest.raises(BimixInputError, match=rf"bad\.txt: line 2: .*{message}"):
        load_mixinglaws(path)


def test_mixinglaws_file_level_errors(tmp_path):
    base = "/c/{g}//70M_{i}-0.5-0.5/{s}\t/v/pythia-pile.valid.{v}.bin\t{x}\n"
    conflict = base.format(g="A-B", i=1, s=100, v="A", x=2.0) + base.format(g="A-B", i=1, s=100,
                                                                             v="A", x=2.5)
    with pytest.raises(BimixInputError, match="line 2: .*loss 2.5 here but 2.0 at line 1"):
        load_mixinglaws(_write(tmp_path, "c.txt", conflict))
    unnamed = base.format(g="Pile100B", i=1, s=100, v="A", x=2.0)
    with pytest.raises(BimixInputError, match="pass domains="):
        load_mixinglaws(_write(tmp_path, "u.txt", unnamed))
    with pytest.raises(BimixInputError, match="domains lists 3 names"):
        load_mixinglaws(_write(tmp_path, "u2.txt", unnamed), domains=["A", "B", "C"])
    skipped = "/c/model_configs//pythia_70m/100\t/v/pythia-pile.valid.A.bin\t2.0\n" + unnamed
    obs = load_mixinglaws(_write(tmp_path, "s.txt", skipped), domains=["A", "B"],
                          skip_non_mixture=True)
    assert obs.runs == ["70M_1-0.5-0.5"]
    with pytest.raises(BimixInputError, match="file not found"):
        load_mixinglaws(tmp_path / "missing.txt")
    with pytest.raises(BimixInputError, match="no loss lines"):
        load_mixinglaws(_write(tmp_path, "e.txt", "\n"))


def test_olmix_tasks_are_targets_with_proportion_zero():
    tasks = ["lambada", "hellaswag:rc::olmes"]
    obs = load_olmix(OLMIX_RATIOS, OLMIX_METRICS, step=7, tasks=tasks)
    raw_r, raw_m = pd.read_csv(OLMIX_RATIOS), pd.read_csv(OLMIX_METRICS)
    assert obs.runs == raw_r["run"].tolist()
    assert obs.evaluated_domains == tasks and obs.steps == [7]
    mix = obs.mixtures()
    domains = [c for c in raw_r.columns if c not in ("Unnamed: 0", "run", "name", "index")]
    assert len(domains) == 24
    assert (mix[tasks] == 0).all().all()  # no run trains on a task
    np.testing.assert_allclose(mix[domains].to_numpy(), raw_r[domains].to_numpy(), atol=1e-12)
    got = obs.frame.set_index(["run", "domain"])["loss"]
    assert got[(raw_m["run"][2], "lambada")] == pytest.approx(raw_m["lambada"][2])
    # Default: every metric column.
    assert len(load_olmix(OLMIX_RATIOS, OLMIX_METRICS, step=1).evaluated_domains) == 110


def test_olmix_errors_name_file_and_line(tmp_path):
    ratios, metrics = OLMIX_RATIOS.read_text().splitlines(), OLMIX_METRICS.read_text().splitlines()
    with pytest.raises(BimixInputError, match="step must be a positive integer"):
        load_olmix(OLMIX_RATIOS, OLMIX_METRICS, step=0)
    with pytest.raises(BimixInputError, match=r"metrics\.csv: line 1: no metric column 'mmlu'"):
        load_olmix(OLMIX_RATIOS, OLMIX_METRICS, step=1, tasks=["mmlu"])
    # A weight row far from summing to 1.
    cells = ratios[3].split(",")
    cells[-1] = "0.5"
    path = _write(tmp_path, "r.csv", "\n".join([*ratios[:3], ",".join(cells), *ratios[4:]]))
    with pytest.raises(BimixInputError, match=r"r\.csv: line 4: run .*proportions sum to"):
        load_olmix(path, OLMIX_METRICS, step=1)
    # A metric that is not a number, in a kept task.
    head = metrics[0].split(",")
    cells = metrics[2].split(",")
    cells[head.index("lambada")] = "n/a"
    path = _write(tmp_path, "m.csv", "\n".join([metrics[0], metrics[1], ",".join(cells),
                                                *metrics[3:]]))
    with pytest.raises(BimixInputError, match=r"m\.csv: line 3: lambada must be a positive"):
        load_olmix(OLMIX_RATIOS, path, step=1, tasks=["lambada"])
    # A run without metrics, and a metrics row without a run.
    cases = [(OLMIX_RATIOS, _write(tmp_path, "m2.csv", "\n".join(metrics[:-1])),
              r"ratios\.csv: line 7: run .* has no row"),
             (_write(tmp_path, "r2.csv", "\n".join(ratios[:-1])), OLMIX_METRICS,
              r"metrics\.csv: line 7: run .* has no ratios")]
    for ratios_file, metrics_file, message in cases:
        with pytest.raises(BimixInputError, match=message):
            load_olmix(ratios_file, metrics_file, step=1)
    # A duplicated run, and a file without the run column.
    path = _write(tmp_path, "r3.csv", "\n".join([*ratios, ratios[-1]]))
    with pytest.raises(BimixInputError, match=r"r3\.csv: line 8: duplicate run"):
        load_olmix(path, OLMIX_METRICS, step=1)
    path = _write(tmp_path, "r4.csv", "\n".join([ratios[0].replace(",run,", ",id,"),
                                                 *ratios[1:]]))
    with pytest.raises(BimixInputError, match=r"r4\.csv: line 1: missing column 'run'"):
        load_olmix(path, OLMIX_METRICS, step=1)
