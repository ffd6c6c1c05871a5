"""Training proxy models on mixtures and logging per-domain validation losses as observations.

:func:`train` trains one run per mixture and seed. Every evaluation appends one row per corpus domain
(zero-proportion domains included) to the observations CSV at once, so a crash loses nothing that
was evaluated. A checkpoint (model, optimiser, data position, step) is written atomically after
every evaluation and every ``checkpoint_every`` steps; rerunning the same command after a crash (even
SIGKILL) resumes from it and writes exactly the rows an uninterrupted run writes. Randomness is a
pure function of ``(seed, step, rank)`` (window positions) and ``seed`` (initial weights), so the
step number and the sampler's carried deficit are the whole random state.

Layouts (see :mod:`bimix_bayes.trainer.distributed`):

- one process: the runs one after another on one device;
- ``torchrun --nproc_per_node=K -m bimix_bayes.cli train ... --distribute data``: each run in turn
  is data-parallel (DDP) over K devices, every rank taking its slice of each step's batch;
- ``... --distribute mixtures``: rank k trains runs k, k+K, ... alone on its own device.

Examples
--------
>>> import tempfile, pandas as pd
>>> from bimix_bayes.corpus import Corpus, build_corpus
>>> from bimix_bayes.trainer.preset import Preset
>>> tmp = tempfile.mkdtemp()
>>> corpus = Corpus.open(build_corpus({"a": ["abab " * 40] * 4, "b": ["xyz " * 50] * 4},
...                                   tmp + "/corpus"))
>>> preset = Preset.from_dict({"name": "micro", "model": {"n_layer": 1, "n_head": 2, "n_embd": 16,
...     "block_size": 16}, "train": {"batch_size": 4, "micro_batch_size": 4, "eval_sequences": 2}})
>>> mixtures = pd.DataFrame({"a": [0.5], "b": [0.5]}, index=pd.Index(["m"], name="mixture"))
>>> obs = train(corpus, mixtures, preset, tmp + "/obs.csv", steps=4, progress=False)
>>> obs.runs, obs.steps
(['m-seed0'], [1, 2, 3, 4])
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bimix_bayes._io import atomic_path
from bimix_bayes.corpus import Corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import validate_mixtures
from bimix_bayes.observations import Observations
from bimix_bayes.trainer.distributed import Layout
from bimix_bayes.trainer.model import GPT
from bimix_bayes.trainer.obslog import ObservationLog, RunClaims
from bimix_bayes.trainer.preset import Preset, TrainConfig, preset_for
from bimix_bayes.trainer.sampling import MixtureSampler

DISTRIBUTE = ("data", "mixtures")


def eval_schedule(steps: int, eval_steps: Sequence[int] | None = None, n_evals: int = 8) -> list[int]:
    """The steps at which to evaluate: ``eval_steps`` checked, or ``n_evals`` log-spaced ones.

    The log-spaced schedule runs from ``steps / 32`` to ``steps`` (always included), which resolves
    the power law in steps without spending evaluations on the warm-up transient.

    Examples
    --------
    >>> eval_schedule(1000)
    [31, 51, 84, 138, 226, 371, 609, 1000]
    >>> eval_schedule(100, [50, 10, 100])
    [10, 50, 100]
    """
    if steps < 1:
        raise BimixInputError(f"steps must be >= 1, got {steps}")
    if eval_steps is not None:
        bad = [s for s in eval_steps if not 1 <= int(s) <= steps]
        if bad:
            raise BimixInputError(f"eval steps must lie in 1..{steps}, got {bad}")
        if not eval_steps:
            raise BimixInputError("eval steps are empty")
        return sorted({int(s) for s in eval_steps})
    if n_evals < 1:
        raise BimixInputError(f"the number of evaluations must be >= 1, got {n_evals}")
    grid = np.geomspace(max(1.0, steps / 32), steps, n_evals)
    return sorted({int(s) for s in np.floor(grid).astype(int)} | {steps})


def lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """Learning rate of update ``step`` (1-based): linear warm-up, then cosine or exponential decay.

    Examples
    --------
    >>> cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_fraction=0.1)
    >>> [round(lr_at(s, 100, cfg), 6) for s in (5, 10, 100)]
    [0.0005, 0.001, 0.0001]
    """
    warmup = round(cfg.warmup_fraction * steps)
    if step <= warmup:
        return cfg.lr * step / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    if cfg.schedule == "exponential":
        return cfg.lr * (cfg.min_lr / cfg.lr) ** progress
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


@dataclasses.dataclass(frozen=True)
class _Job:
    run: str
    mixture: str
    proportions: tuple[float, ...]
    seed: int


def train(
    corpus: Corpus,
    mixtures: pd.DataFrame,
    preset: Preset,
    out: str | os.PathLike[str],
    *,
    steps: int,
    seeds: int | Sequence[int] = 0,
    eval_steps: Sequence[int] | None = None,
    n_evals: int = 8,
    device: str | None = None,
    compile: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: bool = False,
    distribute: str = "data",
    threads: int | None = None,
    progress: bool = True,
) -> Observations | None:
    """Train one proxy model per mixture and seed, appending per-domain validation losses to ``out``.

    Parameters
    ----------
    corpus : Corpus
        The token corpus; its domains must be exactly the mixture columns.
    mixtures : pandas.DataFrame
        Index ``mixture``, one proportion column per corpus domain (as from
        :func:`bimix_bayes.mixtures.read_mixtures`).
    preset : Preset
        Model shape and optimisation recipe.
    out : path-like
        Observations CSV (``run,domain,proportion,step,loss,params,tokens,model,seed``; ``params``
        is the preset's :attr:`~bimix_bayes.trainer.preset.ModelConfig.n_params`); rows are
        appended, runs already complete in it are skipped. Run names are ``{mixture}-seed{seed}``.
        A file an older trainer wrote without ``params`` is continued without it.
    steps : int
        Optimiser steps per run.
    seeds : int or sequence of int
        One run per mixture and seed.
    eval_steps : sequence of int, optional
        Evaluation steps; default :func:`eval_schedule` with ``n_evals`` log-spaced steps.
    device : {"cpu", "cuda", "auto"}, optional
        Default: CUDA when available.
    compile : bool
        Wrap the model in ``torch.compile``.
    checkpoint_dir : path-like, optional
        Default ``OUT.ckpt/`` beside ``out``; one ``{run}.pt`` per unfinished run.
    checkpoint_every : int, optional
        Also checkpoint every this many steps (default: about every tenth of the run).
    keep_checkpoints : bool
        Keep a run's final checkpoint instead of deleting it when the run completes.
    distribute : {"data", "mixtures"}
        Under ``torchrun``: DDP per run, or one run per rank.
    threads : int, optional
        CPU threads for torch (default: torch's choice, one per core). On a shared, busy machine 1
        is much faster than 2: OpenMP threads spin-wait for each other when cores are contended.
    progress : bool
        Show a progress bar (rank 0, on stderr).

    Returns
    -------
    Observations or None
        Everything in ``out`` after training (None on a rank that had no run to train and found
        no file: more ranks than runs under ``--distribute mixtures``).

    Raises
    ------
    BimixInputError
        Before any training: mixtures that do not match the corpus, a corpus too short for the
        context, impossible batch splits, an ``out`` or checkpoint from another configuration.
    """
    layout = Layout.from_env()
    out = Path(out)
    seeds = [seeds] if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise BimixInputError(f"seeds must be distinct non-negative integers, got {seeds}")
    if distribute not in DISTRIBUTE:
        raise BimixInputError(f"distribute must be one of {DISTRIBUTE}, got {distribute!r}")
    mixtures = validate_mixtures(mixtures.rename_axis("mixture").reset_index(),
                                 domains=corpus.domains, source="<mixtures>")
    schedule = eval_schedule(steps, eval_steps, n_evals)
    ddp_world = layout.world_size if distribute == "data" else 1
    cfg = preset.train
    if cfg.batch_size % (cfg.micro_batch_size * ddp_world):
        raise BimixInputError(
            f"train.batch_size ({cfg.batch_size}) must be a multiple of micro_batch_size x "
            f"data-parallel ranks ({cfg.micro_batch_size} x {ddp_world})")
    corpus.verify()  # the run fingerprint trusts the manifest's checksums
    _check_corpus(corpus, mixtures, preset)
    jobs = [_Job(f"{name}-seed{seed}", str(name), tuple(row.tolist()), seed)
            for name, row in mixtures.iterrows() for seed in seeds]
    if threads is not None and threads < 1:
        raise BimixInputError(f"threads must be >= 1, got {threads}")
    dev = layout.device(device)
    log = ObservationLog(out)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else out.with_name(out.name + ".ckpt")
    mine = jobs if distribute == "data" else jobs[layout.rank::layout.world_size]
    console = Console(stderr=True)
    claims = RunClaims(ckpt_dir)
    try:
        # Claim first, check after: a second trainer on this --out must not pass the checks
        # below and then interleave its rows (or resume from this one's checkpoint). The
        # writing rank claims (all ranks of a data-parallel run train the same runs); sorted,
        # so that two trainers waiting for each other's runs cannot deadlock.
        if layout.is_main or distribute == "mixtures":
            for job in sorted(mine, key=lambda j: j.run):
                claims.claim(job.run, _fingerprint(job, preset, steps, corpus), wait=console.print)
        _check_existing(log, jobs, preset, corpus.domains, ckpt_dir, steps)
        for job in jobs:
            _check_checkpoint(ckpt_dir / f"{job.run}.pt", _fingerprint(job, preset, steps, corpus))
        if threads is not None:
            torch.set_num_threads(threads)
        _train_claimed(corpus, preset, steps, schedule, log, ckpt_dir, layout, dev, mine,
                       distribute=distribute, compile=compile, checkpoint_every=checkpoint_every,
                       keep_checkpoints=keep_checkpoints, progress=progress, console=console,
                       claims=claims)
    finally:
        claims.release_all()
        # The folder goes when nothing is left in it (kept checkpoints and other trainers' files
        # stay). Not with one run per rank: another rank may still be writing there.
        if layout.is_main and (distribute == "data" or layout.world_size == 1):
            with contextlib.suppress(OSError):
                ckpt_dir.rmdir()
    # With one run per rank, other ranks may still be appending: this is the file as it is now.
    return Observations.read_csv(out) if out.exists() else None


def train_at_sizes(
    corpus: Corpus,
    mixtures: pd.DataFrame,
    presets: Sequence[Preset],
    out: str | os.PathLike[str],
    *,
    sizes: pd.Series | None = None,
    source: str = "<mixtures>",
    **options: Any,
) -> Observations | None:
    """Train each mixture at the preset of its model size, all into one ``out``.

    The runs of a study across model sizes: ``sizes`` (the ``params`` column that ``bimix
    suggest --params-choices`` writes, by mixture; :func:`bimix_bayes.mixtures.read_sizes`) names
    each mixture's size, and :func:`~bimix_bayes.trainer.preset.preset_for` the preset of that
    size. Every mixture is matched before any training, and the smallest size trains first.
    Mixture names must differ across sizes, since a run keeps one size (``{mixture}-seed{seed}``).
    Without ``sizes``, one preset trains every mixture (:func:`train`). ``options`` go to
    :func:`train`.

    Raises
    ------
    BimixInputError
        Several presets but no sizes, or a mixture whose size no preset has (naming
        ``source`` and the mixture), before any training.
    """
    presets = sorted(presets, key=lambda p: p.model.n_params)
    if sizes is None:
        if len(presets) > 1:
            raise BimixInputError(
                f"{len(presets)} model presets, but the mixtures do not say which size each "
                "trains at: give a params column (bimix suggest --params-choices writes one)",
                path=source)
        return train(corpus, mixtures, presets[0], out, **options)
    chosen = {}
    for name in mixtures.index:
        try:
            chosen[name] = preset_for(presets, float(sizes[name]))
        except BimixInputError as exc:
            raise BimixInputError(f"mixture {name!r}: {exc}", path=source) from None
    obs = None
    for preset in presets:
        names = [m for m in mixtures.index if chosen[m] is preset]
        if names:
            obs = train(corpus, mixtures.loc[names], preset, out, **options)
    return obs


def _train_claimed(corpus: Corpus, preset: Preset, steps: int, schedule: list[int],
                   log: ObservationLog, ckpt_dir: Path, layout: Layout, dev: torch.device,
                   mine: list[_Job], *, distribute: str, compile: bool,
                   checkpoint_every: int | None, keep_checkpoints: bool, progress: bool,
                   console: Console, claims: RunClaims) -> None:
    """Train this process's runs, once they are claimed and checked (see :func:`train`)."""
    cfg = preset.train
    if distribute == "data":
        # One run per rank needs no communication; a process group would only add a final
        # barrier that times out while a rank with more runs is still training.
        layout.start(dev)
    try:
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        evals = _eval_windows(corpus, preset.model.block_size, cfg.eval_sequences)
        train_tokens = [corpus.tokens(d, "train") for d in corpus.domains]
        show = progress and layout.is_main
        with _progress(show, console) as bar:
            for job in mine:
                _Run(job, corpus, preset, steps, schedule, log, ckpt_dir, layout, dev,
                     ddp=distribute == "data" and layout.world_size > 1, compile=compile,
                     checkpoint_every=checkpoint_every or max(1, steps // 10),
                     keep_checkpoint=keep_checkpoints, evals=evals, train_tokens=train_tokens,
                     bar=bar if show else None,
                     console=console if layout.is_main or distribute == "mixtures" else None,
                     claims=claims).run()
        layout.barrier()
    finally:
        layout.stop()


class _Run:
    """One mixture and seed: build, resume, train, evaluate, checkpoint."""

    def __init__(self, job: _Job, corpus: Corpus, preset: Preset, steps: int, schedule: list[int],
                 log: ObservationLog, ckpt_dir: Path, layout: Layout, device: torch.device, *,
                 ddp: bool, compile: bool, checkpoint_every: int, keep_checkpoint: bool,
                 evals: list[np.ndarray], train_tokens: list[np.ndarray],
                 bar: Progress | PlainProgress | None, console: Console | None,
                 claims: RunClaims) -> None:
        self.job, self.corpus, self.preset, self.steps = job, corpus, preset, steps
        self.schedule, self.log, self.layout, self.device = set(schedule), log, layout, device
        self.ckpt = ckpt_dir / f"{job.run}.pt"
        self.ddp, self.compile, self.checkpoint_every = ddp, compile, checkpoint_every
        self.keep_checkpoint, self.evals, self.train_tokens = keep_checkpoint, evals, train_tokens
        self.bar, self.console, self.claims = bar, console, claims
        self.fingerprint = _fingerprint(job, preset, steps, corpus)
        # Rank 0 writes for a data-parallel run; every rank writes for its own runs.
        self.writer = layout.is_main or not ddp

    def note(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def run(self) -> None:
        job, cfg, domains = self.job, self.preset.train, self.corpus.domains
        final = {(job.run, d, self.steps) for d in domains}
        if final <= self.log.keys():
            self.note(f"{job.run}: already complete in {self.log.path}, skipped")
            # A kill between the last rows and the checkpoint's removal left it behind.
            self._finish()
            return
        self._remove_temporaries()  # of a checkpoint write a kill cut short; the run is ours
        torch.manual_seed(job.seed)  # identical initial weights on every rank
        model = GPT(self.preset.model, self.corpus.vocab_size).to(self.device)
        optimizer = _adamw(model, cfg, self.device)
        sampler = MixtureSampler(job.proportions, cfg.batch_size, job.seed)
        start = 0
        resume = self.ckpt.exists()
        if self.ddp:
            # Every rank must see the same answer: rank 0 writes the first checkpoint just below,
            # and a rank that looked after it would resume while the others start afresh, each
            # then waiting in a different collective for ever.
            self.layout.barrier()
        if resume:
            state = torch.load(self.ckpt, map_location=self.device, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            sampler.load_state_dict(state["sampler"])
            start = int(state["step"])
            self.note(f"{job.run}: resuming from step {start} ({self.ckpt})")
        else:
            # Before any row exists: rows without a checkpoint then mean another configuration.
            self._save(model, optimizer, sampler, 0)
        fwd = torch.compile(model) if self.compile else model
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel

            fwd = DistributedDataParallel(fwd, device_ids=[self.device.index]
                                          if self.device.type == "cuda" else None)
        per_rank = cfg.batch_size // (self.layout.world_size if self.ddp else 1)
        accum = per_rank // cfg.micro_batch_size
        lo = (self.layout.rank if self.ddp else 0) * per_rank
        tokens_per_step = cfg.batch_size * self.preset.model.block_size
        task = self.bar.add_task(job.run, total=self.steps, completed=start, loss="-", tps="-") \
            if self.bar is not None else None
        # Progress shows the mean training loss and throughput since the last update.
        t0, since, loss_sum = time.perf_counter(), start, torch.zeros((), device=self.device)
        for step in range(start + 1, self.steps + 1):
            # Dropout masks depend on (seed, step, rank) only, so a resumed run draws the same ones.
            torch.manual_seed(int(np.random.SeedSequence(
                [job.seed, step, self.layout.rank]).generate_state(1)[0]))
            batch = sampler.next_batch(self.train_tokens, self.preset.model.block_size)
            local = torch.from_numpy(batch[lo:lo + per_rank]).to(self.device, non_blocking=True)
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step, self.steps, cfg)
            for micro in range(accum):
                chunk = local[micro * cfg.micro_batch_size:(micro + 1) * cfg.micro_batch_size]
                sync = micro == accum - 1 or not self.ddp
                with contextlib.nullcontext() if sync else fwd.no_sync(), self._autocast():
                    loss = fwd(chunk[:, :-1], chunk[:, 1:]) / accum
                loss.backward()
                loss_sum += loss.detach()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if task is not None and (step % 10 == 0 or step in self.schedule or step == self.steps):
                now = time.perf_counter()
                self.bar.update(task, completed=step, loss=f"{loss_sum.item() / (step - since):.3f}",
                                tps=f"{tokens_per_step * (step - since) / (now - t0):,.0f}")
                t0, since = now, step
                loss_sum.zero_()
            if step in self.schedule:
                self._evaluate(fwd if not self.ddp else fwd.module, step)
            if step in self.schedule or step % self.checkpoint_every == 0:
                self._save(model, optimizer, sampler, step)
        self._finish()
        if task is not None:
            self.bar.stop_task(task)

    def _remove_temporaries(self) -> None:
        if self.writer and self.claims.holds(self.job.run):  # only this process's own runs
            for stale in self.ckpt.parent.glob(f".{glob.escape(self.ckpt.name)}.*.tmp"):
                stale.unlink(missing_ok=True)

    def _finish(self) -> None:
        """A complete run: delete its checkpoint (unless kept) and give up its claim."""
        if self.writer and not self.keep_checkpoint and self.claims.holds(self.job.run):
            self.ckpt.unlink(missing_ok=True)
        self._remove_temporaries()
        self.claims.release(self.job.run)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def _evaluate(self, model: torch.nn.Module, step: int) -> None:
        """Mean validation loss per domain on the fixed windows; the writing rank appends the rows."""
        model.eval()
        world = self.layout.world_size if self.ddp else 1
        mb = self.preset.train.micro_batch_size
        totals = torch.zeros(len(self.evals), 2, dtype=torch.float64, device=self.device)
        for i, windows in enumerate(self.evals):
            mine = torch.from_numpy(windows[self.layout.rank::world] if self.ddp else windows)
            for j in range(0, len(mine), mb):
                chunk = mine[j:j + mb].to(self.device)
                with self._autocast():
                    totals[i, 0] += model(chunk[:, :-1], chunk[:, 1:], reduction="sum").double()
                totals[i, 1] += chunk[:, 1:].numel()
        if self.ddp:
            dist.all_reduce(totals)
        model.train()
        losses = (totals[:, 0] / totals[:, 1]).tolist()
        if not all(math.isfinite(x) for x in losses):
            raise RuntimeError(f"{self.job.run}: validation loss is not finite at step {step} "
                               "(training diverged; lower train.lr in the preset)")
        if self.writer:
            tokens = step * self.preset.train.batch_size * self.preset.model.block_size
            self.log.append([
                {"run": self.job.run, "domain": d, "proportion": p, "step": step, "loss": loss,
                 "params": self.preset.model.n_params, "tokens": tokens,
                 "model": self.preset.name, "seed": self.job.seed}
                for d, p, loss in zip(self.corpus.domains, self.job.proportions, losses,
                                      strict=True)])

    def _save(self, model: GPT, optimizer: torch.optim.Optimizer, sampler: MixtureSampler,
              step: int) -> None:
        if self.writer:
            state = {"fingerprint": self.fingerprint, "step": step, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "sampler": sampler.state_dict()}
            with atomic_path(self.ckpt) as tmp:
                torch.save(state, tmp)
        if self.ddp:
            self.layout.barrier()


def _adamw(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not norms or biases)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


def _eval_windows(corpus: Corpus, block_size: int, n: int) -> list[np.ndarray]:
    """Each domain's first ``n`` non-overlapping ``block_size + 1`` windows of ``val.bin``."""
    out = []
    for d in corpus.domains:
        val = corpus.tokens(d, "val")
        k = min(n, (len(val) - 1) // block_size)
        out.append(np.stack([np.asarray(val[i * block_size:(i + 1) * block_size + 1],
                                        dtype=np.int64) for i in range(k)]))
    return out


def _check_corpus(corpus: Corpus, mixtures: pd.DataFrame, preset: Preset) -> None:
    t = preset.model.block_size
    used = mixtures.columns[(mixtures > 0).any(axis=0)]
    for d in corpus.domains:
        info = corpus.info(d)
        if info["val_tokens"] < t + 1:
            raise BimixInputError(
                f"domain {d!r} has {info['val_tokens']} validation tokens; block_size {t} of "
                f"preset {preset.name!r} needs at least {t + 1}", path=corpus.path / "manifest.json")
        if d in used and info["train_tokens"] < t + 1:
            raise BimixInputError(
                f"domain {d!r} has {info['train_tokens']} training tokens; block_size {t} of "
                f"preset {preset.name!r} needs at least {t + 1}", path=corpus.path / "manifest.json")


def _check_existing(log: ObservationLog, jobs: list[_Job], preset: Preset,
                    domains: list[str], ckpt_dir: Path, steps: int) -> None:
    """Refuse to append to runs in ``out`` that another configuration wrote.

    A run checkpoints at step 0 before its first row and deletes the checkpoint only once complete,
    so rows of an incomplete run without a checkpoint come from another configuration (other
    ``steps``, say), whose rows must not be mixed with this one's.
    """
    by_run = {j.run: j for j in jobs}
    rows = log.rows()
    present = {(r["run"], r["domain"], int(r["step"])) for r in rows if r["step"]}
    for job in jobs:
        started = any(key[0] == job.run for key in present)
        beyond = max((key[2] for key in present if key[0] == job.run), default=0)
        if beyond > steps:
            # A longer run's rows: its step `steps` may look complete, with another schedule.
            raise BimixInputError(
                f"run {job.run!r} has rows here up to step {beyond}, beyond --steps {steps}: "
                "another configuration wrote them; choose another --out", path=log.path)
        complete = all((job.run, d, steps) in present for d in domains)
        if started and not complete and not (ckpt_dir / f"{job.run}.pt").exists():
            raise BimixInputError(
                f"run {job.run!r} has rows here but is not complete at step {steps} and has no "
                f"checkpoint in {ckpt_dir} to resume (another --steps, or a deleted checkpoint): "
                "choose another --out", path=log.path)
    for line, row in enumerate(rows, start=2):
        job = by_run.get(row["run"])
        if job is None:
            continue
        if row["model"] != preset.name or row["seed"] != str(job.seed):
            raise BimixInputError(
                f"run {job.run!r} already exists here with model {row['model']!r}, seed "
                f"{row['seed']}; now model {preset.name!r}: choose another --out",
                path=log.path, line=line)
        i = domains.index(row["domain"]) if row["domain"] in domains else -1
        if i < 0 or abs(float(row["proportion"]) - job.proportions[i]) > 1e-9:
            raise BimixInputError(
                f"run {job.run!r} already exists here with domain {row['domain']!r} at proportion "
                f"{row['proportion']}, which this mixture does not match: choose another --out",
                path=log.path, line=line)


def _fingerprint(job: _Job, preset: Preset, steps: int, corpus: Corpus) -> str:
    """What determines a run's trajectory; a checkpoint only resumes the identical configuration."""
    return json.dumps({"preset": preset.to_dict(), "steps": steps, "seed": job.seed,
                       "proportions": list(job.proportions),
                       "corpus": {d: corpus.info(d)["sha256"] for d in corpus.domains}},
                      sort_keys=True)


def _check_checkpoint(path: Path, fingerprint: str) -> None:
    if not path.exists():
        return
    try:
        # mmap: reads the small fingerprint without loading the weights.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same user problem
        raise BimixInputError(f"checkpoint is unreadable ({exc}); delete it to start over",
                              path=path) from None
    if state.get("fingerprint") != fingerprint:
        raise BimixInputError("checkpoint was written by a different configuration (preset, "
                              "steps, seed, mixture or corpus); delete it or use another --out",
                              path=path)


#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_PROGRESS_EVERY = 15.0


class PlainProgress:
    """Progress as plain text lines at a steady interval, for a stderr that is not a terminal.

    Under nohup or a batch scheduler a rich bar writes nothing until it stops and then repeats
    itself; a log needs a line every :data:`PLAIN_PROGRESS_EVERY` seconds instead, plus one when
    a run starts and one when it ends. Same calls as :class:`rich.progress.Progress` (the ones
    the trainer makes).

    Examples
    --------
    >>> import io
    >>> clock = iter([0.0, 5.0, 16.0, 17.0]).__next__
    >>> console = Console(file=io.StringIO(), width=200)
    >>> bar = PlainProgress(console, every=15.0, clock=clock)
    >>> task = bar.add_task("mix-seed0", total=100, completed=0, loss="-", tps="-")
    >>> bar.update(task, completed=10, loss="3.100", tps="1,000")   # 5 s: too soon
    >>> bar.update(task, completed=40, loss="2.900", tps="1,100")   # 16 s: a line
    >>> bar.stop_task(task)
    >>> print(console.file.getvalue(), end="")
    mix-seed0: step 0/100
    mix-seed0: step 40/100 (40%), loss 2.900, 1,100 tok/s, 16 s
    mix-seed0: done, 100 steps in 17 s
    """

    def __init__(self, console: Console, every: float = PLAIN_PROGRESS_EVERY,
                 clock: Any = time.monotonic) -> None:
        self.console, self.every, self.clock = console, every, clock
        self.tasks: dict[int, dict[str, Any]] = {}

    def add_task(self, description: str, total: int, completed: int = 0, **fields: Any) -> int:
        now = self.clock()
        task = len(self.tasks)
        self.tasks[task] = {"name": description, "total": total, "start": now, "last": now}
        self.console.print(f"{description}: step {completed}/{total}", highlight=False)
        return task

    def update(self, task: int, completed: int, loss: str = "-", tps: str = "-") -> None:
        t, now = self.tasks[task], self.clock()
        if now - t["last"] < self.every:
            return
        t["last"] = now
        self.console.print(f"{t['name']}: step {completed}/{t['total']} "
                           f"({100 * completed / t['total']:.0f}%), loss {loss}, {tps} tok/s, "
                           f"{now - t['start']:.0f} s", highlight=False)

    def stop_task(self, task: int) -> None:
        t = self.tasks[task]
        self.console.print(f"{t['name']}: done, {t['total']} steps in "
                           f"{self.clock() - t['start']:.0f} s", highlight=False)


@contextlib.contextmanager
def _progress(show: bool, console: Console) -> Iterator[Progress | PlainProgress | None]:
    if not show:
        yield None
        return
    if not console.is_terminal:
        yield PlainProgress(console, every=PLAIN_PROGRESS_EVERY)
        return
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[tps]} tok/s"), TextColumn("loss {task.fields[loss]}"),
                          TimeRemainingColumn()]
    with Progress(*columns, console=console) as bar:
        yield bar
