"""Training logs in, observations out: TensorBoard, Weights & Biases exports, Hugging Face, JSON Lines.

Each reader turns the evaluation losses a training run logged into the tidy observations of
:mod:`bimix_bayes.observations` (``run,domain,proportion,step,loss``). Two things every format
shares, and that are decided here once:

**Which metric is which domain** (:class:`MetricMap`): a pattern with a ``{domain}`` placeholder
that a logged metric name must match in full (default ``eval/{domain}/loss``; Hugging Face's
``trainer_state.json`` names them ``eval_{domain}_loss`` when ``eval_dataset`` is a dict of
domains), or a mapping file (CSV with columns ``metric,domain``, or a JSON object
``{"metric": "domain"}``) that lists the metrics to use exactly.

**Each run's mixture**: a wide mixture CSV (``mixture`` column plus one column per domain, the
format ``bimix train --mixtures`` reads) whose row is named after the run (a one-row file applies
to a single imported run), or else the run's own config: a ``mixture`` mapping ``{domain: share}``
in ``config.json`` / ``config.yaml`` beside the log (W&B's ``config.yaml``, whose entries are
wrapped as ``{value: ...}``, works as it is), or a JSON Lines line holding ``"mixture"``. Every
evaluated domain must be in the mixture (share 0 if the run did not train on it); mixture domains
that were never evaluated become proportion-only rows.

The formats (one reader each; :func:`read_logs` dispatches on the name):

- :func:`read_tensorboard`: event files (``events.out.tfevents.*``), read with TensorBoard's own
  ``EventAccumulator``; a folder is searched recursively and each folder holding event files is one
  run named by its path below the given folder (TensorBoard's own convention).
- :func:`read_wandb`: a run's history exported to files, no network: ``run.history().to_csv()``
  (columns ``_step``, metric names), ``json.dump(list(run.scan_history()))`` or one history row per
  JSON line, and the CSV that the W&B chart menu's "Export CSV" writes (``Step``, ``RUN - metric``,
  ``RUN - metric__MIN``, ``__MAX``; several runs per file).
- :func:`read_hf`: the Hugging Face Trainer's ``trainer_state.json`` (its ``log_history``); a folder
  means its ``trainer_state.json`` or, failing that, its latest ``checkpoint-*/trainer_state.json``.
- :func:`read_jsonl`: one evaluation per line, either wide ``{"step": 100, "eval/web/loss": 3.1,
  ...}`` or long ``{"step": 100, "domain": "web", "loss": 3.1}``, optionally with a ``"run"`` key
  (several runs per file).

Run names default to the file's stem (the folder's name for TensorBoard and Hugging Face);
``run=`` renames a single imported run. The step is the logged training step (W&B: ``_step``, or
``step_key``, e.g. ``train/global_step`` for runs logged by the HF Trainer). When a metric is
logged twice at one step (a resumed run), the later value is kept. Evaluations at step 0 (before
any training) are dropped with a warning: the law needs steps > 0. Every problem raises
:class:`~bimix_bayes.errors.BimixInputError` naming the file (and line, where there is one).

Examples
--------
>>> obs = read_hf(["out/checkpoint-500/trainer_state.json"], mixtures=mix)  # doctest: +SKIP
>>> obs = read_tensorboard(["runs/"], pattern="val/{domain}_loss",
...                        mixtures=read_mixtures("mix.csv"))                # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bimix_bayes._io import read_text_csv
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import validate_mixtures
from bimix_bayes.observations import Observations

FORMATS = ("tensorboard", "wandb", "hf", "jsonl")
#: The metric-name pattern each format uses unless told otherwise.
DEFAULT_PATTERNS = {"tensorboard": "eval/{domain}/loss", "wandb": "eval/{domain}/loss",
                    "hf": "eval_{domain}_loss", "jsonl": "eval/{domain}/loss"}
#: Files beside a log that may hold the run's ``mixture``.
CONFIG_FILES = ("config.json", "config.yaml", "config.yml")
_INSTALL = "pip install 'bimix-bayes[import]'"


class StepZeroWarning(UserWarning):
    """Evaluations logged at step 0 were left out (the law is defined for steps > 0)."""


# --------------------------------------------------------------------------- metric names
@dataclass(frozen=True)
class MetricMap:
    """Which logged metric is the validation loss of which domain.

    Parameters
    ----------
    pattern : str
        A metric name with one ``{domain}`` placeholder, matched in full; the placeholder matches
        any text (``eval_{domain}_loss`` reads ``eval_math_formal_loss`` as ``math_formal``).
    names : mapping, optional
        Metric name -> domain. When given, exactly these metrics are used and ``pattern`` is not.

    Examples
    --------
    >>> m = MetricMap("eval/{domain}/loss")
    >>> m.domain("eval/web/loss"), m.domain("train/loss")
    ('web', None)
    >>> MetricMap(names={"val_loss_gh": "code"}).domain("val_loss_gh")
    'code'
    """

    pattern: str = "eval/{domain}/loss"
    names: Mapping[str, str] | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pattern.count("{domain}") != 1:
            raise BimixInputError(f"the metric pattern must contain {{domain}} once, got "
                                  f"{self.pattern!r}")
        head, tail = self.pattern.split("{domain}")
        object.__setattr__(self, "_regex",
                           re.compile(f"{re.escape(head)}(?P<domain>.+?){re.escape(tail)}"))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MetricMap:
        """Read a mapping file: CSV ``metric,domain`` or a JSON object ``{metric: domain}``."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            data = _load_json(path)
            if not isinstance(data, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in data.items()):
                raise BimixInputError('expected a JSON object {"metric": "domain", ...}', path=path)
            names = {k: v.strip() for k, v in data.items()}
        else:
            frame = read_text_csv(path)
            if list(frame.columns[:2]) != ["metric", "domain"]:
                raise BimixInputError("expected columns metric,domain", path=path, line=1)
            empty = (frame["metric"].str.strip() == "") | (frame["domain"].str.strip() == "")
            if empty.any():
                raise BimixInputError("metric or domain is empty", path=path,
                                      line=int(empty.to_numpy().argmax()) + 2)
            dup = frame["metric"].duplicated()
            if dup.any():
                i = int(dup.to_numpy().argmax())
                raise BimixInputError(f"metric {frame['metric'][i]!r} is listed twice", path=path,
                                      line=i + 2)
            names = dict(zip(frame["metric"].str.strip(), frame["domain"].str.strip(),
                             strict=True))
        if not names:
            raise BimixInputError("the mapping lists no metric", path=path)
        return cls(names=names)

    def domain(self, metric: str) -> str | None:
        """The domain whose loss ``metric`` is, or None for any other metric."""
        if self.names is not None:
            return self.names.get(metric)
        match = self._regex.fullmatch(metric)
        return match["domain"] if match else None

    def describe(self) -> str:
        """How metrics are matched, for error messages."""
        if self.names is not None:
            return f"the mapping's metrics ({', '.join(sorted(self.names))})"
        return f"the pattern {self.pattern!r}"


# --------------------------------------------------------------------------- one run's log
@dataclass
class RunLog:
    """What a reader found for one run: ``(metric, step, value, line)`` records and its config.

    ``line`` is the record's line in ``source`` (None where the format has no lines).
    """

    name: str
    source: Path
    records: list[tuple[str, float, float, int | None]] = field(default_factory=list)
    mixture: Mapping[str, Any] | None = None
    mixture_source: str | None = None


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise BimixInputError("file not found", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BimixInputError(f"not valid JSON ({exc})", path=path) from None


def _config_mixture(folder: Path) -> tuple[Mapping[str, Any] | None, str | None]:
    """The ``mixture`` mapping of a config file in ``folder``, if one holds it."""
    for name in CONFIG_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if path.suffix == ".json":
            data = _load_json(path)
        else:
            try:
                import yaml
            except ImportError:  # pragma: no cover - part of the import extra
                raise BimixInputError(f"reading {name} needs PyYAML ({_INSTALL})",
                                      path=path) from None
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise BimixInputError(f"not valid YAML ({exc})", path=path) from None
        if isinstance(data, dict) and "mixture" in data:
            mixture = data["mixture"]
            if isinstance(mixture, dict) and set(mixture) >= {"value"} and isinstance(
                    mixture["value"], dict):  # W&B's config.yaml wraps every entry
                mixture = mixture["value"]
            if not isinstance(mixture, dict):
                raise BimixInputError("'mixture' must map each domain to its share", path=path)
            return mixture, str(path)
    return None, None


def _number(value: Any) -> float | None:
    """A logged value as a float; None for a missing cell (W&B writes blanks and NaN)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan


# --------------------------------------------------------------------------- the readers
def _tensorboard_runs(paths: Sequence[Path]) -> list[RunLog]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:  # pragma: no cover - part of the import extra
        raise BimixInputError(f"reading TensorBoard logs needs tensorboard ({_INSTALL})") from None
    runs = []
    for path in paths:
        if not path.exists():
            raise BimixInputError("file not found", path=path)
        files = [path] if path.is_file() else sorted(path.rglob("*tfevents*"))
        files = [f for f in files if f.is_file()]
        if not files:
            raise BimixInputError("no TensorBoard event files (events.out.tfevents.*) here",
                                  path=path)
        folders = sorted({f.parent for f in files})
        for folder in folders:
            if path.is_file():
                name, target = folder.resolve().name, path
            else:
                rel = folder.relative_to(path).as_posix()
                name, target = (path.resolve().name if rel == "." else rel), folder
            acc = EventAccumulator(str(target), size_guidance={"scalars": 0, "tensors": 0})
            try:
                acc.Reload()
            except Exception as exc:  # noqa: BLE001 - any unreadable event file is the user's
                raise BimixInputError(f"not a readable TensorBoard event file ({exc})",
                                      path=target) from None
            run = RunLog(name, target)
            tags = acc.Tags()
            for tag in tags.get("scalars", []):
                run.records += [(tag, e.step, float(e.value), None) for e in acc.Scalars(tag)]
            for tag in tags.get("tensors", []):  # TF2's tf.summary.scalar writes tensors
                for e in acc.Tensors(tag):
                    value = tensor_util.make_ndarray(e.tensor_proto)
                    if value.size == 1 and value.dtype.kind == "f":
                        run.records.append((tag, e.step, float(value.reshape(())), None))
            if not run.records:
                raise BimixInputError("no scalar summaries in the event files (empty, or not "
                                      "TensorBoard event files)", path=target)
            run.mixture, run.mixture_source = _config_mixture(folder)
            runs.append(run)
    return runs


def _wandb_runs(paths: Sequence[Path], step_key: str | None) -> list[RunLog]:
    runs = []
    for path in paths:
        if path.suffix.lower() == ".csv":
            frame = read_text_csv(path)
            chart = [c for c in frame.columns if " - " in c]
            if chart and "Step" in frame.columns and step_key is None:
                runs += _wandb_chart_runs(frame, chart, path)
                continue
            rows = frame.to_dict("records")
            lines: Iterable[int] = range(2, len(rows) + 2)
        else:
            text = _read_text(path)
            try:
                data = json.loads(text)
                rows, lines = (data if isinstance(data, list) else [data]), None
            except json.JSONDecodeError:
                rows, lines = _json_lines(text, path)
            if not all(isinstance(r, dict) for r in rows):
                raise BimixInputError("expected W&B history rows (JSON objects)", path=path)
        key = step_key or next((k for k in ("_step", "Step", "step") if rows and k in rows[0]),
                               "_step")
        run = RunLog(path.stem, path)
        for row, line in zip(rows, lines or [None] * len(rows), strict=True):
            if key not in row:
                raise BimixInputError(f"no step column {key!r} (give --step-key)", path=path,
                                      line=line if lines else None)
            step = _number(row[key])
            if step is None:
                continue
            for metric, value in row.items():
                number = _number(value)
                # W&B marks a metric not logged at a step with an empty cell or NaN.
                if metric != key and number is not None and not (
                        math.isnan(number) and str(value).strip().lower() == "nan"):
                    run.records.append((metric, step, number, line))
        run.mixture, run.mixture_source = _config_mixture(path.parent)
        runs.append(run)
    return runs


def _wandb_chart_runs(frame: pd.DataFrame, columns: list[str], path: Path) -> list[RunLog]:
    """The chart menu's CSV: ``Step`` plus ``RUN - metric`` (and ``__MIN``/``__MAX``) columns."""
    by_run: dict[str, RunLog] = {}
    for col in columns:
        if col.endswith(("__MIN", "__MAX")):
            continue
        name, metric = col.split(" - ", 1)
        run = by_run.setdefault(name, RunLog(name, path))
        for i, (step, value) in enumerate(zip(frame["Step"], frame[col], strict=True)):
            s, v = _number(step), _number(value)
            if s is not None and v is not None:
                run.records.append((metric, s, v, i + 2))
    mixture = _config_mixture(path.parent)
    for run in by_run.values():
        run.mixture, run.mixture_source = mixture
    return list(by_run.values())


def _hf_runs(paths: Sequence[Path]) -> list[RunLog]:
    runs = []
    for path in paths:
        state_path = path
        if path.is_dir():
            state_path = path / "trainer_state.json"
            if not state_path.is_file():
                checkpoints = sorted(path.glob("checkpoint-*/trainer_state.json"),
                                     key=lambda p: _checkpoint_number(p.parent.name))
                if not checkpoints:
                    raise BimixInputError("no trainer_state.json here nor in a checkpoint-*/ "
                                          "folder", path=path)
                state_path = checkpoints[-1]
        state = _load_json(state_path)
        if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
            raise BimixInputError("not a Hugging Face trainer_state.json (no 'log_history' list)",
                                  path=state_path)
        folder = state_path.parent
        name_folder = folder.parent if re.fullmatch(r"checkpoint-\d+", folder.name) else folder
        run = RunLog(name_folder.resolve().name, state_path)
        for k, entry in enumerate(state["log_history"]):
            if not isinstance(entry, dict) or "step" not in entry:
                raise BimixInputError(f"log_history entry {k} has no 'step'", path=state_path)
            for metric, value in entry.items():
                if metric not in ("step", "epoch") and (number := _number(value)) is not None:
                    run.records.append((metric, float(entry["step"]), number, None))
        run.mixture, run.mixture_source = _config_mixture(folder)
        if run.mixture is None and name_folder != folder:
            run.mixture, run.mixture_source = _config_mixture(name_folder)
        runs.append(run)
    return runs


def _checkpoint_number(name: str) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", name)
    return int(match[1]) if match else -1


def _jsonl_runs(paths: Sequence[Path], step_key: str | None) -> list[RunLog]:
    key = step_key or "step"
    runs: list[RunLog] = []
    for path in paths:
        rows, lines = _json_lines(_read_text(path), path)
        by_run: dict[str, RunLog] = {}
        for row, line in zip(rows, lines, strict=True):
            if not isinstance(row, dict):
                raise BimixInputError("expected a JSON object", path=path, line=line)
            name = str(row.get("run", path.stem))
            run = by_run.setdefault(name, RunLog(name, path))
            if "mixture" in row:
                if not isinstance(row["mixture"], dict):
                    raise BimixInputError("'mixture' must map each domain to its share",
                                          path=path, line=line)
                run.mixture, run.mixture_source = row["mixture"], f"{path}: line {line}"
            values = {k: v for k, v in row.items() if k not in ("run", "mixture", key)}
            if not values:
                continue
            if key not in row or _number(row[key]) is None:
                raise BimixInputError(f"no {key!r} in this evaluation (give --step-key)",
                                      path=path, line=line)
            step = _number(row[key])
            if "domain" in values and "loss" in values:  # long: one domain per line
                run.records.append((f"\0{values['domain']}", step, _number(values["loss"]), line))
            else:
                run.records += [(m, step, n, line) for m, v in values.items()
                                if (n := _number(v)) is not None]
        if not by_run:
            raise BimixInputError("no evaluations in the file", path=path)
        config = _config_mixture(path.parent)
        for run in by_run.values():
            if run.mixture is None:
                run.mixture, run.mixture_source = config
        runs += by_run.values()
    return runs


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise BimixInputError("file not found", path=path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BimixInputError("not a UTF-8 text file", path=path) from None


def _json_lines(text: str, path: Path) -> tuple[list[Any], list[int]]:
    rows, lines = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BimixInputError(f"not valid JSON ({exc.msg})", path=path, line=i) from None
        lines.append(i)
    if not rows:
        raise BimixInputError("the file is empty", path=path)
    return rows, lines


# --------------------------------------------------------------------------- to observations
def _mixture_of(run: RunLog, mixtures: pd.DataFrame | None, mixtures_source: str,
                n_runs: int) -> pd.Series:
    if mixtures is not None:
        if run.name in mixtures.index:
            return mixtures.loc[run.name]
        if len(mixtures) == 1 and n_runs == 1:
            return mixtures.iloc[0]
        raise BimixInputError(f"no mixture named {run.name!r} (the imported run) among "
                              f"{', '.join(map(repr, mixtures.index))}; name the run with "
                              "--run or add that row", path=mixtures_source)
    if run.mixture is None:
        raise BimixInputError(f"run {run.name!r}: no mixture; give --mixtures MIX.csv (a row "
                              f"named {run.name!r}) or a 'mixture' mapping in "
                              f"{' or '.join(CONFIG_FILES)} beside the log", path=run.source)
    frame = pd.DataFrame([{"mixture": run.name, **{str(k): v for k, v in run.mixture.items()}}])
    return validate_mixtures(frame, source=run.mixture_source or str(run.source)).iloc[0]


def _rows(run: RunLog, metrics: MetricMap, mixture: pd.Series,
          mixture_source: str) -> tuple[list[dict[str, Any]], int]:
    losses: dict[tuple[str, int], tuple[float, str]] = {}
    zero = 0
    for metric, step, value, line in run.records:
        domain = metric[1:] if metric.startswith("\0") else metrics.domain(metric)
        if domain is None:
            continue
        shown = f"domain {domain!r}" if metric.startswith("\0") else f"metric {metric!r}"
        where = {"path": run.source, "line": line}
        if not (math.isfinite(step) and step >= 0 and step == int(step)):
            raise BimixInputError(f"{shown}: step must be a non-negative integer, got {step}",
                                  **where)
        if value is None or not (math.isfinite(value) and value > 0):
            raise BimixInputError(f"{shown} at step {int(step)}: loss must be a positive finite "
                                  f"number, got {value}", **where)
        if domain not in mixture.index:
            raise BimixInputError(
                f"{shown} is domain {domain!r}, which the mixture of run {run.name!r} ("
                f"{mixture_source}) does not list; add it (share 0 if the run did not train on "
                "it) or change the metric mapping", **where)
        if step == 0:
            zero += 1
            continue
        earlier = losses.get((domain, int(step)))
        if earlier is not None and earlier[1] != metric:
            raise BimixInputError(f"metrics {earlier[1]!r} and {metric!r} both give domain "
                                  f"{domain!r} at step {int(step)}", **where)
        losses[(domain, int(step))] = (value, metric)  # a later value (a resumed run) wins
    rows = []
    for domain, share in mixture.items():
        steps = sorted(s for d, s in losses if d == domain)
        rows += [{"run": run.name, "domain": domain, "proportion": share, "step": s,
                  "loss": losses[(domain, s)][0]} for s in steps]
        if not steps:
            rows.append({"run": run.name, "domain": domain, "proportion": share, "step": None,
                         "loss": None})
    return rows, zero


def read_logs(
    fmt: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    pattern: str | None = None,
    mapping: str | os.PathLike[str] | Mapping[str, str] | None = None,
    mixtures: pd.DataFrame | None = None,
    mixtures_source: str = "<mixtures>",
    run: str | None = None,
    step_key: str | None = None,
) -> Observations:
    """Read training logs of format ``fmt`` (one of :data:`FORMATS`) into observations.

    Parameters
    ----------
    fmt : {"tensorboard", "wandb", "hf", "jsonl"}
        The log format.
    paths : sequence of path-like
        Log files or folders (see the module docstring for what each format reads).
    pattern : str, optional
        Metric-name pattern with ``{domain}`` (default :data:`DEFAULT_PATTERNS` of ``fmt``).
    mapping : path-like or mapping, optional
        Metric -> domain, as a dict or a file (:meth:`MetricMap.from_file`); replaces ``pattern``.
    mixtures : DataFrame, optional
        Wide mixtures indexed by name (:func:`bimix_bayes.mixtures.read_mixtures`); each run's row
        is the one named after it. Default: each run's config.
    mixtures_source : str
        Where ``mixtures`` came from, for errors.
    run : str, optional
        The run's name, when the paths hold exactly one run.
    step_key : str, optional
        The column or key holding the training step (W&B, JSON Lines).

    Returns
    -------
    Observations
        Validated; runs in the order found, each mixture domain's evaluations by ascending step.

    Raises
    ------
    BimixInputError
        Naming the file (and line): unreadable logs, no matching metric, a run without a mixture,
        bad losses or steps, duplicate run names.
    """
    if fmt not in FORMATS:
        raise BimixInputError(f"unknown log format {fmt!r}; choose from {', '.join(FORMATS)}")
    if pattern is not None and mapping is not None:
        raise BimixInputError("give a metric pattern or a mapping file, not both")
    if not paths:
        raise BimixInputError("give at least one log file or folder")
    if mapping is None:
        metrics = MetricMap(pattern or DEFAULT_PATTERNS[fmt])
    elif isinstance(mapping, Mapping):
        metrics = MetricMap(names=dict(mapping))
    else:
        metrics = MetricMap.from_file(mapping)
    files = [Path(p) for p in paths]
    if fmt == "tensorboard":
        logs = _tensorboard_runs(files)
    elif fmt == "wandb":
        logs = _wandb_runs(files, step_key)
    elif fmt == "hf":
        logs = _hf_runs(files)
    else:
        logs = _jsonl_runs(files, step_key)
    if run is not None:
        if len(logs) != 1:
            raise BimixInputError(f"--run names one run, but the logs hold {len(logs)}: "
                                  f"{', '.join(r.name for r in logs)}")
        logs[0].name = run
    seen: dict[str, Path] = {}
    for log in logs:
        if log.name in seen:
            raise BimixInputError(f"run name {log.name!r} also comes from {seen[log.name]}; "
                                  "import them separately with --run", path=log.source)
        seen[log.name] = log.source
    rows, zero = [], 0
    for log in logs:
        mixture = _mixture_of(log, mixtures, mixtures_source, len(logs))
        source = mixtures_source if mixtures is not None else (log.mixture_source or "")
        run_rows, run_zero = _rows(log, metrics, mixture, source)
        if not any(r["step"] is not None for r in run_rows):
            found = sorted({m for m, *_ in log.records if not m.startswith("\0")})[:8]
            raise BimixInputError(f"run {log.name!r}: no metric matches {metrics.describe()}; "
                                  f"logged: {', '.join(found) or 'none'}", path=log.source)
        rows += run_rows
        zero += run_zero
    if zero:
        warnings.warn(f"left out {zero} evaluation(s) at step 0 (the law needs steps > 0)",
                      StepZeroWarning, stacklevel=2)
    frame = pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"])
    frame["step"] = frame["step"].astype("Int64")
    return Observations.from_frame(frame, source=", ".join(map(str, files)))


def read_tensorboard(paths: Sequence[str | os.PathLike[str]], **options: Any) -> Observations:
    """TensorBoard event files or folders -> observations (options: :func:`read_logs`)."""
    return read_logs("tensorboard", paths, **options)


def read_wandb(paths: Sequence[str | os.PathLike[str]], **options: Any) -> Observations:
    """W&B history exported to CSV or JSON -> observations (options: :func:`read_logs`)."""
    return read_logs("wandb", paths, **options)


def read_hf(paths: Sequence[str | os.PathLike[str]], **options: Any) -> Observations:
    """Hugging Face ``trainer_state.json`` files or output folders -> observations."""
    return read_logs("hf", paths, **options)


def read_jsonl(paths: Sequence[str | os.PathLike[str]], **options: Any) -> Observations:
    """JSON Lines evaluation logs -> observations (options: :func:`read_logs`)."""
    return read_logs("jsonl", paths, **options)
