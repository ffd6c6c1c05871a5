"""The torch trainer: presets, model, stratified sampling, training, resume after SIGKILL, DDP."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CliResult
from hypothesis import given, settings
from hypothesis import strategies as st

from bimix_bayes.corpus import Corpus, build_corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations
from bimix_bayes.trainer import GPT, MixtureSampler, Preset, TrainConfig, eval_schedule, loop, lr_at, train
from bimix_bayes.trainer.preset import PRESETS_DIR, ModelConfig, load_ladder, preset_for, preset_names

# Two threads on a shared two-core machine thrash (OpenMP spin-waits); one is faster and exact.
torch.set_num_threads(1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
ROOT = Path(__file__).resolve().parents[1]

MICRO = """\
name = "micro"
[model]
n_layer = 1
n_head = 2
n_embd = 32
block_size = 32
[train]
batch_size = 8
micro_batch_size = 4
lr = 1e-2
min_lr = 1e-3
warmup_fraction = 0.1
eval_sequences = 4
"""


def _documents(seed: int) -> dict[str, list[str]]:
    """Three domains with clearly different statistics (words, digits, code-like lines)."""
    r = random.Random(seed)
    words = "the a mixture of data domains trains small models on text and code".split()
    return {
        "prose": [" ".join(r.choice(words) for _ in range(150)) + "." for _ in range(12)],
        "digits": [" ".join(str(r.randint(0, 99)) for _ in range(200)) for _ in range(12)],
        "code": ["\n".join(f"def f{i}(x):\n    return x * {i}" for i in range(r.randint(20, 40)))
                 for _ in range(12)],
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus.open(build_corpus(_documents(0), tmp_path_factory.mktemp("c") / "corpus"))


@pytest.fixture(scope="module")
def micro_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("p") / "micro.toml"
    path.write_text(MICRO)
    return path


@pytest.fixture(scope="module")
def micro(micro_path: Path) -> Preset:
    return Preset.load(micro_path)


def _mixtures(**rows: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, index=["prose", "digits", "code"]).T
    return frame.rename_axis("mixture")


@pytest.fixture(scope="module")
def trained(corpus: Corpus, micro: Preset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of 40 steps, one with a zero-proportion domain; shared by several tests."""
    out = tmp_path_factory.mktemp("t") / "obs.csv"
    train(corpus, _mixtures(even=[0.4, 0.3, 0.3], nocode=[0.5, 0.5, 0.0]), micro, out,
          steps=40, eval_steps=[5, 20, 40], progress=False)
    return out


# ------------------------------------------------------------------------------------ presets
def test_shipped_presets_load_by_name_with_their_sizes() -> None:
    sizes = {}
    for name in ("tiny", "tiny-wide", "small", "paper-124m", "paper-1b"):
        preset = Preset.load(name)
        with torch.device("meta"):
            sizes[name] = GPT(preset.model, 257).num_params(non_embedding=True)
    assert sizes["tiny"] < 1e6
    # The CPU ladder: tiny-wide is tiny at twice the width (4x the size), with tiny's recipe.
    assert 3.9 < sizes["tiny-wide"] / sizes["tiny"] < 4.1
    wide, tiny = Preset.load("tiny-wide"), Preset.load("tiny")
    assert (wide.train, wide.model.block_size, wide.model.head_dim) == (
        tiny.train, tiny.model.block_size, tiny.model.head_dim)
    assert 15e6 < sizes["small"] < 25e6
    assert Preset.load("paper-124m").model.n_layer == 12
    assert 0.9e9 < sizes["paper-1b"] < 1.2e9
    # models/ in the repository is the packaged folder itself (one copy of each file).
    assert (ROOT / "models").resolve() == PRESETS_DIR
    assert set(preset_names()) >= {"demo", "tiny", "tiny-wide", "small", "paper-124m", "paper-1b"}


def test_presets_by_name_or_path_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Preset.load("tiny") == Preset.load(PRESETS_DIR / "tiny.toml")
    (tmp_path / "mine.toml").write_text((PRESETS_DIR / "demo.toml").read_text())
    assert Preset.load("mine.toml").model.n_embd == 64  # a path, relative to the directory
    with pytest.raises(BimixInputError, match="unknown model preset 'tinyy'; the packaged "
                                              "presets are demo, paper-124m"):
        Preset.load("tinyy")
    with pytest.raises(BimixInputError, match="models/tiny.toml: model preset not found"):
        Preset.load("models/tiny.toml")  # a path that is not here stays a path


def test_preset_and_help_do_not_import_torch() -> None:
    code = ("import sys\n"
            "from bimix_bayes.trainer import Preset\n"
            "assert Preset.load('tiny').name == 'tiny'\n"
            "from bimix_bayes import cli\n"
            "try:\n"
            "    cli.main(['--help'])\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "print('torch modules:', loaded)\n"
            "sys.exit(1 if loaded else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Usage: bimix" in done.stdout


@pytest.mark.parametrize(("edit", "message"), [
    (("n_embd = 32", "n_embd = 33"), "divisible by model.n_head"),
    (("n_embd = 32", "n_embd = 30"), "even head width"),
    (("n_head = 2", "n_head = 4\nbogus = 1"), "unknown key(s) model.bogus"),
    (("micro_batch_size = 4", "micro_batch_size = 3"), "multiple of"),
    (("lr = 1e-2", "lr = 'fast'"), "train.lr must be float"),
    (("[model]", "[model"), "not a valid TOML"),
    (("n_layer = 1\n", ""), "missing key(s) model.n_layer"),
])
def test_impossible_presets_name_the_file(tmp_path: Path, edit: tuple[str, str],
                                          message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MICRO.replace(*edit))
    with pytest.raises(BimixInputError, match="bad.toml") as err:
        Preset.load(path)
    assert message in str(err.value)


# -------------------------------------------------------------------------------------- model
@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_model_is_causal_and_tied(micro: Preset, positions: str) -> None:
    torch.manual_seed(0)
    model = GPT(Preset.from_dict({"model": {**micro.to_dict()["model"], "positions": positions}})
                .model, vocab_size=100)
    assert model.lm_head.weight is model.wte.weight
    idx = torch.randint(0, 100, (2, 32))
    changed = idx.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % 100
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6)
    assert not torch.allclose(a[:, 20:], b[:, 20:])


# ----------------------------------------------------------------------------------- schedule
def test_lr_schedules_warm_up_then_decay_to_min_lr() -> None:
    for schedule in ("cosine", "exponential"):
        cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup_fraction=0.1, schedule=schedule)
        lrs = [lr_at(s, 200, cfg) for s in range(1, 201)]
        assert lrs[19] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5)
        assert np.all(np.diff(lrs[:20]) > 0) and np.all(np.diff(lrs[20:]) < 0)
    assert eval_schedule(10, [10, 3]) == [3, 10]
    with pytest.raises(BimixInputError, match="1..10"):
        eval_schedule(10, [0, 11])


# ----------------------------------------------------------------------------------- sampling
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=2, max_size=7).filter(lambda w: sum(w) > 0),
       st.integers(1, 32))
def test_quota_stays_within_one_sequence_of_the_exact_share(weights: list[int], batch: int) -> None:
    p = np.array(weights, float) / sum(weights)
    sampler = MixtureSampler(p, batch, seed=0)
    total = np.zeros(len(p))
    for step in range(1, 101):
        quota = sampler.next_quota()
        assert quota.sum() == batch and (quota >= 0).all()
        total += quota
        assert np.all(np.abs(total - step * batch * p) < 1 + 1e-9)
    assert total[p == 0].sum() == 0


def test_batches_come_from_their_domains_and_depend_on_seed_and_step() -> None:
    tokens = [np.full(1000, 1, np.uint16), np.full(500, 2, np.uint16), np.full(800, 3, np.uint16)]
    a = MixtureSampler([0.5, 0.0, 0.5], 8, seed=1)
    batch = a.next_batch(tokens, 16)
    assert batch.shape == (8, 17) and set(np.unique(batch)) == {1, 3}
    ramp = [np.arange(1000, dtype=np.uint16)] * 3
    b1, b2 = MixtureSampler([0.2, 0.3, 0.5], 8, seed=1), MixtureSampler([0.2, 0.3, 0.5], 8, seed=1)
    assert np.array_equal(b1.next_batch(ramp, 16), b2.next_batch(ramp, 16))
    resumed = MixtureSampler([0.2, 0.3, 0.5], 8, seed=1)
    resumed.load_state_dict(b1.state_dict())
    assert np.array_equal(b1.next_batch(ramp, 16), resumed.next_batch(ramp, 16))
    other = MixtureSampler([0.2, 0.3, 0.5], 8, seed=2)
    other.load_state_dict({**b2.state_dict(), "step": 0})
    assert not np.array_equal(other.next_batch(ramp, 16),
                              MixtureSampler([0.2, 0.3, 0.5], 8, seed=1).next_batch(ramp, 16))


# ----------------------------------------------------------------------------------- training
def test_training_writes_valid_observations_with_falling_loss(trained: Path) -> None:
    obs = Observations.read_csv(trained)
    assert obs.runs == ["even-seed0", "nocode-seed0"] and obs.steps == [5, 20, 40]
    frame = obs.frame
    assert len(frame) == 2 * 3 * 3
    assert set(frame.columns) >= {"tokens", "model", "seed"}
    assert (frame["tokens"].astype(int) == frame["step"] * 8 * 32).all()
    # The zero-proportion domain is still evaluated.
    nocode = frame[(frame["run"] == "nocode-seed0") & (frame["domain"] == "code")]
    assert len(nocode) == 3 and (nocode["proportion"] == 0).all()
    for (_, domain), g in frame.groupby(["run", "domain"]):
        losses = g.sort_values("step")["loss"].to_numpy()
        if g["proportion"].iloc[0] > 0:
            assert losses[-1] < losses[0] < np.log(320) + 0.5, domain
    # Training on code helps code: the run without code does worse there.
    final = frame[frame["step"] == 40].set_index(["run", "domain"])["loss"]
    assert final["even-seed0", "code"] < final["nocode-seed0", "code"]


def test_cli_validate_accepts_the_output(trained: Path, cli: Callable[..., CliResult]) -> None:
    done = cli("validate", trained)
    assert done.code == 0 and "OK: 2 runs, 3 domains" in done.out
    assert "1 model size: 1.24e+04 (2 runs)" in done.out


@pytest.mark.parametrize("shape", [
    {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32},
    {"n_layer": 3, "n_head": 4, "n_embd": 64, "block_size": 16, "mlp_ratio": 2},
    {"n_layer": 2, "n_head": 2, "n_embd": 48, "block_size": 24, "positions": "learned"},
])
def test_preset_size_is_the_models_count_without_embeddings(shape: dict) -> None:
    config = ModelConfig(**shape)
    with torch.device("meta"):
        model = GPT(config, 300)
    assert config.n_params == model.num_params(non_embedding=True)
    assert config.n_params < model.num_params()  # the tied table is left out


def test_observations_record_the_preset_size(trained: Path, micro: Preset) -> None:
    obs = Observations.read_csv(trained)
    assert list(obs.frame.columns[:6]) == ["run", "domain", "proportion", "step", "loss", "params"]
    assert obs.distinct_sizes == [micro.model.n_params] == [12384]
    assert obs.sizes.to_dict() == {"even-seed0": 12384, "nocode-seed0": 12384}


def test_two_presets_into_one_file_give_two_sizes(corpus: Corpus, micro: Preset,
                                                  tmp_path: Path) -> None:
    wide = Preset.from_dict({**micro.to_dict(), "name": "micro-wide",
                             "model": {**micro.to_dict()["model"], "n_embd": 64}})
    out = tmp_path / "obs.csv"
    for preset, name in ((micro, "m1-micro"), (wide, "m1-wide")):
        obs = train(corpus, _mixtures(**{name: [0.4, 0.3, 0.3]}), preset, out, steps=4,
                    eval_steps=[4], progress=False)
    assert obs.sizes.to_dict() == {"m1-micro-seed0": micro.model.n_params,
                                   "m1-wide-seed0": wide.model.n_params}
    assert len(obs.distinct_sizes) == 2


def test_cli_trains_each_mixture_at_the_preset_of_its_size(
        corpus: Corpus, micro_path: Path, tmp_path: Path,
        cli: Callable[..., CliResult]) -> None:
    wide_path = tmp_path / "micro-wide.toml"
    wide_path.write_text(MICRO.replace('name = "micro"', 'name = "micro-wide"')
                         .replace("n_embd = 32", "n_embd = 64"))
    small, wide = Preset.load(micro_path), Preset.load(wide_path)
    assert small.model.n_params < wide.model.n_params
    mix = tmp_path / "next.csv"  # as bimix suggest --params-choices writes it (sizes rounded)
    mix.write_text("mixture,prose,digits,code,score,params,cost\n"
                   f"a,0.4,0.3,0.3,0.1,{wide.model.n_params:.4g},1e9\n"
                   f"b,0.2,0.5,0.3,0.1,{small.model.n_params},1e8\n")
    out = tmp_path / "obs.csv"
    base = ["train", "--mixtures", mix, "--steps", "3", "--eval-steps", "3", "--corpus",
            corpus.path, "--out", out, "--no-progress", "--device", "cpu"]
    done = cli(*base, "--model", f"{wide_path},{micro_path}")
    assert done.code == 0, done.err
    obs = Observations.read_csv(out)
    assert obs.sizes.to_dict() == {"a-seed0": wide.model.n_params,
                                   "b-seed0": small.model.n_params}
    assert set(obs.frame.set_index("run")["model"].groupby(level=0).first()) == {
        "micro", "micro-wide"}

    # A size that no given preset has, or several presets without sizes: one line, no rows.
    other = tmp_path / "other.csv"
    cli(*base[:9], "--out", other, "--model", micro_path).assert_user_error(
        "next.csv: mixture 'a': no model preset of size")
    plain = tmp_path / "plain.csv"
    plain.write_text("mixture,prose,digits,code\na,0.4,0.3,0.3\n")
    cli("train", "--mixtures", plain, "--steps", "3", "--corpus", corpus.path, "--out", other,
        "--model", f"{micro_path},{wide_path}").assert_user_error(
        "2 model presets, but the mixtures do not say which size")
    bad = tmp_path / "bad.csv"
    bad.write_text("mixture,prose,digits,code,params\na,0.4,0.3,0.3,-5\n")
    cli("train", "--mixtures", bad, "--steps", "3", "--corpus", corpus.path, "--out", other,
        "--model", micro_path).assert_user_error(
        "bad.csv: line 2: params (the model size to train this mixture at) must be a positive")
    assert not other.exists()


def test_a_ladder_needs_presets_of_different_sizes(micro_path: Path, tmp_path: Path) -> None:
    same = tmp_path / "same.toml"
    same.write_text(MICRO.replace('name = "micro"', 'name = "same"'))
    with pytest.raises(BimixInputError, match="have the same model size"):
        load_ladder([micro_path, same])
    ladder = load_ladder(["tiny-wide", "tiny"])
    assert [p.name for p in ladder] == ["tiny", "tiny-wide"]
    assert preset_for(ladder, 1.57e6).name == "tiny-wide"
    with pytest.raises(BimixInputError, match="sizes are tiny 393856, tiny-wide 1574144"):
        preset_for(ladder, 1e7)


def test_resume_into_a_file_without_params_continues_it_as_it_was(
        corpus: Corpus, micro: Preset, trained: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run cut short under the trainer that wrote no ``params`` resumes into the same file:
    the rows it appends have the file's columns, and the file ends as that trainer's would."""
    out = tmp_path / "obs.csv"
    evaluate = loop._Run._evaluate

    def crash_at_40(self, model, step):  # noqa: ANN001, ANN202 - the method's own signature
        if step == 40:
            raise RuntimeError("killed")
        evaluate(self, model, step)

    monkeypatch.setattr(loop._Run, "_evaluate", crash_at_40)
    with pytest.raises(RuntimeError, match="killed"):
        train(corpus, _mixtures(even=[0.4, 0.3, 0.3]), micro, out, steps=40,
              eval_steps=[5, 20, 40], progress=False)
    monkeypatch.setattr(loop._Run, "_evaluate", evaluate)
    assert (tmp_path / "obs.csv.ckpt" / "even-seed0.pt").exists()

    def without_params(text: str) -> list[str]:
        return [",".join(f for i, f in enumerate(line.split(",")) if i != 5)
                for line in text.splitlines()]

    old = without_params(out.read_text())  # the file as the older trainer wrote it
    assert old[0] == "run,domain,proportion,step,loss,tokens,model,seed"
    out.write_text("\n".join(old) + "\n")
    obs = train(corpus, _mixtures(even=[0.4, 0.3, 0.3]), micro, out, steps=40,
                eval_steps=[5, 20, 40], progress=False)
    assert obs.sizes is None and obs.steps == [5, 20, 40]
    expected = [line for line in without_params(trained.read_text())
                if not line.startswith("nocode-seed0,")]
    assert out.read_text().splitlines() == expected


def test_same_seed_same_losses_other_seed_other_losses(
        corpus: Corpus, micro: Preset, trained: Path, tmp_path: Path) -> None:
    train(corpus, _mixtures(even=[0.4, 0.3, 0.3]), micro, tmp_path / "a.csv", steps=40,
          eval_steps=[5, 20, 40], seeds=[0, 1], progress=False)
    again = pd.read_csv(tmp_path / "a.csv")
    first = pd.read_csv(trained)
    pd.testing.assert_frame_equal(again[again["seed"] == 0].reset_index(drop=True),
                                  first[first["run"] == "even-seed0"].reset_index(drop=True))
    s0, s1 = (again[again["seed"] == s]["loss"].to_numpy() for s in (0, 1))
    assert not np.allclose(s0, s1)


def test_rerun_skips_complete_runs(corpus: Corpus, micro: Preset, trained: Path) -> None:
    before = trained.read_bytes()
    train(corpus, _mixtures(even=[0.4, 0.3, 0.3]), micro, trained, steps=40,
          eval_steps=[5, 20, 40], progress=False)
    assert trained.read_bytes() == before


APPEND_ROWS = """
import sys
from bimix_bayes.trainer.obslog import ObservationLog
log = ObservationLog(sys.argv[1])
for step in range(1, 31):
    log.append([{"run": sys.argv[2], "domain": "x", "proportion": 1.0, "step": step, "loss": 1.0,
                 "params": 1e6,
                 "tokens": step, "model": "m", "seed": 0}])
"""


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(
        corpus: Corpus, micro: Preset, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "PLAIN_PROGRESS_EVERY", 0.0)  # a line at every bar update
    train(corpus, _mixtures(even=[0.5, 0.5, 0.0]), micro, tmp_path / "o.csv", steps=20,
          eval_steps=[20])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("even-seed0: ")]
    assert lines[0] == "even-seed0: step 0/20"
    assert lines[1].startswith("even-seed0: step 10/20 (50%), loss ")
    assert lines[-1].startswith("even-seed0: done, 20 steps in ")
    assert "━" not in err and "\x1b" not in err  # no bar, no terminal escapes
    assert len(lines) == 4  # start, steps 10 and 20, done: each once


def test_concurrent_writers_lose_no_rows(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", APPEND_ROWS, str(tmp_path / "obs.csv"), r],
                              cwd=ROOT) for r in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    obs = Observations.read_csv(tmp_path / "obs.csv")
    assert len(obs) == 60 and sorted(obs.runs) == ["a", "b"]
    assert [f.name for f in tmp_path.iterdir()] == ["obs.csv"]  # no lock or temporary files


# ------------------------------------------------------------------------------------- resume
def _train_cmd(corpus: Corpus, preset: Path, mix: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "bimix_bayes.cli", "train", "--mixtures", str(mix), "--model",
            str(preset), "--steps", "60", "--corpus", str(corpus.path), "--out", str(out),
            "--eval-steps", "5,10,20,40,60", "--checkpoint-every", "5", "--device", "cpu",
            "--no-progress"]


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_uninterrupted_observations(
        corpus: Corpus, micro_path: Path, tmp_path: Path) -> None:
    mix = tmp_path / "mix.csv"
    _mixtures(a=[0.6, 0.3, 0.1], b=[0.1, 0.1, 0.8]).to_csv(mix)
    reference = tmp_path / "reference.csv"
    train(corpus, _mixtures(a=[0.6, 0.3, 0.1], b=[0.1, 0.1, 0.8]), Preset.load(micro_path),
          reference, steps=60, eval_steps=[5, 10, 20, 40, 60], progress=False)

    out = tmp_path / "obs.csv"
    proc = subprocess.Popen(_train_cmd(corpus, micro_path, mix, out), env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    ckpts = tmp_path / "obs.csv.ckpt"
    # Kill once evaluation rows and a checkpoint exist, mid-way through the first run.
    while not (out.exists() and len(out.read_text().splitlines()) > 1
               and list(ckpts.glob("*.pt"))):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = out.read_text().splitlines()
    assert 1 < len(partial) < len(reference.read_text().splitlines())

    done = subprocess.run(_train_cmd(corpus, micro_path, mix, out), env=ENV, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from step" in done.stderr
    assert out.read_text() == reference.read_text()
    assert not ckpts.exists()  # finished runs clean up, folder included


# ---------------------------------------------------------------------------------- bad input
def test_bad_input_fails_before_training(corpus: Corpus, micro: Preset, tmp_path: Path) -> None:
    out = tmp_path / "obs.csv"
    with pytest.raises(BimixInputError, match="unknown domain column"):
        train(corpus, _mixtures(m=[0.5, 0.5, 0.0]).rename(columns={"code": "math"}), micro, out,
              steps=5)
    with pytest.raises(BimixInputError, match="sum to"):
        train(corpus, _mixtures(m=[0.5, 0.4, 0.0]), micro, out, steps=5)
    long = Preset.from_dict({**micro.to_dict(), "model": {**micro.to_dict()["model"],
                                                          "block_size": 1 << 15}})
    with pytest.raises(BimixInputError, match="manifest.json.*validation tokens"):
        train(corpus, _mixtures(m=[0.5, 0.5, 0.0]), long, out, steps=5)
    out.write_text("run,domain,proportion,step,loss\n")
    with pytest.raises(BimixInputError, match="obs.csv: line 1: existing output has columns"):
        train(corpus, _mixtures(m=[0.5, 0.5, 0.0]), micro, out, steps=5)
    out.unlink()
    ckpt = tmp_path / "obs.csv.ckpt" / "m-seed0.pt"
    ckpt.parent.mkdir()
    torch.save({"fingerprint": "other"}, ckpt)
    with pytest.raises(BimixInputError, match="different configuration"):
        train(corpus, _mixtures(m=[0.5, 0.5, 0.0]), micro, out, steps=5)
    assert not out.exists()


def test_other_steps_into_the_same_output_is_refused(corpus: Corpus, micro: Preset,
                                                      trained: Path) -> None:
    before = trained.read_bytes()
    with pytest.raises(BimixInputError, match="not complete at step 60"):
        train(corpus, _mixtures(even=[0.4, 0.3, 0.3]), micro, trained, steps=60,
              eval_steps=[5, 20, 60], progress=False)
    assert trained.read_bytes() == before


def test_cli_reports_bad_input_as_one_line(corpus: Corpus, micro_path: Path, tmp_path: Path,
                                           cli: Callable[..., CliResult]) -> None:
    mix = tmp_path / "mix.csv"
    mix.write_text("mixture,prose,digits,code\nm,0.5,0.5,0.1\n")
    base = ["train", "--mixtures", str(mix), "--model", str(micro_path), "--steps", "5",
            "--out", str(tmp_path / "o.csv"), "--no-progress"]
    for corpus_dir, expected in [(tmp_path / "nowhere", "corpus directory not found"),
                                 (corpus.path, "mix.csv: line 2: mixture 'm': proportions sum")]:
        cli(*base, "--corpus", corpus_dir).assert_user_error(expected)
    assert not (tmp_path / "o.csv").exists()


# ---------------------------------------------------------------------------------------- DDP
def _torchrun(corpus: Corpus, preset: Path, mix: Path, out: Path, distribute: str) -> None:
    # CI machines may have a hostname that resolves nowhere: rendezvous and gloo stay on loopback.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--local-addr=127.0.0.1", "-m", "bimix_bayes.cli", "train", "--mixtures", str(mix),
           "--model", str(preset), "--steps", "20", "--corpus", str(corpus.path), "--out",
           str(out), "--eval-steps", "10,20", "--device", "cpu", "--no-progress", "--distribute",
           distribute]
    # Its own session, so that a hang kills torchrun's workers too and still shows their output.
    proc = subprocess.Popen(cmd, env={**ENV, "GLOO_SOCKET_IFNAME": "lo"}, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"torchrun hung for 240 s; its output:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]


@pytest.mark.slow
@pytest.mark.serial
def test_ddp_on_two_gloo_ranks_matches_one_process(
        corpus: Corpus, micro_path: Path, tmp_path: Path) -> None:
    mixtures = _mixtures(a=[0.6, 0.3, 0.1])
    mixtures.to_csv(tmp_path / "mix.csv")
    single = tmp_path / "single.csv"
    train(corpus, mixtures, Preset.load(micro_path), single, steps=20, eval_steps=[10, 20],
          progress=False)
    _torchrun(corpus, micro_path, tmp_path / "mix.csv", tmp_path / "ddp.csv", "data")
    a, b = pd.read_csv(single), pd.read_csv(tmp_path / "ddp.csv")
    pd.testing.assert_frame_equal(a.drop(columns="loss"), b.drop(columns="loss"))
    # Same global batch, gradients averaged over ranks: equal up to float summation order.
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)


@pytest.mark.slow
@pytest.mark.serial
def test_one_mixture_per_rank_matches_sequential_runs(
        corpus: Corpus, micro_path: Path, tmp_path: Path) -> None:
    mixtures = _mixtures(a=[0.6, 0.3, 0.1], b=[0.0, 0.2, 0.8], c=[1.0, 0.0, 0.0])
    mixtures.to_csv(tmp_path / "mix.csv")
    single = tmp_path / "single.csv"
    train(corpus, mixtures, Preset.load(micro_path), single, steps=20, eval_steps=[10, 20],
          progress=False)
    _torchrun(corpus, micro_path, tmp_path / "mix.csv", tmp_path / "ranks.csv", "mixtures")
    key = ["run", "domain", "step"]
    a = pd.read_csv(single).sort_values(key).reset_index(drop=True)
    b = pd.read_csv(tmp_path / "ranks.csv").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)  # each run alone on one device: identical numbers


def test_kept_checkpoints_stay_and_the_empty_folder_goes(corpus: Corpus, micro: Preset,
                                                         tmp_path: Path) -> None:
    mixtures = _mixtures(a=[0.6, 0.3, 0.1])
    train(corpus, mixtures, micro, tmp_path / "kept.csv", steps=4, eval_steps=[4],
          keep_checkpoints=True, progress=False)
    assert (tmp_path / "kept.csv.ckpt" / "a-seed0.pt").is_file()
    stale = tmp_path / "plain.csv.ckpt" / ".a-seed0.pt.x1y2z3.tmp"  # a write SIGKILL cut short
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    train(corpus, mixtures, micro, tmp_path / "plain.csv", steps=4, eval_steps=[4], progress=False)
    assert not (tmp_path / "plain.csv.ckpt").exists()
