"""The standing adversarial suite: what a hostile or careless user does to the CLI (issue 13).

Every user error must give one ``error: `` line on stderr naming the file (and the row where there
is one), exit status 2, no traceback, no output file, and no input changed. The classes:

1. an output that names an input; 2. outputs that collide; 3. two trainers on one ``--out``;
4. corrupt corpus shards; 5. numbers the data do not support; 7. unusable output paths;
8. options that crashed; 9. usage errors; 10. options checked after side effects; 11. accepted
nonsense; 12. Ctrl-C and a kill before the checkpoint's removal. Class 6 (tampered posterior
files) is in ``test_adversarial_posterior.py``. Property-based cases (hypothesis) generate
malformed observation and mixture files and bad option values; the rest are deterministic.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from adversarial_cases import (
    BAD_OPTIONS,
    MIX,
    OBS,
    ROOT,
    bad_option,
    malformed_mixtures,
    malformed_observations,
    write_bad_files,
)
from conftest import CliResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bimix_bayes._io import atomic_path, check_outputs
from bimix_bayes.errors import BimixInputError

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
# Hypothesis: few, reproducible examples; each runs the CLI in-process.
SUITE = settings(max_examples=15, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256: what 'nothing changed' compares."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the example observations, mixtures and a least-squares fit of them."""
    from bimix_bayes.leastsq import LeastSquaresFit
    from bimix_bayes.observations import Observations

    folder = tmp_path_factory.mktemp("work")
    shutil.copy(OBS, folder / "obs.csv")
    shutil.copy(MIX, folder / "mix.csv")
    LeastSquaresFit().fit(Observations.read_csv(OBS)).to_posterior().save(folder / "fit.nc")
    return folder


@pytest.fixture
def ws(work: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`work` for tests that may (wrongly) change it."""
    folder = tmp_path / "ws"
    shutil.copytree(work, folder)
    return folder


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_trainer import _documents

    from bimix_bayes.corpus import build_corpus

    return Path(build_corpus(_documents(0), tmp_path_factory.mktemp("c") / "corpus"))


@pytest.fixture(scope="module")
def micro_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_trainer import MICRO

    path = tmp_path_factory.mktemp("p") / "micro.toml"
    path.write_text(MICRO)
    return path


def refused(cli: Callable[..., CliResult], folder: Path, *argv: object, needles: tuple = ()
            ) -> CliResult:
    """Run the CLI and assert the user-error invariant, with nothing under ``folder`` changed."""
    before = tree(folder)
    done = cli(*argv)
    done.assert_user_error(*needles)
    assert tree(folder) == before, "an input changed or an output was created"
    return done


# --------------------------------------------------------------- 1, 2: outputs vs inputs
@pytest.mark.parametrize(("argv", "needles"), [
    (["fit", "{ws}/obs.csv", "--method", "leastsq", "--out", "{ws}/obs.csv"],
     ("obs.csv", "--out would overwrite the input OBSERVATIONS")),
    (["predict", "{ws}/fit.nc", "--mixtures", "{ws}/mix.csv", "--steps", "100", "--out",
      "{ws}/fit.nc"], ("--out would overwrite the input POSTERIOR",)),
    (["predict", "{ws}/fit.nc", "--mixtures", "{ws}/mix.csv", "--steps", "100", "--out",
      "{ws}/./mix.csv"], ("--out would overwrite the input --mixtures",)),
    (["optimize", "{ws}/fit.nc", "--step", "1000", "--out", "{ws}/fit.nc"],
     ("would overwrite the input POSTERIOR",)),
    (["optimize", "{ws}/fit.nc", "--step", "1000", "--out", "{ws}/plan.json"],
     ("plan.json", "--out and the gain summary", "name the same file")),
])
def test_outputs_never_overwrite_inputs_or_each_other(cli, ws, argv, needles):
    argv = [a.format(ws=ws) for a in argv]
    refused(cli, ws, *argv, needles=needles)


def test_entropy_outputs_inside_the_corpus_or_colliding_are_refused(cli, corpus_dir, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    refused(cli, tmp_path, "entropy", corpus, "--out", corpus / "manifest.json",
            needles=("--out lies inside the input CORPUS",))
    refused(cli, tmp_path, "entropy", corpus, "--out", tmp_path / "e.csv", "--mixture-out",
            tmp_path / "e.csv", needles=("--out and --mixture-out name the same file",))


def test_links_to_an_input_are_the_input(ws, tmp_path):
    (tmp_path / "alias.csv").symlink_to(ws / "obs.csv")
    os.link(ws / "obs.csv", tmp_path / "hard.csv")
    for out in ("alias.csv", "hard.csv"):
        with pytest.raises(BimixInputError, match="would overwrite the input OBS"):
            check_outputs(files={"--out": tmp_path / out}, inputs={"OBS": ws / "obs.csv"})


def test_a_study_folder_inside_the_corpus_is_refused_one_around_it_is_not(tmp_path):
    (tmp_path / "corpus").mkdir()
    with pytest.raises(BimixInputError, match="--out lies inside the input --corpus"):
        check_outputs(dirs={"--out": tmp_path / "corpus" / "study"},
                      inputs={"--corpus": tmp_path / "corpus"})
    # `bimix loop --corpus demo-out/corpus --out demo-out` continues the demo's study.
    check_outputs(dirs={"--out": tmp_path}, inputs={"--corpus": tmp_path / "corpus"})


# ----------------------------------------------------------------- 7: unusable output paths
@pytest.mark.parametrize("where", ["dir", "under-file"])
def test_unusable_output_paths_are_one_line(cli, ws, where):
    (ws / "adir").mkdir()
    out = ws / "adir" if where == "dir" else ws / "obs.csv" / "pred.csv"
    needle = "is a directory" if where == "dir" else "which is a file, not a directory"
    refused(cli, ws, "predict", ws / "fit.nc", "--mixtures", ws / "mix.csv", "--steps", "100",
            "--out", out, needles=(needle,))


@pytest.mark.parametrize("command", ["train", "loop", "demo"])
def test_unusable_output_paths_of_the_trainer_commands(cli, ws, corpus_dir, micro_path, command):
    blocked = ws / "obs.csv" / "sub"
    argv = {"train": ["train", "--mixtures", ws / "mix.csv", "--model", micro_path, "--steps",
                      "4", "--corpus", corpus_dir, "--out", blocked / "o.csv"],
            "loop": ["loop", "--corpus", corpus_dir, "--model", micro_path, "--steps", "4",
                     "--out", blocked],
            "demo": ["demo", "--out", blocked]}[command]
    refused(cli, ws, *argv, needles=("which is a file, not a directory",))


def test_atomic_writer_reports_an_unusable_path_as_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    for target, needle in [(tmp_path / "file" / "out.csv", "cannot write here"),
                           (tmp_path, "is a directory")]:
        with pytest.raises(BimixInputError, match=needle), atomic_path(target) as tmp:
            tmp.write_text("never")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------------ 3: two trainers
def _trainer_args(corpus_dir: Path, micro_path: Path, mix: Path, out: Path, steps: int
                  ) -> list[str]:
    return ["train", "--mixtures", str(mix), "--model", str(micro_path), "--steps", str(steps),
            "--corpus", str(corpus_dir), "--out", str(out), "--eval-steps",
            f"{steps // 2},{steps}", "--device", "cpu", "--no-progress"]


@pytest.fixture
def one_mix(tmp_path: Path) -> Path:
    path = tmp_path / "one.csv"
    path.write_text("mixture,prose,digits,code\na,0.5,0.3,0.2\n")
    return path


def _fingerprint(corpus_dir: Path, micro_path: Path, mix: Path, steps: int) -> str:
    from bimix_bayes.corpus import Corpus
    from bimix_bayes.mixtures import read_mixtures
    from bimix_bayes.trainer import Preset
    from bimix_bayes.trainer.loop import _fingerprint as fingerprint
    from bimix_bayes.trainer.loop import _Job

    corpus = Corpus.open(corpus_dir)
    row = read_mixtures(mix, domains=corpus.domains).iloc[0]
    return fingerprint(_Job("a-seed0", "a", tuple(row.tolist()), 0), Preset.load(micro_path),
                       steps, corpus)


def test_second_trainer_with_other_settings_is_refused_at_once(cli, corpus_dir, micro_path,
                                                               one_mix, tmp_path):
    from bimix_bayes.trainer.obslog import RunClaims

    out = tmp_path / "obs.csv"
    holder = RunClaims(tmp_path / "obs.csv.ckpt")  # the first trainer, 40 steps, still running
    holder.claim("a-seed0", _fingerprint(corpus_dir, micro_path, one_mix, 40))
    try:
        done = cli(*_trainer_args(corpus_dir, micro_path, one_mix, out, 20))
        done.assert_user_error("a-seed0.lock", "being trained right now by another process with "
                               "other settings")
        assert not out.exists()
        assert sorted(p.name for p in (tmp_path / "obs.csv.ckpt").iterdir()) == ["a-seed0.lock"]
    finally:
        holder.release_all()


def test_second_trainer_with_the_same_settings_waits_then_skips(cli, corpus_dir, micro_path,
                                                                one_mix, tmp_path):
    from bimix_bayes.cli import main
    from bimix_bayes.trainer.obslog import RunClaims

    out = tmp_path / "obs.csv"
    assert cli(*_trainer_args(corpus_dir, micro_path, one_mix, out, 8)).code == 0
    first = out.read_bytes()
    holder = RunClaims(tmp_path / "obs.csv.ckpt")
    holder.claim("a-seed0", _fingerprint(corpus_dir, micro_path, one_mix, 8))
    result: list[object] = []

    def second() -> None:
        try:
            main(_trainer_args(corpus_dir, micro_path, one_mix, out, 8))
            result.append(0)
        except SystemExit as exc:
            result.append(exc.code)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=3)
    assert thread.is_alive() and not result  # waiting for the holder, not writing
    holder.release_all()
    thread.join(timeout=120)
    assert result in ([0], [None])
    assert out.read_bytes() == first  # nothing written twice
    assert not (tmp_path / "obs.csv.ckpt").exists()


def test_rows_of_a_longer_run_are_refused(corpus_dir, micro_path, one_mix, tmp_path, cli):
    out = tmp_path / "obs.csv"
    assert cli(*_trainer_args(corpus_dir, micro_path, one_mix, out, 8)).code == 0
    before = out.read_bytes()
    # 4 steps: steps 4 (and 2) are rows of the 8-step run, which looked complete before.
    cli(*_trainer_args(corpus_dir, micro_path, one_mix, out, 4)[:-5], "--eval-steps", "4",
        "--device", "cpu", "--no-progress").assert_user_error("up to step 8, beyond --steps 4")
    assert out.read_bytes() == before


def test_clean_up_leaves_other_trainers_temporaries(cli, corpus_dir, micro_path, one_mix,
                                                    tmp_path):
    ckpt = tmp_path / "obs.csv.ckpt"
    ckpt.mkdir()
    theirs = ckpt / ".b-seed0.pt.q1w2e3.tmp"  # another trainer's checkpoint write in progress
    theirs.write_bytes(b"in progress")
    ours = ckpt / ".a-seed0.pt.x1y2z3.tmp"  # a write of our own run that a kill cut short
    ours.write_bytes(b"half")
    done = cli(*_trainer_args(corpus_dir, micro_path, one_mix, tmp_path / "obs.csv", 4))
    assert done.code == 0, done.err
    assert sorted(p.name for p in ckpt.iterdir()) == [theirs.name]


@pytest.mark.slow
def test_two_concurrent_trainers_with_other_settings_never_mix_rows(corpus_dir, micro_path,
                                                                    one_mix, tmp_path):
    from bimix_bayes.observations import Observations

    out = tmp_path / "obs.csv"
    procs = [subprocess.Popen([sys.executable, "-m", "bimix_bayes.cli",
                               *_trainer_args(corpus_dir, micro_path, one_mix, out, steps)],
                              env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for steps in (20, 40)]
    codes = [p.wait(timeout=300) for p in procs]
    errors = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 2], errors
    loser = errors[codes.index(2)]
    CliResult(2, "", loser).assert_user_error("obs.csv")
    steps = sorted(Observations.read_csv(out).steps)
    assert steps in ([10, 20], [20, 40])  # one trainer's rows only


# ------------------------------------------------------------------------- 4: corpus shards
def test_training_on_a_modified_shard_is_refused_and_leaves_nothing(corpus_dir, micro_path,
                                                                    one_mix, tmp_path, cli):
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    shard = corpus / "prose" / "train.bin"
    data = np.fromfile(shard, dtype="<u2")
    data[5] = 65000  # same size: only the checksum (and the token range) can tell
    data.tofile(shard)
    out = tmp_path / "o.csv"
    cli(*_trainer_args(corpus, micro_path, one_mix, out, 4)).assert_user_error(
        "prose/train.bin", "checksum does not match")
    assert not out.exists() and not (tmp_path / "o.csv.ckpt").exists()
    cli("entropy", corpus, "--out", tmp_path / "e.csv").assert_user_error("checksum")
    assert not (tmp_path / "e.csv").exists()


# ----------------------------------------------------------- 5: certainty that isn't there
def test_leastsq_says_which_coefficients_one_run_cannot_estimate(cli, tmp_path):
    frame = pd.read_csv(OBS)
    one = frame[frame["run"] == frame["run"].iloc[0]]
    one.to_csv(tmp_path / "one.csv", index=False)
    done = cli("fit", tmp_path / "one.csv", "--method", "leastsq", "--out", tmp_path / "f.nc")
    assert done.code == 0, done.err
    assert "warning: domain 'web': alpha is not estimable (one proportion" in done.err
    steps = frame[frame["step"] == frame["step"].max()]
    steps.to_csv(tmp_path / "final.csv", index=False)
    done = cli("fit", tmp_path / "final.csv", "--method", "leastsq", "--out", tmp_path / "g.nc")
    assert done.code == 0, done.err
    assert "u, beta are not estimable (one evaluation step)" in done.err


def test_point_fits_say_their_intervals_carry_no_uncertainty(cli, ws):
    done = cli("optimize", ws / "fit.nc", "--step", "5000", "--out", ws / "plan.csv")
    assert done.code == 0, done.err
    assert "warning: this is a point fit (leastsq, one draw): the interval and P(gain > 0)" \
        in done.err
    done = cli("suggest", ws / "fit.nc", "--n", "2", "--step", "5000", "--out", ws / "next.csv")
    assert done.code == 0, done.err
    assert "no parameter uncertainty" in done.err


def test_leastsq_reports_coefficients_on_the_solver_bounds():
    from bimix_bayes.leastsq import LeastSquaresFit
    from bimix_bayes.observations import Observations

    # The loss grows with the step: no decreasing power law fits, beta ends on its lower bound.
    rows = [{"run": f"r{i}", "domain": d, "proportion": q, "step": s,
             "loss": 3.0 * q ** -0.1 * (1 + 1e-3 * s ** 0.5)}
            for i, p in enumerate((0.2, 0.5, 0.9)) for d, q in (("web", p), ("code", 1 - p))
            for s in (10, 100, 1000, 10000)]
    fit = LeastSquaresFit().fit(Observations.from_frame(pd.DataFrame(rows)))
    assert "u,beta" == fit.coefficients_.loc["web", "at_bound"]
    assert fit.warnings()[0] == (
        "domain 'web': the fit stopped on the solver's bounds (u in [-15, 15], beta in "
        "[0.001, 5]); the data pull it outside them: the value shown is the box's edge, not an "
        "estimate")


# ------------------------------------------------------------ 8, 10, 11: options and values
# BAD_OPTIONS (in adversarial_cases.py): validate step 1e20, loss 1e300, loss,loss header;
# fit --tune 0; optimize --max-draws 0/-1, --step inf, --max-epochs 0; suggest --max-draws 0,
# --min-distance -1 and 2, --n 100000; predict --steps 100,100; plot --out fig.xyz; loop
# --rounds -1, --device foo, a preset with lr = inf; train with lr = nan; demo --steps/--draws/
# --batch 0 (nothing built).


@pytest.mark.parametrize(("argv", "needles"), BAD_OPTIONS,
                         ids=[" ".join(a[:1] + a[2:4]) + f"-{i}" for i, (a, _) in
                              enumerate(BAD_OPTIONS)])
def test_bad_options_are_refused_before_any_work(cli, ws, corpus_dir, micro_path, argv, needles):
    write_bad_files(ws)
    argv = [a.format(ws=ws, corpus=corpus_dir, micro=micro_path) for a in argv]
    refused(cli, ws, *argv, needles=needles)


def test_a_row_with_more_fields_than_the_header_names_its_line(cli, ws):
    # Found by the hypothesis suite: pandas took the first column of such a file for an index
    # and shifted every name, which ended in a KeyError traceback.
    lines = (ws / "mix.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",0.25,", ",1,5,", 1)
    (ws / "long.csv").write_text("\n".join(lines) + "\n")
    refused(cli, ws, "predict", ws / "fit.nc", "--mixtures", ws / "long.csv", "--steps", "100",
            "--out", ws / "p.csv", needles=("long.csv: line 2: the row has 6 fields, the header "
                                            "only 5",))


def test_domain_names_are_stripped_in_mixture_headers_as_in_observations(cli, ws):
    lines = (ws / "mix.csv").read_text().splitlines()
    (ws / "spaced.csv").write_text("\n".join(["mixture, web , code,books ,math"] + lines[1:]) + "\n")
    done = cli("predict", ws / "fit.nc", "--mixtures", ws / "spaced.csv", "--steps", "100",
               "--out", ws / "p.csv")
    assert done.code == 0, done.err
    assert set(pd.read_csv(ws / "p.csv", comment="#")["domain"]) == {"web", "code", "books", "math"}


# -------------------------------------------------------------------------- 9: usage errors
@pytest.mark.parametrize(("argv", "needle"), [
    (["fit", "x.csv", "--out", "f.nc", "--draws", "abc"], "bimix fit: Invalid value for '--draws'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["predict"], "bimix predict: Missing argument"),
    (["fit", "x.csv", "--out", "f.nc", "--nosuch"], "No such option"),
])
def test_usage_errors_are_one_line_with_exit_2(cli, argv, needle):
    cli(*argv).assert_user_error(needle, "--help)")


def test_help_still_works(cli):
    done = cli("--help")
    assert done.code == 0 and "Usage: bimix" in done.out
    done = cli("optimize", "--help")
    assert done.code == 0 and "must not end in .json" in " ".join(done.out.replace("│", " ").split())


# ------------------------------------------------------------------- 12: Ctrl-C and kills
def test_ctrl_c_prints_interrupted(corpus_dir, micro_path, one_mix, tmp_path):
    out = tmp_path / "obs.csv"
    args = _trainer_args(corpus_dir, micro_path, one_mix, out, 100000)
    proc = subprocess.Popen([sys.executable, "-m", "bimix_bayes.cli", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "obs.csv.ckpt").glob("*.pt")):  # training has started
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err


def test_a_checkpoint_left_by_a_kill_after_the_last_rows_goes_on_the_rerun(
        cli, corpus_dir, micro_path, one_mix, tmp_path):
    out = tmp_path / "obs.csv"
    args = _trainer_args(corpus_dir, micro_path, one_mix, out, 4)
    # --keep-checkpoints leaves exactly what a SIGKILL between the last rows and the checkpoint's
    # removal leaves: complete rows and the final checkpoint.
    assert cli(*args, "--keep-checkpoints").code == 0
    assert (tmp_path / "obs.csv.ckpt" / "a-seed0.pt").is_file()
    before = out.read_bytes()
    done = cli(*args)
    assert done.code == 0, done.err
    assert out.read_bytes() == before
    assert not (tmp_path / "obs.csv.ckpt").exists()


# ------------------------------------------------------- property-based: malformed files
class Draws:
    """The generators' choices, drawn by hypothesis (so that failures shrink)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def one(self, options):  # noqa: ANN001, ANN201
        return self.draw(st.sampled_from(list(options)))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))


def drawn(generator):  # noqa: ANN001, ANN201
    """A hypothesis strategy of one of the adversarial_cases generators."""
    return st.composite(lambda draw: generator(Draws(draw)))()


@SUITE
@given(case=drawn(malformed_observations))
def test_malformed_observations_are_one_line_naming_file_and_row(cli, tmp_path, case):
    text, line = case
    folder = tmp_path / f"obs-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    shutil.rmtree(folder, ignore_errors=True)  # hypothesis replays an example it shrinks to
    folder.mkdir()
    path = folder / "obs.csv"
    path.write_text(text)
    for argv in (["validate", path], ["fit", path, "--method", "leastsq", "--out",
                                      folder / "fit.nc"]):
        before = tree(folder)
        done = cli(*argv)
        if done.code == 0:  # the defect happened to be valid data (" " in a step, say): fine
            continue
        done.assert_user_error(str(path))
        if line is not None and "sum" not in done.err and "every run" not in done.err:
            assert "line " in done.err, done.err
        assert tree(folder) == before


@SUITE
@given(text=drawn(malformed_mixtures))
def test_malformed_mixtures_are_one_line_naming_the_file(cli, work, tmp_path, text):
    folder = tmp_path / f"mix-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / "mix.csv"
    path.write_text(text)
    before = tree(folder)
    done = cli("predict", work / "fit.nc", "--mixtures", path, "--steps", "100", "--out",
               folder / "pred.csv")
    if done.code != 0:
        done.assert_user_error(str(path))
    assert tree(folder) == before or done.code == 0


@SUITE
@given(case=drawn(bad_option))
def test_bad_option_values_are_one_line_and_write_nothing(cli, work, tmp_path, case):
    command, option, value = case
    out = tmp_path / f"{command}-{hashlib.sha1(repr(case).encode()).hexdigest()[:8]}.csv"
    base = {"predict": ["predict", work / "fit.nc", "--mixtures", work / "mix.csv"],
            "optimize": ["optimize", work / "fit.nc"],
            "suggest": ["suggest", work / "fit.nc", "--n", "2"]}[command]
    extra = {"predict": {"--steps": "100"}, "optimize": {"--step": "100"},
             "suggest": {"--step": "100"}}[command]
    extra = {**extra, option: value}
    before = tree(work)
    done = cli(*base, *[x for kv in extra.items() for x in kv], "--out", out)
    done.assert_user_error()
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert tree(work) == before
