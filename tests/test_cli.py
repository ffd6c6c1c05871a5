"""The ``bimix`` CLI: validate, fit and predict, including their error paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult

from bimix_bayes.posterior import Posterior

EXAMPLE = Path(__file__).resolve().parent.parent / "bimix_bayes" / "data" / "example"
OBS, MIX = EXAMPLE / "observations.csv", EXAMPLE / "mixtures.csv"


def only_files(folder: Path) -> set[str]:
    """Every name in ``folder`` (temporary files of atomic writes included)."""
    return {p.name for p in folder.iterdir()}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "fit.nc"
    main_status = subprocess.run(
        [sys.executable, "-m", "bimix_bayes.cli", "fit", str(OBS), "--method", "leastsq",
         "--out", str(path)], capture_output=True, text=True, check=False)
    assert main_status.returncode == 0, main_status.stderr
    return path


def test_validate_ok_and_error(tmp_path, cli):
    done = cli("validate", OBS)
    assert done.code == 0 and "12 runs, 4 domains" in done.out
    bad = tmp_path / "bad.csv"
    lines = OBS.read_text().splitlines()
    bad.write_text("\n".join([*lines[:5], lines[5].rsplit(",", 1)[0] + ",-2", *lines[6:]]))
    cli("validate", bad).assert_user_error(str(bad), "line 6", "loss must be a positive")


def test_fit_prints_the_papers_coefficients_and_explains_s_ref(tmp_path, cli):
    done = cli("fit", OBS, "--method", "leastsq", "--out", tmp_path / "fit.nc")
    assert done.code == 0, done.err
    assert "The paper's coefficients, L = A / r^alpha * (B / s^beta + C), C = 1" in done.out
    header = next(line for line in done.out.splitlines() if line.split()[:1] == ["A"])
    assert header.split() == ["A", "alpha", "B", "beta"]
    assert "is the reference step: the geometric mean of the evaluated steps" in done.out


def test_fit_leastsq_writes_a_loadable_posterior(fitted):
    post = Posterior.load(fitted)
    assert post.method == "leastsq" and post.domains == ["web", "code", "books", "math"]
    assert len(post.observations) == len(pd.read_csv(OBS))


def test_fit_errors_leave_nothing_behind(tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    bad = tmp_path / "bad.csv"
    bad.write_text("run,domain,proportion,step,loss\na,web,0.5,10,2.0\n")
    cli("fit", bad, "--method", "leastsq", "--out", out / "f.nc").assert_user_error(
        "proportions sum to 0.5")
    cli("fit", OBS, "--method", "leastsq", "--law", "transfer",
        "--out", out / "f.nc").assert_user_error("bimix law only")
    cli("fit", OBS, "--method", "magic", "--out", out / "f.nc").assert_user_error(
        "Invalid value for '--method': 'magic' is not one of 'bayes', 'leastsq'",
        "see bimix fit --help")
    cli("fit", OBS, "--method", "leastsq").assert_user_error("Missing option '--out'")
    cli("fit", tmp_path / "none.csv", "--out", out / "f.nc").assert_user_error("file not found")
    cli("fit", OBS, "--target-accept", "1.5", "--no-progress", "--out",
        out / "f.nc").assert_user_error("target_accept must be in (0, 1)")
    assert only_files(out) == set()


def test_predict_writes_the_prediction_table(fitted, tmp_path, cli):
    pred_path = tmp_path / "pred.csv"
    done = cli("predict", fitted, "--mixtures", MIX, "--steps", "5000,20000", "--prob", "0.8",
               "--out", pred_path)
    assert done.code == 0, done.err
    # The file says its units on a leading comment line that pandas skips with comment="#".
    assert pred_path.read_text().startswith("# units: mean, median, lower and upper in nats per token")
    pred = pd.read_csv(pred_path, comment="#")
    assert list(pred.columns) == ["mixture", "domain", "step", "mean", "median", "lower", "upper",
                                  "prob", "band"]
    assert len(pred) == 4 * 4 * 2 and (pred["prob"] == 0.8).all()
    assert (pred["band"] == "new-run").all()  # the default: what a new training run reports
    # More training lowers the loss; leaving code out raises code's loss.
    wide = pred.pivot_table(index=["mixture", "domain"], columns="step", values="mean")
    assert (wide[20000] < wide[5000]).all()
    code_loss = pred[(pred["domain"] == "code") & (pred["step"] == 20000)].set_index("mixture")
    assert code_loss.loc["no-code", "mean"] > code_loss.loc["code-heavy", "mean"]


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"--steps": "1000,abc"}, ["--steps takes comma-separated positive integers"]),
        ({"--steps": "0"}, ["--steps"]),
        ({"--prob": "1.5"}, ["prob must be in (0, 1)"]),
        ({"--mixtures": "BAD_MIX"}, ["unknown domain column(s) law", "line 1"]),
        ({"POSTERIOR": "MISSING"}, ["file not found"]),
        ({"POSTERIOR": "NOT_NC"}, ["not a readable netCDF posterior file"]),
    ],
)
def test_predict_errors_leave_nothing_behind(fitted, tmp_path, cli, change, needles):
    bad_mix = tmp_path / "bad_mix.csv"
    bad_mix.write_text("mixture,web,code,books,math,law\nm,0.25,0.25,0.25,0.25,0\n")
    not_nc = tmp_path / "not.nc"
    not_nc.write_text("hello")
    out = tmp_path / "out"
    out.mkdir()
    paths = {"BAD_MIX": str(bad_mix), "MISSING": str(tmp_path / "none.nc"), "NOT_NC": str(not_nc)}
    args = {"POSTERIOR": str(fitted), "--mixtures": str(MIX), "--steps": "1000", "--prob": "0.9"}
    args.update({k: paths.get(v, v) for k, v in change.items()})
    argv = ["predict", args.pop("POSTERIOR"), *[x for kv in args.items() for x in kv],
            "--out", str(out / "pred.csv")]
    cli(*argv).assert_user_error(*needles)
    assert only_files(out) == set()


def test_predict_warns_when_it_extrapolates_far_beyond_the_observed_steps(fitted, tmp_path, cli):
    last = max(Posterior.load(fitted).observations.steps)
    near = cli("predict", fitted, "--mixtures", MIX, "--steps", str(2 * last), "--out",
               tmp_path / "near.csv")
    assert near.code == 0 and "warning" not in near.err
    far = cli("predict", fitted, "--mixtures", MIX, "--steps", f"1000,{10 * last}", "--out",
              tmp_path / "far.csv")
    assert far.code == 0, far.err
    assert f"warning: step {10 * last} is 10x the last observed step ({last})" in far.err
    assert "more than 3x beyond the observed steps" in far.err


def test_optimize_says_in_words_whether_the_gain_is_confident(fitted, tmp_path, cli):
    import json

    done = cli("optimize", fitted, "--step", "20000", "--out", tmp_path / "plan.csv")
    assert done.code == 0, done.err
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["units"] == "nats per token"
    assert plan["verdict"] in done.out
    confident = plan["prob_improvement"] >= 0.5 and plan["gain_lower"] > 0
    assert plan["confident"] is confident
    assert ("no confident improvement over the reference" in done.out) is not confident


def test_fixed_choices_match_the_api():
    import typing

    from bimix_bayes import cli, entropy, laws, noise, optimizer, planner, spec

    assert typing.get_args(cli.Law) == ("auto", *laws.names())
    assert typing.get_args(cli.Noise) == tuple(noise.names())
    assert typing.get_args(cli.Sampler) == spec.METHODS
    assert typing.get_args(cli.Objective) == optimizer.OBJECTIVES
    assert typing.get_args(cli.Rule) == planner.RULES
    assert cli.ENTROPY_KINDS == entropy.KINDS


@pytest.mark.parametrize(("command", "shown"), [
    (["fit"], "<bayes|leastsq>"), (["optimize"], "<expected-gain|prob-improvement|quantile>"),
    (["suggest"], "<thompson|info>"), (["corpus", "build"], "<byte|bpe>"),
])
def test_help_lists_the_choices_instead_of_str(cli, command, shown, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    done = cli(*command, "--help")
    assert done.code == 0, done.err
    assert shown in done.out


def test_every_command_has_an_example_in_its_help(cli):
    for command in ("validate", "fit", "predict"):
        done = cli(command, "--help")
        assert done.code == 0 and "Example: bimix " + command in done.out


def test_installed_script_reports_one_line_without_traceback(tmp_path):
    script = Path(sys.executable).parent / "bimix"
    if not script.exists():
        pytest.skip("the bimix script is not installed in this environment")
    res = subprocess.run([str(script), "predict", str(tmp_path / "none.nc"), "--mixtures",
                          str(MIX), "--steps", "10", "--out", str(tmp_path / "p.csv")],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2
    CliResult(res.returncode, res.stdout, res.stderr).assert_user_error("none.nc", "file not found")
    assert not (tmp_path / "p.csv").exists()


def test_version_prints_the_package_version(cli):
    from bimix_bayes import __version__

    done = cli("--version")
    assert done.code == 0 and done.out == f"bimix {__version__}\n"
