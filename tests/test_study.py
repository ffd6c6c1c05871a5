"""The closed loop (bimix loop) and the demo: resumable rounds of suggest, train and refit."""

import json
import re

import pandas as pd
import pytest

from bimix_bayes.corpus import Corpus, build_embedded_corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import narrow_shares, read_mixtures
from bimix_bayes.model import BayesianBiMix
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import Posterior
from bimix_bayes.study import Study, demo_design, first_design

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
FAST_FIT = {"law": "bimix", "method": "advi", "draws": 100, "tune": 50, "chains": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    return Corpus.open(build_embedded_corpus(tmp_path_factory.mktemp("c") / "corpus"))


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "micro.toml"
    path.write_text(MICRO)
    return path


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A second rung of a size ladder: micro at twice the width."""
    path = tmp_path_factory.mktemp("p") / "micro-wide.toml"
    path.write_text(MICRO.replace('"micro"', '"micro-wide"').replace("n_embd = 16", "n_embd = 32"))
    return path


def _study(directory, corpus, preset) -> Study:
    return Study(directory, corpus, preset, steps=6, batch=2, fit=FAST_FIT, progress=False,
                 device="cpu", threads=1)


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


@pytest.mark.slow
def test_loop_starts_from_existing_observations_without_retraining(tmp_path, corpus, preset,
                                                                   cli):
    from bimix_bayes.trainer import Preset, train

    design = first_design(corpus, n=3, seed=1)
    obs_csv = tmp_path / "obs.csv"
    train(corpus, design, Preset.load(preset), obs_csv, steps=6, progress=False, device="cpu")
    before = Observations.read_csv(obs_csv)

    base = ["loop", "--corpus", corpus.path, "--model", preset, "--steps", "6", "--batch", "2",
            "--out", tmp_path / "study"]
    cli(*base, "--observations", obs_csv, "--initial", tmp_path / "x.csv").assert_user_error(
        "not both")
    study = _study(tmp_path / "study", corpus, preset)
    fit0 = BayesianBiMix(**FAST_FIT).fit(before).posterior_
    fit0.save(tmp_path / "fit.nc")
    other = Observations.from_frame(before.frame.assign(loss=before.frame["loss"] * 1.01))
    with pytest.raises(BimixInputError, match="posterior was not fitted on"):
        study.start_from(other, Posterior.load(tmp_path / "fit.nc"))
    study.start_from(before, Posterior.load(tmp_path / "fit.nc"))
    assert (study.round_dir(0) / "posterior.nc").is_file()  # round 0 is the given fit
    post = study.run(rounds=1)
    assert study.imported(0) and not study.imported(1) and study.rounds_done() == 2
    after = study.observations()
    # Round 0's rows are the given ones, untouched; round 1 trained only the planner's batch.
    pd.testing.assert_frame_equal(after.frame.iloc[:len(before)], before.frame)
    assert after.runs == [*before.runs, "r1-1-seed0", "r1-2-seed0"]
    assert post.observations.runs == after.runs
    round0 = pd.read_csv(study.round_dir(0) / "mixtures.csv", index_col="mixture")
    assert list(round0.index) == before.runs
    study.start_from(before)  # a rerun of the same command: kept as it is
    with pytest.raises(BimixInputError, match="started from"):
        study.start_from(Observations.from_frame(before.frame, source="other.csv"))
    fresh = _study(tmp_path / "other", corpus, preset)
    with pytest.raises(BimixInputError, match="not the corpus's"):
        fresh.start_from(Observations.from_frame(
            before.frame.assign(domain=before.frame["domain"].replace({"code": "python"}))))
    assert not (tmp_path / "other").exists()


def test_first_design_honours_n(corpus):
    assert list(first_design(corpus, n=2).index) == ["entropy-shannon", "entropy-conditional"]
    six = first_design(corpus, n=6, seed=3)
    assert len(six) == 6 and list(six.index[-2:]) == ["dirichlet-1", "dirichlet-2"]
    pd.testing.assert_frame_equal(demo_design(corpus, n_random=2, seed=3), six)
    with pytest.raises(BimixInputError, match="n >= 1"):
        first_design(corpus, n=0)


def test_demo_design_spreads_every_domain(corpus):
    design = demo_design(corpus, n_random=4, seed=0)
    assert list(design.columns) == corpus.domains
    assert len(design) == 8
    assert (design.sum(axis=1) - 1).abs().max() < 1e-9
    # The Dirichlet rows give every domain a range of shares, not only the centre of the simplex:
    # wide enough for the design check of bimix suggest and fit, which the entropy rows fail.
    assert (design.max() - design.min()).min() > 0.1
    assert narrow_shares(design) is None
    assert narrow_shares(design.head(4)).startswith("this design is too close to uniform")


def test_cold_start_suggest_warns_when_the_design_is_near_uniform(corpus, tmp_path, cli):
    entropy_only = cli("suggest", "--corpus", corpus.path, "--n", "4", "--out", tmp_path / "a.csv")
    assert entropy_only.code == 0, entropy_only.err
    (line,) = entropy_only.err.splitlines()
    assert line.startswith("warning: this first design is too close to uniform to identify the law")
    assert "less than 3x" in line and line.endswith("--n 8: seeded Dirichlet ones after the "
                                                    "entropy mixtures spread the shares)")
    spread = cli("suggest", "--corpus", corpus.path, "--n", "8", "--out", tmp_path / "b.csv")
    assert spread.code == 0 and spread.err == "", spread.err


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
    plan = read_mixtures(tmp_path / "demo" / "optimum.csv")  # a mixture file train can read
    assert list(plan.index) == ["optimum"] and abs(plan.loc["optimum"].sum() - 1) < 1e-9

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
    ({"threads": 0}, "threads must be a positive integer"),
    ({"budget": 1e12}, "need presets of several sizes"),
    ({"preset": "ladder", "rule": "thompson"}, "only the info rule does"),
    ({"preset": "ladder", "params": -1.0}, "params must be a positive number"),
    ({"preset": ["tiny", "tiny"]}, "have the same model size"),
])
def test_study_settings_are_checked_before_any_work(tmp_path, corpus, preset, wide, change,
                                                    match):
    if change.get("preset") == "ladder":
        change = {**change, "preset": [preset, wide]}
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
    cli(*base, "--budget", "1e12").assert_user_error("need presets of several sizes")
    cli(*base[:4], f"{preset},{preset}", *base[5:]).assert_user_error("have the same model size")
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


@pytest.mark.slow
def test_loop_across_sizes_trains_the_design_at_every_size_then_plans_size_and_mixture(
        tmp_path, corpus, preset, wide):
    study = Study(tmp_path / "study", corpus, [wide, preset], steps=6, batch=2, fit=FAST_FIT,
                  progress=False, device="cpu", threads=1)
    design = demo_design(corpus, n_random=1, seed=0).head(3)
    post = study.run(rounds=1, design=design)

    small, large = (p.model.n_params for p in study.presets_)
    assert study.target_params == large
    sizes = post.observations.sizes
    # Round 0: each mixture at each size, under names that say which.
    for name in design.index:
        assert sizes[f"{name}@micro-seed0"] == small
        assert sizes[f"{name}@micro-wide-seed0"] == large
    assert post.has_size_axis
    planned = pd.read_csv(study.round_dir(1) / "mixtures.csv", index_col="mixture", comment="#")
    assert set(planned["params"]) <= {small, large} and set(planned["rule"]) == {"info"}
    assert {sizes[f"{m}-seed0"] for m in planned.index} == set(planned["params"])


def test_a_study_across_sizes_starts_only_from_sized_observations(tmp_path, corpus, preset,
                                                                   wide):
    rows = [{"run": "a", "domain": d, "proportion": 1 / len(corpus.domains), "step": 6,
             "loss": 3.0} for d in corpus.domains]
    study = Study(tmp_path / "study", corpus, [preset, wide], steps=6, batch=2, fit=FAST_FIT)
    with pytest.raises(BimixInputError, match="needs each run's size"):
        study.start_from(Observations.from_frame(pd.DataFrame(rows), source="imported.csv"))
    assert not study.observations_path.exists()


@pytest.mark.parametrize("sized", [True, False])
def test_start_from_keeps_the_size_column_only_when_given(tmp_path, corpus, preset, sized):
    from bimix_bayes.trainer.obslog import COLUMNS, LEGACY_COLUMNS

    rows = [{"run": run, "domain": d, "proportion": 1 / len(corpus.domains), "step": 6,
             "loss": 3.0 + 0.1 * i} for i, run in enumerate(["a", "b"]) for d in corpus.domains]
    frame = pd.DataFrame(rows).assign(**({"params": 2e6} if sized else {}))
    study = _study(tmp_path / "study", corpus, preset)
    study.start_from(Observations.from_frame(frame, source="imported.csv"))
    header = study.observations_path.read_text().splitlines()[0].split(",")
    # The trainer continues the file with its columns: rounds trained on add rows of that shape.
    assert tuple(header) == (COLUMNS if sized else LEGACY_COLUMNS)
    assert study.observations().distinct_sizes == ([2e6] if sized else [])
