"""Loaders for published data-mixing results, converting them to :class:`Observations`.

* :func:`load_regmix`: RegMix (Liu et al. 2024, github.com/sail-sg/regmix): a mixture CSV
  (``index`` + ``train_the_pile_X`` weights) and a loss CSV (``index`` +
  ``metric/the_pile_X_val_loss``), final step only.
* :func:`load_mixinglaws`: Data Mixing Laws (Ye et al. 2024, github.com/yegcjs/mixinglaws):
  whitespace-separated ``checkpoint_path valid_file loss`` lines whose checkpoint path encodes the
  run, its mixture and the step, e.g. ``.../Github-Books3-PileCC//70M_13-0.25-0.125-0.625/4000``.
* :func:`load_mixinglaws_sizes`, :func:`load_regmix_sizes`: every model size of a dataset as one
  set of observations with a ``params`` column (the size axis); the single-file loaders add that
  column too when the file name names a size (``70M.txt``, ``test_mixture_60m.csv``).
* :func:`load_olmix`: an Olmix swarm (github.com/allenai/olmix): a ratios CSV (domain weights per
  run) and a metrics CSV (downstream bits-per-byte per run), final step only; the tasks are
  target domains that no run trains on.

All name each problem with the file and line. Published proportions are rounded (RegMix to three
decimals, so rows sum to 0.996-1.003); rows whose sum is within ``sum_tol`` of 1 are rescaled to
sum to 1, larger deviations are errors. Zero proportions load as they are.

Examples
--------
>>> obs = load_regmix("train_mixture_1m.csv", "train_pile_loss_1m.csv", step=1000)  # doctest: +SKIP
>>> obs = load_mixinglaws("3Mix/70M.txt")                                          # doctest: +SKIP
>>> obs = load_mixinglaws_sizes("3Mix")                   # 70M + 160M + 410M    # doctest: +SKIP
>>> obs = load_regmix_sizes("regmix/data")                # 1M + 60M + 1B        # doctest: +SKIP
>>> obs = load_olmix("dclm_ratios.csv", "dclm_metrics.csv", step=1, tasks=["lambada"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bimix_bayes._io import read_text_csv
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import ROUNDING_TOL
from bimix_bayes.observations import PARAMS, Observations

#: Training-domain names of mixinglaws checkpoint groups whose folder name does not list them
#: (the 2-domain runs mix Github and Pile-CC, in that order, as in the authors' notebook).
MIXINGLAWS_GROUPS = {"base2": ("Github", "Pile-CC")}

_REGMIX_TRAIN = re.compile(r"^train_the_pile_(?P<name>.+)$")
_REGMIX_VALID = re.compile(r"^metric/the_pile_(?P<name>.+)_val_loss$")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_RUN_DIR = re.compile(rf"^(?:(?P<prefix>.+)_)?(?P<id>\d+)-(?P<props>{_NUMBER}(?:-{_NUMBER})+)$")
#: A model-size name: a number and a unit letter, either case (RegMix writes ``1m``, ``60m``).
_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[kmbt])$", re.IGNORECASE)
_SIZE_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def nominal_size(name: str) -> float | None:
    """The parameter count a size name stands for, or None when ``name`` is no size name.

    ``M`` is a million and ``B`` a billion in either case (RegMix's files say ``1m`` and ``60m``).
    The result is the **nominal** size the name rounds to (Pythia's "70M" has 70.4M parameters
    in all, 19M without embeddings; RegMix's "1M" counts 1.3M non-embedding parameters), which is
    all the published files tell.

    Examples
    --------
    >>> nominal_size("70M"), nominal_size("1B"), nominal_size("60m"), nominal_size("proportions")
    (70000000.0, 1000000000.0, 60000000.0, None)
    """
    match = _SIZE.match(name.strip())
    if match is None:
        return None
    return float(match["number"]) * _SIZE_UNITS[match["unit"].lower()]


def _file_size(params: float | bool | None, label: str | None, path: Path) -> float | None:
    """The ``params`` of every run of one file: from its size name ``label``, given, or none.

    ``params`` None: the label's size when it is one, else no column; True: the label's size,
    required; False: no column; a number: that size.
    """
    if params is False:
        return None
    if params is None or params is True:
        size = None if label is None else nominal_size(label)
        if size is None and params is True:
            raise BimixInputError(f"the file name does not name a model size ({label!r}; "
                                  "expected e.g. 70M, 410M, 1B); pass params=<parameters>",
                                  path=path)
        return size
    size = float(params)
    if not np.isfinite(size) or size <= 0:
        raise BimixInputError(f"params must be a positive number of parameters, got {params!r}",
                              path=path)
    return size


def _normalise(name: str) -> str:
    """Spelling-insensitive key for matching training and validation domain names."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _rescale(props: np.ndarray, sum_tol: float, path: Path, line: int, what: str) -> np.ndarray:
    total = props.sum()
    if not np.all(np.isfinite(props)) or np.any(props < 0):
        raise BimixInputError(f"{what}: proportions must be finite and >= 0", path=path, line=line)
    if abs(total - 1.0) > sum_tol:
        raise BimixInputError(f"{what}: proportions sum to {total:.6g}, more than {sum_tol} "
                              "from 1", path=path, line=line)
    return props / total


def _row_proportions(record: Mapping[str, str], columns: Iterable[str], sum_tol: float,
                     path: Path, line: int, what: str) -> np.ndarray:
    """The numbers of ``columns`` in one CSV record, checked and rescaled to sum to 1."""
    props = pd.to_numeric(pd.Series([record[c] for c in columns]).str.strip(), errors="coerce")
    return _rescale(props.to_numpy(dtype=float), sum_tol, path, line, what)


def _positive(row: pd.Series, column: str, path: Path, line: int) -> float:
    """``row[column]`` as a positive finite number (a loss, bits per byte)."""
    value = pd.to_numeric(str(row[column]).strip(), errors="coerce")
    if not np.isfinite(value) or value <= 0:
        raise BimixInputError(f"{column} must be a positive number, got {row[column]!r}",
                              path=path, line=line)
    return float(value)


def _match_runs(left: pd.DataFrame, lpath: Path, right: pd.DataFrame, rpath: Path, key: str,
                lacking: str) -> dict[str, int]:
    """The file line of each run of ``right``; both files must list the same runs in ``key``."""
    line = {run: i + 2 for i, run in enumerate(right[key])}
    missing = [i for i, run in enumerate(left[key]) if run not in line]
    if missing:
        raise BimixInputError(f"run {left[key][missing[0]]!r} has no row in {rpath}",
                              path=lpath, line=missing[0] + 2)
    extra = sorted(set(line) - set(left[key]), key=line.get)
    if extra:
        raise BimixInputError(f"run {extra[0]!r} has no {lacking} in {lpath}", path=rpath,
                              line=line[extra[0]])
    return line


def load_regmix(
    mixture_csv: str | os.PathLike[str],
    loss_csv: str | os.PathLike[str],
    *,
    step: int,
    run_prefix: str = "",
    sum_tol: float = ROUNDING_TOL,
    params: float | bool | None = None,
) -> Observations:
    """Load a RegMix mixture CSV and its loss CSV (one final-step evaluation per run).

    Training column ``train_the_pile_X`` and loss column ``metric/the_pile_X_val_loss`` are the
    same domain ``X`` (e.g. ``pile_cc``). Training domains without a loss column become
    proportion-only rows (trained on, not evaluated). When the mixture file's name ends in a
    size (``test_mixture_60m.csv``), every run gets that **nominal** size as ``params``
    (see :func:`nominal_size`; RegMix's "1M" models have 1.3M non-embedding parameters).

    Parameters
    ----------
    mixture_csv, loss_csv : path-like
        The two files; their ``index`` columns must list the same runs.
    step : int
        The training step of the final evaluation (RegMix files do not record it).
    run_prefix : str
        Prepended to each ``index`` to name the run (e.g. ``"1m-"``).
    sum_tol : float
        Mixture rows summing within this of 1 are rescaled to 1 (the files round to 1e-3).
    params : float or bool, optional
        The runs' model size in parameters. Default: the size the mixture file's name ends in
        (``_1m``, ``_60m``, ``_1B``), or no ``params`` column when it names none; True requires
        such a name; False adds no column.

    Examples
    --------
    >>> obs = load_regmix("tests/data/regmix/mixture.csv", "tests/data/regmix/loss.csv",
    ...                   step=1000)
    >>> len(obs.domains), len(obs.evaluated_domains), obs.sizes is None
    (17, 13, True)
    """
    if int(step) != step or step <= 0:
        raise BimixInputError(f"step must be a positive integer, got {step}")
    mpath, lpath = Path(mixture_csv), Path(loss_csv)
    size = _file_size(params, mpath.stem.rsplit("_", 1)[-1], mpath)
    mix, loss = read_text_csv(mpath), read_text_csv(lpath)
    for frame, path, pattern, kind in ((mix, mpath, _REGMIX_TRAIN, "train_the_pile_X"),
                                       (loss, lpath, _REGMIX_VALID, "metric/the_pile_X_val_loss")):
        if "index" not in frame.columns:
            raise BimixInputError("missing column 'index'", path=path, line=1)
        bad = [c for c in frame.columns if c != "index" and not pattern.match(c)]
        if bad:
            raise BimixInputError(f"unexpected column {bad[0]!r}; expected {kind} columns",
                                  path=path, line=1)
        dup = frame["index"].duplicated()
        if dup.any():
            i = int(np.argmax(dup.to_numpy()))
            raise BimixInputError(f"duplicate index {frame['index'][i]!r}", path=path, line=i + 2)
    train = {c: _REGMIX_TRAIN.match(c)["name"] for c in mix.columns if c != "index"}
    valid = {c: _REGMIX_VALID.match(c)["name"] for c in loss.columns if c != "index"}
    unknown = sorted(set(valid.values()) - set(train.values()))
    if unknown:
        raise BimixInputError(f"loss column(s) for domain(s) {', '.join(unknown)} have no "
                              "train_the_pile_ column in the mixture file", path=lpath, line=1)
    loss_line = _match_runs(mix, mpath, loss, lpath, "index", "mixture")

    rows = []
    for i, rec in enumerate(mix.to_dict("records")):
        idx, line = rec["index"], i + 2
        props = _row_proportions(rec, train, sum_tol, mpath, line, f"run {idx!r}")
        lrow = loss.iloc[loss_line[idx] - 2]
        losses = {name: _positive(lrow, col, lpath, loss_line[idx]) for col, name in valid.items()}
        for name, prop in zip(train.values(), props, strict=True):
            evaluated = name in losses
            rows.append((f"{run_prefix}{idx}", name, prop, int(step) if evaluated else None,
                         losses.get(name)))
    frame = _with_size(pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"]),
                       size)
    return Observations.from_frame(frame, source=f"{mpath} + {lpath}")


def _with_size(frame: pd.DataFrame, size: float | None) -> pd.DataFrame:
    """``frame`` with a ``params`` column holding ``size`` on every row (unchanged for None)."""
    return frame if size is None else frame.assign(**{PARAMS: size})


#: RegMix's released model sizes (the suffix of their file names) and the step of each size's
#: final evaluation, which the files do not record. 1M and 60M: 1,000 steps of 512 sequences of
#: 2,048 tokens (1B tokens; ``SELECT_STEP = 1000`` in regression_fitting/collect_loss_data.py,
#: ``max_step: 1001`` in mixture_config/synthesize_proxy_configs.py); 1B: 25,000 steps of the same
#: batch (25B tokens; ``max_step = 25000`` in model_training/pretrain/tinyllama.py), as the paper
#: states (1M and 60M on 1B tokens, 1B on 25B).
REGMIX_STEPS = {"1m": 1000, "60m": 1000, "1B": 25000}


def load_regmix_sizes(
    folder: str | os.PathLike[str],
    sizes: Sequence[str] | None = None,
    *,
    swarm: bool = False,
    sum_tol: float = ROUNDING_TOL,
) -> Observations:
    """Load RegMix's held-out mixtures at every model size (1M, 60M, 1B) as one set of runs.

    Reads ``test_mixture_{size}.csv`` with ``test_pile_loss_{size}.csv`` for each size of
    :data:`REGMIX_STEPS`, each at its final step, with the nominal size as ``params`` and runs
    named ``{size}-{index}`` (``1m-12``, ``60m-12``, ``1B-12``). The 1M and 60M files hold the
    same 256 mixtures (equal ``index``, equal mixture: a size pair per mixture); the 64 1B
    mixtures (``index`` 0-63) are others, none of them among the 1M or 60M mixtures (nor the
    512 of the 1M swarm), so the 1B runs share no mixture with the smaller sizes.

    Parameters
    ----------
    folder : path-like
        RegMix's ``data/`` folder.
    sizes : sequence of str, optional
        Some of ``1m``, ``60m``, ``1B`` (any case); default all three.
    swarm : bool
        Also load the 512-run 1M training swarm (``train_mixture_1m.csv`` with
        ``train_pile_loss_1m.csv``) as runs ``1m-train-{index}``.
    sum_tol : float
        Mixture rows summing within this of 1 are rescaled to 1.

    Raises
    ------
    BimixInputError
        An unknown size, or a missing or malformed file (named).

    Examples
    --------
    >>> obs = load_regmix_sizes("../shared/data/regmix/data")           # doctest: +SKIP
    >>> obs.distinct_sizes, len(obs.runs)                                # doctest: +SKIP
    ([1000000.0, 60000000.0, 1000000000.0], 576)
    """
    folder = Path(folder)
    labels = {label.lower(): label for label in REGMIX_STEPS}
    chosen = list(REGMIX_STEPS) if sizes is None else [str(s) for s in sizes]
    unknown = [s for s in chosen if s.lower() not in labels]
    if unknown or not chosen:
        raise BimixInputError(f"unknown RegMix size {unknown[0]!r}; the sizes are "
                              f"{', '.join(REGMIX_STEPS)}" if unknown else "no sizes given",
                              path=folder)
    parts = []
    for label in dict.fromkeys(labels[s.lower()] for s in chosen):
        step = REGMIX_STEPS[label]
        parts.append(load_regmix(folder / f"test_mixture_{label}.csv",
                                 folder / f"test_pile_loss_{label}.csv", step=step,
                                 run_prefix=f"{label}-", sum_tol=sum_tol, params=True))
        if swarm and label == "1m":
            parts.append(load_regmix(folder / "train_mixture_1m.csv",
                                     folder / "train_pile_loss_1m.csv", step=step,
                                     run_prefix="1m-train-", sum_tol=sum_tol, params=True))
    return Observations.concat(parts, source=str(folder))


#: Columns of an Olmix swarm file that name the run rather than a domain or a task: the unnamed
#: row number pandas wrote, the wandb run id, the run's name and its index in the swarm.
OLMIX_META = ("", "run", "name", "index")


def load_olmix(
    ratios_csv: str | os.PathLike[str],
    metrics_csv: str | os.PathLike[str],
    *,
    step: int,
    tasks: Sequence[str] | None = None,
    sum_tol: float = ROUNDING_TOL,
) -> Observations:
    """Load an Olmix swarm: domain weights and downstream bits-per-byte, one final step per run.

    Both files carry the columns :data:`OLMIX_META` (``run`` names the run) and, in the ratios
    file, one column per training domain (its weight), in the metrics file one column per
    downstream task (bits per byte, e.g. ``arc_easy:rc::olmes``). Each task becomes a **target**
    domain: evaluated in every run, trained on by none (proportion 0), so that a law predicts it
    from the training domains' shares. The values are bits per byte, not nats per token; the
    relative error of a prediction does not depend on the unit.

    Parameters
    ----------
    ratios_csv, metrics_csv : path-like
        The two files; their ``run`` columns must list the same runs.
    step : int
        The training step of the evaluation (the files do not record it).
    tasks : sequence of str, optional
        Metric columns to keep (default: all).
    sum_tol : float
        Weight rows summing within this of 1 are rescaled to 1.

    Examples
    --------
    >>> obs = load_olmix("tests/data/olmix/ratios.csv", "tests/data/olmix/metrics.csv", step=1,
    ...                  tasks=["lambada", "hellaswag:rc::olmes"])
    >>> len(obs.runs), obs.evaluated_domains
    (6, ['lambada', 'hellaswag:rc::olmes'])
    """
    if int(step) != step or step <= 0:
        raise BimixInputError(f"step must be a positive integer, got {step}")
    rpath, mpath = Path(ratios_csv), Path(metrics_csv)
    ratios, metrics = read_text_csv(rpath), read_text_csv(mpath)
    for frame, path in ((ratios, rpath), (metrics, mpath)):
        if "run" not in frame.columns:
            raise BimixInputError("missing column 'run'", path=path, line=1)
        dup = frame["run"].duplicated()
        if dup.any():
            i = int(np.argmax(dup.to_numpy()))
            raise BimixInputError(f"duplicate run {frame['run'][i]!r}", path=path, line=i + 2)
    domains = [c for c in ratios.columns if c not in OLMIX_META]
    available = [c for c in metrics.columns if c not in OLMIX_META]
    if not domains:
        raise BimixInputError("no domain columns besides run, name, index", path=rpath, line=1)
    chosen = available if tasks is None else list(tasks)
    unknown = [t for t in chosen if t not in available]
    if unknown or not chosen:
        raise BimixInputError(f"no metric column {unknown[0]!r}" if unknown else
                              "no task columns besides run, name, index", path=mpath, line=1)
    clash = sorted(set(chosen) & set(domains))
    if clash:
        raise BimixInputError(f"task {clash[0]!r} is also a training domain of {rpath}",
                              path=mpath, line=1)
    metric_line = _match_runs(ratios, rpath, metrics, mpath, "run", "ratios")

    rows = []
    for i, rec in enumerate(ratios.to_dict("records")):
        run, line = rec["run"], i + 2
        props = _row_proportions(rec, domains, sum_tol, rpath, line, f"run {run!r}")
        rows.extend((run, d, float(p), None, None) for d, p in zip(domains, props, strict=True))
        mrow = metrics.iloc[metric_line[run] - 2]
        rows.extend((run, task, 0.0, int(step), _positive(mrow, task, mpath, metric_line[run]))
                    for task in chosen)
    frame = pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"])
    return Observations.from_frame(frame, source=f"{rpath} + {mpath}")


def load_mixinglaws(
    path: str | os.PathLike[str],
    *,
    domains: Sequence[str] | None = None,
    validation: Mapping[str, str] | None = None,
    unmatched: str = "error",
    last_step: int | None = None,
    skip_non_mixture: bool = False,
    sum_tol: float = 1e-3,
    params: float | bool | None = None,
) -> Observations:
    """Load a Data Mixing Laws loss file (``checkpoint_path valid_file loss`` per line).

    The checkpoint path ends in ``<run>/<step>``; the run folder is
    ``[<prefix>_]<id>-<p_1>-...-<p_k>`` (e.g. ``70M_13-0.25-0.125-0.625`` or ``30-0.75-0.0-0.25``),
    the proportions of the ``k`` training domains in order. The validation domain is the
    ``X`` of ``.../pythia-pile.valid.X.bin``. Identical repeated lines are read once.

    The published files are named for their model size (``70M.txt`` ... ``1B.txt``). Such a file's
    runs get a ``params`` column with the **nominal** size the file is named for (70M -> 7e7, the
    Pythia-style total-parameter name; see :func:`nominal_size`), and run folders that carry no
    prefix (``3Mix/410M.txt``) are named ``<size>_<folder>`` (``410M_30-0.75-0.0-0.25``), so that
    the runs of one dataset's size files stay apart, as the other files' ``70M_...`` folders are.

    Parameters
    ----------
    path : path-like
        The loss file.
    domains : sequence of str, optional
        Names of the ``k`` training domains in path order. Default: the checkpoint group folder
        before the run folder when it lists ``k`` names joined by ``-`` (``Github-Books3-PileCC``)
        or is in :data:`MIXINGLAWS_GROUPS`; otherwise an error asks for them.
    validation : mapping, optional
        Validation-domain name -> training-domain name, for names that do not match by spelling
        (matching ignores case and punctuation, so ``Pile-CC`` is ``PileCC``). A matched domain
        takes the validation file's spelling.
    unmatched : {"error", "drop", "target"}
        What to do with validation domains that are no training domain (the 5-domain and
        RedPajama runs are evaluated on 22 Pile domains): raise, drop them, or keep them as
        **target** domains (proportion 0 in every run; a law with cross-domain terms, such as
        ``transfer``, predicts them from the training domains' shares).
    last_step : int, optional
        Some runs also have a checkpoint named ``last``. Default: drop those lines (in the
        published files they repeat the highest numbered checkpoint, with one run disagreeing);
        an integer reads them as that step.
    skip_non_mixture : bool
        Skip lines whose checkpoint encodes no mixture (the base model of continual-training
        files such as ``ct/70M.txt``) instead of raising.
    sum_tol : float
        Proportions summing within this of 1 are rescaled to 1 (paths carry rounded numbers).
    params : float or bool, optional
        The runs' model size in parameters. Default: the nominal size the file name's stem names
        (``70M``), or no ``params`` column when it names none (``3mix.txt``); True requires a size
        name; False adds no column (and no run prefix).

    Examples
    --------
    >>> obs = load_mixinglaws("tests/data/mixinglaws/3mix.txt")
    >>> obs.domains, obs.sizes is None
    (['Github', 'Books3', 'Pile-CC'], True)
    """
    path = Path(path)
    if unmatched not in ("error", "drop", "target"):
        raise BimixInputError(f"unmatched must be 'error', 'drop' or 'target', got {unmatched!r}")
    if not path.is_file():
        raise BimixInputError("file not found", path=path)
    size = _file_size(params, path.stem, path)
    # Only a file named for its size prefixes the run folders that lack one.
    label = path.stem if size is not None and nominal_size(path.stem) is not None else None
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise BimixInputError(f"not a text file ({exc})", path=path) from None

    records: dict[tuple[str, str, int], tuple[float, int]] = {}
    runs: dict[str, tuple[np.ndarray, str, int]] = {}  # run -> (proportions, group, first line)
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        fields = raw.split()
        if len(fields) != 3:
            raise BimixInputError(f"expected 3 fields (checkpoint path, validation file, loss), "
                                  f"got {len(fields)}", path=path, line=line)
        ckpt, vfile, loss_text = fields
        parts = [p for p in ckpt.split("/") if p]
        match = _RUN_DIR.match(parts[-2]) if len(parts) >= 2 else None
        if match is None:
            if skip_non_mixture:
                continue
            raise BimixInputError(f"checkpoint path {ckpt!r} does not end in "
                                  "<id>-<p1>-...-<pk>/<step> (pass skip_non_mixture=True to skip "
                                  "base-model lines)", path=path, line=line)
        step_text = parts[-1]
        if step_text == "last":
            if last_step is None:
                continue
            step = int(last_step)
        elif step_text.isdigit() and int(step_text) > 0:
            step = int(step_text)
        else:
            raise BimixInputError(f"step {step_text!r} is not a positive integer or 'last'",
                                  path=path, line=line)
        try:
            loss = float(loss_text)
        except ValueError:
            loss = float("nan")
        if not np.isfinite(loss) or loss <= 0:
            raise BimixInputError(f"loss must be a positive number, got {loss_text!r}",
                                  path=path, line=line)
        run = parts[-2] if label is None or match["prefix"] else f"{label}_{parts[-2]}"
        props = np.array([float(p) for p in match["props"].split("-")])
        if run not in runs:
            props = _rescale(props, sum_tol, path, line, f"run {run!r}")
            group = parts[-3] if len(parts) >= 3 else ""
            runs[run] = (props, group, line)
        vname = _validation_name(vfile)
        key = (run, vname, step)
        if key in records and records[key][0] != loss:
            raise BimixInputError(f"run {run!r}, validation {vname!r}, step {step}: loss {loss} "
                                  f"here but {records[key][0]} at line {records[key][1]}",
                                  path=path, line=line)
        records.setdefault(key, (loss, line))
    if not records:
        raise BimixInputError("no loss lines", path=path)

    k = {len(p) for p, _, _ in runs.values()}
    if len(k) > 1:
        raise BimixInputError(f"runs mix different numbers of training domains: {sorted(k)}",
                              path=path)
    names = _training_names(domains, runs, k.pop(), path)
    by_key = {_normalise(n): n for n in names}
    vmap = {v: by_key.get(_normalise((validation or {}).get(v, v))) for v in
            dict.fromkeys(v for _, v, _ in records)}
    lost = [v for v, t in vmap.items() if t is None]
    if lost and unmatched == "error":
        raise BimixInputError(
            f"validation domain(s) {', '.join(lost)} match no training domain "
            f"({', '.join(names)}); map them with validation={{...}}, keep them as targets "
            "with unmatched='target' or drop them with unmatched='drop'", path=path)
    # A matched training domain takes its validation spelling (``PileCC`` -> ``Pile-CC``).
    spelling = {t: v for v, t in vmap.items() if t is not None}
    final = [spelling.get(n, n) for n in names]

    rows = []
    targets = lost if unmatched == "target" else []
    # A target keeps its own name and gets proportion 0 in every run.
    vmap.update({t: t for t in targets})
    losses: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for (run, v, step), (loss, _) in records.items():
        if vmap[v] is not None:
            losses.setdefault((run, vmap[v]), []).append((step, loss))
    for run, (props, _, _) in runs.items():
        for name, shown, prop in [*zip(names, final, props, strict=True),
                                  *((t, t, 0.0) for t in targets)]:
            evaluated = sorted(losses.get((run, name), []))
            rows.extend((run, shown, float(prop), s, loss) for s, loss in evaluated)
            if not evaluated and name not in targets:
                rows.append((run, shown, float(prop), None, None))
    frame = _with_size(pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"]),
                       size)
    return Observations.from_frame(frame, source=str(path))


def load_mixinglaws_sizes(
    folder: str | os.PathLike[str],
    sizes: Sequence[str] | None = None,
    **kwargs: Any,
) -> Observations:
    """Load every model size of one Data Mixing Laws dataset folder as one set of runs.

    Each ``<size>.txt`` of ``folder`` (``70M.txt``, ``160M.txt``, ... ``1B.txt``; other files
    such as ``proportions.txt`` are no size files and are left alone) is read by
    :func:`load_mixinglaws` with its nominal size as ``params``; the runs are joined with
    :meth:`Observations.concat`. Runs at different sizes may share a mixture (the same id and
    proportions); their names differ by the size prefix.

    Parameters
    ----------
    folder : path-like
        A dataset folder, e.g. ``mixinglaws/data/3Mix``.
    sizes : sequence of str, optional
        The sizes to read, as file stems (``["70M", "160M"]``); default every size file,
        smallest first.
    **kwargs
        Passed to :func:`load_mixinglaws` for every file: ``domains=`` and ``unmatched="target"``
        (or ``"drop"``) for 5Mix and RedPajama, whose runs are evaluated on the Pile's domains,
        ``sum_tol=`` for RedPajama's run 999 (its shares sum to 1.02), ``last_step=``, ...

    Raises
    ------
    BimixInputError
        No size file in ``folder``, a size that is no size name or has no file, ``params`` in
        ``kwargs``, or any problem of a file (named by :func:`load_mixinglaws`).

    Examples
    --------
    >>> obs = load_mixinglaws_sizes("../shared/data/mixinglaws/data/3Mix")    # doctest: +SKIP
    >>> obs.distinct_sizes                                                     # doctest: +SKIP
    [70000000.0, 160000000.0, 410000000.0]
    """
    folder = Path(folder)
    if "params" in kwargs:
        raise BimixInputError("params comes from each file's name here; load one file with "
                              "load_mixinglaws(path, params=...) to set it", path=folder)
    if not folder.is_dir():
        raise BimixInputError("folder not found", path=folder)
    if sizes is None:
        files = sorted((p for p in folder.glob("*.txt") if nominal_size(p.stem) is not None),
                       key=lambda p: nominal_size(p.stem))
        if not files:
            raise BimixInputError("no size files (such as 70M.txt or 1B.txt) in this folder",
                                  path=folder)
    else:
        files = []
        for size in dict.fromkeys(str(s) for s in sizes):
            path = folder / f"{size}.txt"
            if nominal_size(size) is None:
                raise BimixInputError(f"{size!r} is no model size (expected e.g. 70M, 410M, 1B)",
                                      path=path)
            if not path.is_file():
                raise BimixInputError("file not found", path=path)
            files.append(path)
        if not files:
            raise BimixInputError("no sizes given", path=folder)
    parts = [load_mixinglaws(path, params=True, **kwargs) for path in files]
    return Observations.concat(parts, source=str(folder))


def _validation_name(vfile: str) -> str:
    """``.../pythia-pile.valid.Github.bin`` -> ``Github``; other names lose ``.bin`` only."""
    base = vfile.rstrip("/").split("/")[-1].removesuffix(".bin")
    return base.split(".valid.", 1)[1] if ".valid." in base else base


def _training_names(domains: Sequence[str] | None, runs: dict, k: int, path: Path) -> list[str]:
    if domains is not None:
        names = list(domains)
        if len(names) != k:
            raise BimixInputError(f"domains lists {len(names)} names but the runs mix {k} "
                                  "training domains", path=path)
        return names
    groups = {g for _, g, _ in runs.values()}
    for group in groups:
        names = list(MIXINGLAWS_GROUPS.get(group, group.split("-")))
        if len(names) == k and len(groups) == 1:
            return names
    raise BimixInputError(f"cannot tell the names of the {k} training domains from the "
                          f"checkpoint folder(s) {', '.join(sorted(groups))}; pass domains=[...]",
                          path=path)
