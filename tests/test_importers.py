"""Importers: logs written by the real writers (TensorBoard's, W&B's export formats, HF's
trainer_state.json, JSON Lines) become exactly the observations they hold; bad logs get one line."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bimix_bayes.errors import BimixInputError
from bimix_bayes.importers import MetricMap, StepZeroWarning, read_logs
from bimix_bayes.mixtures import RenormalisedWarning, read_mixtures
from bimix_bayes.observations import Observations

COLUMNS = ["run", "domain", "proportion", "step", "loss"]


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Expected observations as the validator returns them."""
    return Observations.from_frame(pd.DataFrame(rows, columns=COLUMNS)).frame


def assert_obs(obs: Observations, rows: list[tuple]) -> None:
    pd.testing.assert_frame_equal(obs.frame, frame(rows))


def write_mix(path: Path, rows: dict[str, dict[str, float]]) -> Path:
    pd.DataFrame.from_dict(rows, orient="index").rename_axis("mixture").reset_index().to_csv(
        path, index=False)
    return path


# ------------------------------------------------------------------------------ TensorBoard
@pytest.fixture(scope="module")
def tb_logdir(tmp_path_factory) -> Path:
    """Two runs written by torch's SummaryWriter (TensorBoard's event-file format)."""
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path_factory.mktemp("tb")
    losses = {"a": {"web": [3.5, 3.25, 3.0], "code": [2.5, 2.25, 2.0]},
              "b": {"web": [4.0, 3.75, 3.5], "code": [2.0, 1.75, 1.5]}}
    for run, by_domain in losses.items():
        writer = SummaryWriter(str(logdir / run))
        writer.add_scalar("eval/web/loss", 9.0, 0)  # before training: left out
        for k, step in enumerate((100, 200, 400)):
            writer.add_scalar("train/loss", 5.0 - k, step)
            for domain, values in by_domain.items():
                writer.add_scalar(f"eval/{domain}/loss", values[k], step)
        writer.close()
    return logdir


def test_tensorboard_logdir_with_a_mixture_csv(tb_logdir, tmp_path):
    mix = read_mixtures(write_mix(tmp_path / "mix.csv", {"a": {"web": 0.7, "code": 0.3},
                                                         "b": {"web": 0.2, "code": 0.8}}))
    with pytest.warns(StepZeroWarning, match="2 evaluation"):
        obs = read_logs("tensorboard", [tb_logdir], mixtures=mix)
    # Values chosen exactly representable in float32 (TensorBoard stores float32 scalars).
    assert_obs(obs, [
        ("a", "web", 0.7, 100, 3.5), ("a", "web", 0.7, 200, 3.25), ("a", "web", 0.7, 400, 3.0),
        ("a", "code", 0.3, 100, 2.5), ("a", "code", 0.3, 200, 2.25), ("a", "code", 0.3, 400, 2.0),
        ("b", "web", 0.2, 100, 4.0), ("b", "web", 0.2, 200, 3.75), ("b", "web", 0.2, 400, 3.5),
        ("b", "code", 0.8, 100, 2.0), ("b", "code", 0.8, 200, 1.75), ("b", "code", 0.8, 400, 1.5),
    ])


def test_tensorboard_run_config_gives_the_mixture_and_extra_domains(tb_logdir, tmp_path, cli):
    run = tmp_path / "a"
    run.mkdir()
    for f in (tb_logdir / "a").iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    # W&B-style wrapped YAML; 'books' is trained on but never evaluated.
    (run / "config.yaml").write_text("lr:\n  value: 0.001\nmixture:\n  desc: null\n  value:\n"
                                     "    web: 0.5\n    code: 0.25\n    books: 0.25\n")
    out = tmp_path / "obs.csv"
    with pytest.warns(StepZeroWarning, match="1 evaluation"):
        done = cli("import", "tensorboard", run, "--out", out, "--run", "web50")
    assert done.code == 0, done.err
    obs = Observations.read_csv(out)
    assert obs.runs == ["web50"] and obs.domains == ["web", "code", "books"]
    assert obs.evaluated_domains == ["web", "code"]
    assert obs.frame.query("domain == 'books'")["step"].isna().all()
    np.testing.assert_array_equal(obs.frame.query("domain == 'code'")["loss"], [2.5, 2.25, 2.0])


def test_tensorboard_tf2_tensor_scalars_from_tensorboards_own_writer(tmp_path):
    """TF2's tf.summary.scalar stores tensors, not simple values; TensorBoard's writer makes them."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path / "logs" / "run"))
    for step, web, code in ((100, 3.5, 2.5), (200, 3.25, 2.25)):
        for tag, value in (("val/web_loss", web), ("val/code_loss", code), ("val/acc", 0.5)):
            writer.add_event(Event(step=step, wall_time=1.0, summary=scalar_pb(tag, value)))
    writer.close()
    mix = read_mixtures(write_mix(tmp_path / "mix.csv", {"run": {"code": 0.5, "web": 0.5}}))
    obs = read_logs("tensorboard", [tmp_path / "logs"], pattern="val/{domain}_loss", mixtures=mix)
    assert_obs(obs, [("run", "code", 0.5, 100, 2.5), ("run", "code", 0.5, 200, 2.25),
                     ("run", "web", 0.5, 100, 3.5), ("run", "web", 0.5, 200, 3.25)])


def test_tensorboard_errors(tb_logdir, tmp_path, cli):
    out = tmp_path / "obs.csv"
    mix = write_mix(tmp_path / "mix.csv", {"a": {"web": 0.7, "code": 0.3}})
    cli("import", "tensorboard", tb_logdir, "--mixtures", mix, "--out", out).assert_user_error(
        str(mix), "no mixture named 'b'")
    cli("import", "tensorboard", tb_logdir / "a", "--pattern", "val/{domain}", "--mixtures", mix,
        "--out", out).assert_user_error("no metric matches the pattern 'val/{domain}'",
                                        "eval/web/loss")
    cli("import", "tensorboard", tb_logdir / "a", "--out", out).assert_user_error(
        "run 'a': no mixture", "--mixtures")
    cli("import", "tensorboard", tb_logdir, "--run", "x", "--mixtures", mix,
        "--out", out).assert_user_error("--run names one run, but the logs hold 2")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "events.out.tfevents.1.host").write_bytes(b"not an event file")
    cli("import", "tensorboard", bad, "--mixtures", mix, "--out", out).assert_user_error(
        str(bad), "no scalar summaries")
    cli("import", "tensorboard", tmp_path / "none", "--mixtures", mix,
        "--out", out).assert_user_error("file not found")
    only_web = write_mix(tmp_path / "web.csv", {"a": {"web": 1.0}})
    cli("import", "tensorboard", tb_logdir / "a", "--mixtures", only_web,
        "--out", out).assert_user_error("'eval/code/loss' is domain 'code'", "does not list")
    cli("import", "parquet", tb_logdir, "--out", out).assert_user_error(
        "'parquet' is not one of 'tensorboard'")
    assert not out.exists()


# ------------------------------------------------------------------------------ W&B exports
def wandb_history() -> pd.DataFrame:
    """What ``wandb.Api().run(...).history()`` returns: one row per logged step, NaN elsewhere."""
    return pd.DataFrame({
        "_step": [0, 1, 2, 3],
        "_runtime": [1.5, 3.0, 4.5, 6.0],
        "_timestamp": [1.7e9, 1.7e9 + 1.5, 1.7e9 + 3, 1.7e9 + 4.5],
        "train/loss": [4.0, 3.5, np.nan, 3.0],
        "eval/web/loss": [np.nan, 3.4, np.nan, 3.1],
        "eval/code/loss": [np.nan, 2.4, np.nan, 2.1],
        "train/global_step": [50, 100, 150, 200],
    })


def test_wandb_history_csv_with_step_key_and_wrapped_config(tmp_path):
    wandb_history().to_csv(tmp_path / "run-7.csv")  # pandas writes the index, as users do
    (tmp_path / "config.yaml").write_text(
        "_wandb:\n  value:\n    cli_version: 0.19.1\nmixture:\n  value:\n    web: 0.6\n"
        "    code: 0.4\n")
    obs = read_logs("wandb", [tmp_path / "run-7.csv"], step_key="train/global_step")
    assert_obs(obs, [("run-7", "web", 0.6, 100, 3.4), ("run-7", "web", 0.6, 200, 3.1),
                     ("run-7", "code", 0.4, 100, 2.4), ("run-7", "code", 0.4, 200, 2.1)])
    by_wandb_step = read_logs("wandb", [tmp_path / "run-7.csv"])
    assert by_wandb_step.steps == [1, 3]
    nan_text = wandb_history().to_csv(index=False, na_rep="NaN")  # some exports spell it out
    (tmp_path / "nan" / "run-7.csv").parent.mkdir()
    (tmp_path / "nan" / "run-7.csv").write_text(nan_text)
    (tmp_path / "nan" / "config.yaml").write_text((tmp_path / "config.yaml").read_text())
    pd.testing.assert_frame_equal(
        read_logs("wandb", [tmp_path / "nan" / "run-7.csv"], step_key="train/global_step").frame,
        obs.frame)


def test_wandb_scan_history_json_and_chart_export(tmp_path):
    rows = [{k: v for k, v in row.items() if pd.notna(v)}
            for row in wandb_history().to_dict("records")]
    (tmp_path / "hist.json").write_text(json.dumps(rows))
    mix = read_mixtures(write_mix(tmp_path / "mix.csv", {"r": {"web": 0.5, "code": 0.5}}))
    obs = read_logs("wandb", [tmp_path / "hist.json"], mixtures=mix, run="r")
    assert obs.steps == [1, 3] and obs.frame["loss"].tolist() == [3.4, 3.1, 2.4, 2.1]

    # The chart menu's "Export CSV": Step plus "RUN - metric" with __MIN/__MAX companions.
    chart = tmp_path / "chart.csv"
    chart.write_text(
        '"Step","web60 - eval/web/loss","web60 - eval/web/loss__MIN","web60 - eval/web/loss__MAX",'
        '"web20 - eval/web/loss","web20 - eval/web/loss__MIN","web20 - eval/web/loss__MAX"\n'
        '"100","3.2","3.2","3.2","3.9","3.9","3.9"\n'
        '"200","3.0","3.0","3.0","","",""\n')
    mix = read_mixtures(write_mix(tmp_path / "mix2.csv", {"web60": {"web": 0.6, "code": 0.4},
                                                          "web20": {"web": 0.2, "code": 0.8}}))
    obs = read_logs("wandb", [chart], mixtures=mix)
    assert_obs(obs, [("web60", "web", 0.6, 100, 3.2), ("web60", "web", 0.6, 200, 3.0),
                     ("web60", "code", 0.4, None, None),
                     ("web20", "web", 0.2, 100, 3.9), ("web20", "code", 0.8, None, None)])


def test_wandb_errors_name_the_file_and_line(tmp_path, cli):
    hist = wandb_history()
    hist.loc[3, "eval/code/loss"] = -1.0
    hist.to_csv(tmp_path / "h.csv", index=False)
    mix = write_mix(tmp_path / "mix.csv", {"h": {"web": 0.5, "code": 0.5}})
    out = tmp_path / "o.csv"
    cli("import", "wandb", tmp_path / "h.csv", "--mixtures", mix,
        "--out", out).assert_user_error(f"{tmp_path / 'h.csv'}: line 5",
                                        "'eval/code/loss' at step 3: loss must be a positive")
    cli("import", "wandb", tmp_path / "h.csv", "--mixtures", mix, "--step-key", "trainer/step",
        "--out", out).assert_user_error("no step column 'trainer/step'")
    assert not out.exists()


# ------------------------------------------------------------------------------ Hugging Face
@dataclasses.dataclass
class TrainerState:
    """The fields of ``transformers.TrainerState`` that its ``save_to_json`` writes."""

    epoch: float
    global_step: int
    max_steps: int
    log_history: list
    logging_steps: int = 10
    eval_steps: int = 100
    save_steps: int = 100
    train_batch_size: int = 8
    num_train_epochs: int = 1
    num_input_tokens_seen: int = 0
    total_flos: float = 1.5e12
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: str | None = None
    trial_params: dict | None = None
    stateful_callbacks: dict = dataclasses.field(default_factory=lambda: {
        "TrainerControl": {"args": {"should_epoch_stop": False, "should_evaluate": False,
                                    "should_log": False, "should_save": True,
                                    "should_training_stop": False}, "attributes": {}}})

    def save_to_json(self, path: Path) -> None:
        # transformers.TrainerState.save_to_json, verbatim in effect.
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")


def hf_history(last: int) -> list[dict]:
    """log_history as the Trainer writes it with ``eval_dataset={"web": ..., "math_formal": ...}``."""
    history = []
    for step in range(100, last + 1, 100):
        history.append({"epoch": step / 400, "grad_norm": 1.25, "learning_rate": 5e-4,
                        "loss": 4.0 - step / 1000, "step": step})
        for name, base in (("web", 3.5), ("math_formal", 2.5)):
            history.append({"epoch": step / 400, f"eval_{name}_loss": base - step / 1000,
                            f"eval_{name}_runtime": 0.52, f"eval_{name}_samples_per_second": 61.5,
                            f"eval_{name}_steps_per_second": 7.7, "step": step})
    history.append({"epoch": last / 400, "step": last, "total_flos": 1.5e12, "train_loss": 3.7,
                    "train_runtime": 12.5, "train_samples_per_second": 25.6,
                    "train_steps_per_second": 3.2})
    return history


def test_hf_output_dir_uses_the_latest_checkpoint(tmp_path, cli):
    out_dir = tmp_path / "math30"
    for step in (200, 300):
        ckpt = out_dir / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        TrainerState(step / 400, step, 300, hf_history(step)).save_to_json(
            ckpt / "trainer_state.json")
    (out_dir / "config.json").write_text(json.dumps(  # the model's config.json: no mixture
        {"architectures": ["GPT2LMHeadModel"], "n_layer": 2}))
    mix = write_mix(tmp_path / "mix.csv", {"math30": {"web": 0.7, "math_formal": 0.3}})
    out = tmp_path / "obs.csv"
    done = cli("import", "hf", out_dir, "--mixtures", mix, "--out", out)
    assert done.code == 0, done.err
    assert_obs(Observations.read_csv(out), [
        ("math30", "web", 0.7, 100, 3.4), ("math30", "web", 0.7, 200, 3.3),
        ("math30", "web", 0.7, 300, 3.2),
        ("math30", "math_formal", 0.3, 100, 2.4), ("math30", "math_formal", 0.3, 200, 2.3),
        ("math30", "math_formal", 0.3, 300, 2.2)])
    # The file itself, a checkpoint's, names the run after the output folder.
    obs = read_logs("hf", [out_dir / "checkpoint-200" / "trainer_state.json"],
                    mixtures=read_mixtures(mix))
    assert obs.runs == ["math30"] and obs.steps == [100, 200]


def test_hf_errors(tmp_path, cli):
    out = tmp_path / "obs.csv"
    (tmp_path / "trainer_state.json").write_text('{"global_step": 3}')
    cli("import", "hf", tmp_path / "trainer_state.json", "--out", out).assert_user_error(
        "no 'log_history' list")
    (tmp_path / "trainer_state.json").write_text("{not json")
    cli("import", "hf", tmp_path, "--out", out).assert_user_error("not valid JSON")
    empty = tmp_path / "empty"
    empty.mkdir()
    cli("import", "hf", empty, "--out", out).assert_user_error("no trainer_state.json here")
    assert not out.exists()


# ------------------------------------------------------------------------------ JSON Lines
def test_jsonl_wide_long_and_inline_mixtures(tmp_path):
    log = tmp_path / "evals.jsonl"
    lines = [
        {"run": "r1", "mixture": {"web": 0.75, "code": 0.25}},
        {"run": "r1", "step": 10, "eval/web/loss": 3.0, "eval/code/loss": 2.0, "lr": 0.001},
        {"run": "r1", "step": 20, "eval/web/loss": 2.75, "eval/code/loss": 1.75},
        {"run": "r2", "mixture": {"web": 0.25, "code": 0.75}},
        {"run": "r2", "step": 10, "domain": "web", "loss": 3.5},
        {"run": "r2", "step": 10, "domain": "code", "loss": 1.5},
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert_obs(read_logs("jsonl", [log]), [
        ("r1", "web", 0.75, 10, 3.0), ("r1", "web", 0.75, 20, 2.75),
        ("r1", "code", 0.25, 10, 2.0), ("r1", "code", 0.25, 20, 1.75),
        ("r2", "web", 0.25, 10, 3.5), ("r2", "code", 0.75, 10, 1.5)])


def test_jsonl_mapping_file_and_rounded_mixture(tmp_path, cli):
    log = tmp_path / "run9.jsonl"
    log.write_text('{"step": 5, "val_loss_gh": 1.5, "val_loss_wiki": 2.5}\n'
                   '{"step": 5, "val_loss_gh": 1.25}\n')  # logged twice: the later one wins
    (tmp_path / "config.json").write_text(json.dumps({"mixture": {"code": 0.333, "web": 0.666}}))
    (tmp_path / "map.csv").write_text("metric,domain\nval_loss_gh,code\nval_loss_wiki,web\n")
    out = tmp_path / "obs.csv"
    with pytest.warns(RenormalisedWarning, match=r"sum 0.999\); renormalised") as notes:
        done = cli("import", "jsonl", log, "--map", tmp_path / "map.csv", "--out", out)
    assert done.code == 0, done.err
    assert len(notes) == 1
    obs = Observations.read_csv(out)
    assert obs.frame["loss"].tolist() == [1.25, 2.5]
    np.testing.assert_allclose(obs.frame["proportion"], [0.333 / 0.999, 0.666 / 0.999])
    assert MetricMap.from_file(tmp_path / "map.csv").names == {"val_loss_gh": "code",
                                                               "val_loss_wiki": "web"}


def test_jsonl_errors(tmp_path, cli):
    log = tmp_path / "run.jsonl"
    out = tmp_path / "obs.csv"
    log.write_text('{"step": 5, "eval/web/loss": 2.0}\n{"step": 6, "eval/web/loss": 2.0\n')
    cli("import", "jsonl", log, "--out", out).assert_user_error(f"{log}: line 2",
                                                                "not valid JSON")
    log.write_text('{"eval/web/loss": 2.0}\n')
    cli("import", "jsonl", log, "--out", out).assert_user_error("line 1", "no 'step'")
    log.write_text('{"step": 1, "eval/web/loss": 2.0}\n')
    (tmp_path / "config.json").write_text('{"mixture": {"web": 0.5, "code": 0.3}}')
    cli("import", "jsonl", log, "--out", out).assert_user_error(
        str(tmp_path / "config.json"), "sum to 0.8")
    cli("import", "jsonl", log, "--pattern", "eval/web", "--out", out).assert_user_error(
        "must contain {domain} once")
    with pytest.raises(BimixInputError, match="pattern or a mapping file, not both"):
        read_logs("jsonl", [log], pattern="a{domain}", mapping={"a": "web"})
    assert not out.exists()


def test_no_warning_without_step_zero(tmp_path):
    log = tmp_path / "r.jsonl"
    log.write_text('{"mixture": {"web": 1.0}}\n{"step": 3, "eval/web/loss": 2.0}\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_logs("jsonl", [log]).steps == [3]
