"""The closed loop (bimix loop) and the demo: resumable rounds of suggest, train and refit."""

import json
import re

import pandas as pd
import pytest

from bimix_bayes.corpus import Corpus, build_embedded_corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.study import Study, demo_design

MICRO = """
name = "micro"
[model]
n_layer = 1
n_head = 2
n_embd = 16
block_size = 16
[train]
batch_size = 8
micro_batch_size = 8
lr = 1e-2
min_lr = 1e-3
eval_sequences = 4
"""
# ADVI keeps the loop test to seconds; NUTS is exercised by the model tests and the demo test.
FAST_FIT = {"method": "advi", "draws": 100, "tune": 50, "chains": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    return Corpus.open(build_embedded_corpus(tmp_path_factory.mktemp("c") / "corpus"))


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "micro.toml"
    path.write_text(MICRO)
    return path


def _study(directory, corpus, preset) -> Study:
    return Study(directory, corpus, preset, steps=6, batch=2, fit=FAST_FIT, progress=False,
                 device="cpu")


@pytest.mark.slow
def test_loop_runs_rounds_and_resumes_without_duplicates(tmp_path, corpus, preset):
    study = _study(tmp_path / "study", corpus, preset)
    design = demo_design(corpus, n_random=2, seed=0)
    post = study.run(rounds=1, design=design)

    assert study.rounds_done() == 2
    obs = study.observations()
    # round 0: the design; round 1: the planner's batch, under round-prefixed names.
    assert len(obs.runs) == len(design) + 2
    assert {r for r in obs.runs if r.startswith("r1-")} == {"r1-1-seed0", "r1-2-seed0"}
    assert post.observations.runs == obs.runs
    suggested = pd.read_csv(study.round_dir(1) / "mixtures.csv", index_col="mixture")
    assert {"score", "expected_loss", "loss_sd", "rule"} <= set(suggested.columns)

    # A crash after round 1's training but before its fit: rerunning refits and adds no rows.
    rows = len(obs)
    (study.round_dir(1) / "posterior.nc").unlink()
    again = _study(tmp_path / "study", corpus, preset).run(rounds=1)
    assert len(again.observations) == rows
    assert not study.observations().frame.duplicated(["run", "domain", "step"]).any()


def test_demo_design_spreads_every_domain(corpus):
    design = demo_design(corpus, n_random=4, seed=0)
    assert list(design.columns) == corpus.domains
    assert len(design) == 8
    assert (design.sum(axis=1) - 1).abs().max() < 1e-9
    # The Dirichlet rows give every domain a range of shares, not only the centre of the simplex.
    assert (design.max() - design.min()).min() > 0.1


@pytest.mark.slow
def test_cli_demo_end_to_end_and_rerun_resumes(tmp_path, cli):
    """The README's main command, shortened: every stage, every file, and a rerun that reuses them."""
    args = ("demo", "--out", tmp_path / "demo", "--steps", "6", "--batch", "2", "--draws", "60")
    first = cli(*args)
    assert first.code == 0, first.err
    for name in ("report.html", "optimum.csv", "optimum.json", "next.csv", "loss_curves.png",
                 "predicted_vs_observed.png", "residuals.png", "coefficients.png",
                 "optimum_vs_reference.png"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "[5/5]" in first.err and "method nuts" in first.err
    for section in ("Predicted loss at step 6", "Optimised mixture", "P(improvement)",
                    "Next mixtures to train", "next-2"):
        assert section in first.out, section
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "P(improvement)" in report and "Next 2 mixtures" in report
    assert report.count("data:image/png;base64,") == 5
    plan = json.loads((tmp_path / "demo" / "optimum.json").read_text())
    assert plan["verdict"] in first.out and plan["verdict"] in report
    # The demo's remedies are its own options: it has no --tune, --chains or --noise.
    assert not re.search(r"--(tune|chains|noise)\b", first.err)
    plan = pd.read_csv(tmp_path / "demo" / "optimum.csv").set_index("mixture")
    assert abs(plan.loc["optimum"].sum() - 1) < 1e-9

    again = cli(*args)  # finished runs and the fit are reused: the same answer, no training
    assert again.code == 0, again.err
    assert again.out == first.out
    assert "[2/5] training" in again.err and "[1/5]" not in again.err


@pytest.mark.parametrize(("change", "match"), [
    ({"rule": "greedy"}, "unknown rule 'greedy'"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"batch": 2.5}, "batch must be a positive integer"),
    ({"fit": {"draw": 10}}, "unknown fit option"),
    ({"preset": "nowhere.toml"}, "nowhere.toml"),
])
def test_study_settings_are_checked_before_any_work(tmp_path, corpus, preset, change, match):
    settings = {"steps": 6, "batch": 2, "preset": preset, **change}
    with pytest.raises(BimixInputError, match=match):
        Study(tmp_path / "study", corpus, **settings)
    assert not (tmp_path / "study").exists()


def test_cli_loop_bad_input_is_one_line_and_writes_nothing(tmp_path, corpus, preset, cli):
    base = ["loop", "--corpus", corpus.path, "--model", preset, "--steps", "6",
            "--out", tmp_path / "study"]
    cli(*base, "--rule", "greedy").assert_user_error(
        "Invalid value for '--rule': 'greedy' is not one of 'thompson', 'info'")
    cli(*base, "--rounds", "1", "--batch", "0").assert_user_error("batch must be a positive")
    cli("loop", "--corpus", tmp_path / "nowhere", *base[3:]).assert_user_error(
        "corpus directory not found")
    assert not (tmp_path / "study").exists()


@pytest.mark.slow
def test_cli_loop_writes_its_report_and_spells_remedies_as_its_options(tmp_path, corpus, preset,
                                                                      cli):
    design = tmp_path / "design.csv"
    demo_design(corpus, n_random=1, seed=0).head(3).rename_axis("mixture").to_csv(design)
    done = cli("loop", "--corpus", corpus.path, "--model", preset, "--steps", "6", "--out",
               tmp_path / "study", "--rounds", "0", "--draws", "40", "--device", "cpu",
               "--initial", design)
    assert done.code == 0, done.err
    report = (tmp_path / "study" / "report.html").read_text()
    assert "P(improvement)" in report and "Diagnostics" in report
    assert f"report: {tmp_path / 'study' / 'report.html'}" in done.out
    assert "method nuts" in done.err
    assert not re.search(r"--(tune|chains)\b", done.err + report)
