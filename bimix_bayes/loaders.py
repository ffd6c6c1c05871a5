"""Loaders for published data-mixing results, converting them to :class:`Observations`.

* :func:`load_regmix`: RegMix (Liu et al. 2024, github.com/sail-sg/regmix): a mixture CSV
  (``index`` + ``train_the_pile_X`` weights) and a loss CSV (``index`` +
  ``metric/the_pile_X_val_loss``), final step only.
* :func:`load_mixinglaws`: Data Mixing Laws (Ye et al. 2024, github.com/yegcjs/mixinglaws):
  whitespace-separated ``checkpoint_path valid_file loss`` lines whose checkpoint path encodes the
  run, its mixture and the step, e.g. ``.../Github-Books3-PileCC//70M_13-0.25-0.125-0.625/4000``.
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
>>> obs = load_olmix("dclm_ratios.csv", "dclm_metrics.csv", step=1, tasks=["lambada"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bimix_bayes._io import read_text_csv
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import ROUNDING_TOL
from bimix_bayes.observations import Observations

#: Training-domain names of mixinglaws checkpoint groups whose folder name does not list them
#: (the 2-domain runs mix Github and Pile-CC, in that order, as in the authors' notebook).
MIXINGLAWS_GROUPS = {"base2": ("Github", "Pile-CC")}

_REGMIX_TRAIN = re.compile(r"^train_the_pile_(?P<name>.+)$")
_REGMIX_VALID = re.compile(r"^metric/the_pile_(?P<name>.+)_val_loss$")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_RUN_DIR = re.compile(rf"^(?:(?P<prefix>.+)_)?(?P<id>\d+)-(?P<props>{_NUMBER}(?:-{_NUMBER})+)$")


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
) -> Observations:
    """Load a RegMix mixture CSV and its loss CSV (one final-step evaluation per run).

    Training column ``train_the_pile_X`` and loss column ``metric/the_pile_X_val_loss`` are the
    same domain ``X`` (e.g. ``pile_cc``). Training domains without a loss column become
    proportion-only rows (trained on, not evaluated).

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

    Examples
    --------
    >>> obs = load_regmix("tests/data/regmix/mixture.csv", "tests/data/regmix/loss.csv",
    ...                   step=1000)
    >>> len(obs.domains), len(obs.evaluated_domains)
    (17, 13)
    """
    if int(step) != step or step <= 0:
        raise BimixInputError(f"step must be a positive integer, got {step}")
    mpath, lpath = Path(mixture_csv), Path(loss_csv)
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
    frame = pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"])
    return Observations.from_frame(frame, source=f"{mpath} + {lpath}")


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
) -> Observations:
    """Load a Data Mixing Laws loss file (``checkpoint_path valid_file loss`` per line).

    The checkpoint path ends in ``<run>/<step>``; the run folder is
    ``[<prefix>_]<id>-<p_1>-...-<p_k>`` (e.g. ``70M_13-0.25-0.125-0.625`` or ``30-0.75-0.0-0.25``),
    the proportions of the ``k`` training domains in order. The validation domain is the
    ``X`` of ``.../pythia-pile.valid.X.bin``. Identical repeated lines are read once.

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

    Examples
    --------
    >>> obs = load_mixinglaws("tests/data/mixinglaws/3mix.txt")
    >>> obs.domains
    ['Github', 'Books3', 'Pile-CC']
    """
    path = Path(path)
    if unmatched not in ("error", "drop", "target"):
        raise BimixInputError(f"unmatched must be 'error', 'drop' or 'target', got {unmatched!r}")
    if not path.is_file():
        raise BimixInputError("file not found", path=path)
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
        run = parts[-2]
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
    frame = pd.DataFrame(rows, columns=["run", "domain", "proportion", "step", "loss"])
    return Observations.from_frame(frame, source=str(path))


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
