"""A mixing study: rounds of train -> fit -> suggest in one directory, resumable after a crash.

A study directory holds everything a study learns::

    DIR/observations.csv          every run's per-domain losses (the trainer appends as it goes)
    DIR/round-00/mixtures.csv     the mixtures trained in round 0 (the initial design)
    DIR/round-00/posterior.nc     the fit on all observations after round 0
    DIR/round-01/mixtures.csv     the batch the planner suggested from round 0's posterior
    ...

A study can also start from observations that exist already (:meth:`Study.start_from`, ``bimix
loop --observations OBS.csv [--posterior FIT.nc]``): they are copied into ``DIR/observations.csv``,
their runs' mixtures become round 0 (``round-00/imported.txt`` names the file; round 0 is then
fitted, or takes the given fit of those observations, not trained), and the planned rounds train
on from there.

A study across model sizes (``preset`` a ladder of presets, ``bimix loop --model tiny,tiny-wide``)
trains the initial design at every size (``{mixture}@{preset}``), fits the law's size axis, and
lets the planner choose each later run's mixture and size by what it teaches about the optimum
at the target size per FLOP (:func:`bimix_bayes.planner.suggest` with ``params_choices``), within
a compute ``budget`` per round; each round's ``mixtures.csv`` then has a ``params`` column.

Each step writes its file atomically and is skipped when the file exists, and the trainer resumes
unfinished runs from their checkpoints, so rerunning the same command after a crash, even SIGKILL,
continues where it stopped and loses nothing.

Examples
--------
>>> from bimix_bayes.corpus import Corpus, build_embedded_corpus               # doctest: +SKIP
>>> corpus = Corpus.open(build_embedded_corpus("corpus"))                      # doctest: +SKIP
>>> study = Study("study", corpus, "tiny", steps=200)                        # doctest: +SKIP
>>> post = study.run(rounds=2)                                                # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bimix_bayes._io import atomic_path
from bimix_bayes.corpus import Corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import read_mixtures, read_sizes, write_mixtures
from bimix_bayes.observations import REQUIRED, Observations
from bimix_bayes.posterior import Posterior

if TYPE_CHECKING:  # the trainer (torch) is imported only when a study is built
    from bimix_bayes.trainer.preset import Preset


@dataclass
class Study:
    """Rounds of training, fitting and planning, kept in one directory.

    Parameters
    ----------
    directory : path-like
        Where the study lives (created if absent).
    corpus : Corpus
        The training corpus; its domains are the mixture columns.
    preset : path-like or sequence of path-like
        Model preset: a packaged name (``tiny``, ``demo`` for CPU) or a TOML path; several
        presets of different sizes (``["tiny", "tiny-wide"]``) make a study across model sizes.
    steps : int
        Optimiser steps per training run.
    batch : int
        Mixtures suggested per round.
    rule : {"thompson", "info"}, optional
        The planner's acquisition rule (default ``thompson``; ``info`` across model sizes, the
        only rule that weighs a run's cost).
    target_step : int, optional
        Step at which mixtures are judged (default ``steps``).
    fit : dict
        Options of :class:`bimix_bayes.model.BayesianBiMix` (``draws``, ``tune``, ``chains``, ...).
    seed : int
        Seeds training, fitting and planning.
    device : str, optional
        Training device (default: CUDA when available).
    threads : int, optional
        CPU threads for torch (default torch's choice; 1 is fastest on a busy shared machine).
    progress : bool
        Show progress bars.
    params : float, optional
        Across model sizes: the target size the plans are for (default the largest preset's;
        a larger one extrapolates the law's size axis).
    budget : float, optional
        Across model sizes: FLOPs each planned round may spend (6 x params x tokens per run);
        default ``batch`` runs, whatever they cost.

    Attributes
    ----------
    presets_ : list of Preset
        The presets, loaded (and so checked) on construction, smallest first.
    """

    directory: str | os.PathLike[str]
    corpus: Corpus
    preset: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
    steps: int
    batch: int = 4
    rule: str | None = None
    target_step: int | None = None
    fit: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    progress: bool = True
    params: float | None = None
    budget: float | None = None
    presets_: list[Preset] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Every setting is checked here, before any work: a typo must not surface only after
        # the first round has trained and been fitted.
        from bimix_bayes.trainer.preset import load_ladder

        self.directory = Path(self.directory)
        self.target_step = self.target_step or self.steps
        check_settings(steps=self.steps, batch=self.batch, target_step=self.target_step,
                       rule=self.rule or "thompson", fit=self.fit, device=self.device)
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(
                self.threads, int | np.integer) or self.threads < 1):
            raise BimixInputError(f"threads must be a positive integer, got {self.threads!r}")
        ladder = ([self.preset] if isinstance(self.preset, str | os.PathLike)
                  else list(self.preset))
        self.presets_ = load_ladder(ladder)
        if not self.across_sizes and (self.params is not None or self.budget is not None):
            raise BimixInputError("a target size (params) and a compute budget need presets of "
                                  "several sizes (a ladder, e.g. tiny,tiny-wide)")
        for name, value in (("params", self.params), ("budget", self.budget)):
            if value is not None and not (isinstance(value, int | float | np.number)
                                          and not isinstance(value, bool)
                                          and np.isfinite(value) and value > 0):
                raise BimixInputError(f"{name} must be a positive number, got {value!r}")
        if self.across_sizes and self.rule == "thompson":
            raise BimixInputError("across model sizes the planner weighs each run's cost, which "
                                  "only the info rule does: use rule info (or no rule)")

    @property
    def across_sizes(self) -> bool:
        """Whether the study trains at several model sizes."""
        return len(self.presets_) > 1

    @property
    def target_params(self) -> float | None:
        """The model size the plans are for (None with one preset)."""
        if not self.across_sizes:
            return None
        return float(self.params or self.presets_[-1].model.n_params)

    # ------------------------------------------------------------------------------- paths
    @property
    def observations_path(self) -> Path:
        return Path(self.directory) / "observations.csv"

    def round_dir(self, k: int) -> Path:
        return Path(self.directory) / f"round-{k:02d}"

    def rounds_done(self) -> int:
        """How many rounds have a fitted posterior."""
        k = 0
        while (self.round_dir(k) / "posterior.nc").is_file():
            k += 1
        return k

    def posterior(self, k: int | None = None) -> Posterior:
        """The posterior after round ``k`` (default: the latest)."""
        k = self.rounds_done() - 1 if k is None else k
        return Posterior.load(self.round_dir(k) / "posterior.nc")

    def observations(self) -> Observations:
        return Observations.read_csv(self.observations_path)

    # ------------------------------------------------------------------------------- steps
    def train_round(self, k: int) -> Observations:
        """Train round ``k``'s mixtures (runs already complete are skipped, unfinished ones resume)."""
        from bimix_bayes.trainer.loop import train_at_sizes

        path = self.round_dir(k) / "mixtures.csv"
        mixtures = read_mixtures(path, domains=self.corpus.domains)
        return train_at_sizes(self.corpus, mixtures, self.presets_, self.observations_path,
                              sizes=read_sizes(path) if self.across_sizes else None,
                              source=str(path), steps=self.steps, seeds=self.seed,
                              device=self.device, threads=self.threads, progress=self.progress)

    def fit_round(self, k: int) -> Posterior:
        """Fit the Bayesian model on every observation so far and save it as round ``k``'s."""
        from bimix_bayes.model import BayesianBiMix

        path = self.round_dir(k) / "posterior.nc"
        if path.is_file():
            return Posterior.load(path)
        options = {"seed": self.seed, **self.fit}
        post = BayesianBiMix(**options).fit(self.observations()).posterior_
        post.save(path)
        return post

    def plan_round(self, k: int, post: Posterior) -> pd.DataFrame:
        """Suggest round ``k``'s batch from the previous round's posterior and save it."""
        from bimix_bayes.planner import suggest

        path = self.round_dir(k) / "mixtures.csv"
        if path.is_file():
            return pd.read_csv(path, index_col="mixture")
        across = {}  # the planner's size options, for a study across model sizes
        if self.across_sizes:
            across = {"params": self.target_params, "budget": self.budget,
                      "params_choices": [p.model.n_params for p in self.presets_]}
        nxt = suggest(post, self.batch, self.target_step, rule=self.rule, seed=self.seed + k,
                      **across)
        nxt.index = pd.Index([f"r{k}-{i + 1}" for i in range(len(nxt))], name="mixture")
        write_mixtures(nxt, path)
        return nxt

    def start(self, design: pd.DataFrame) -> None:
        """Record the initial design as round 0 (kept as is if the study already started).

        Across model sizes, every mixture at every size: ``{mixture}@{preset}``, with its size.
        """
        path = self.round_dir(0) / "mixtures.csv"
        if path.is_file():
            return
        if self.across_sizes:
            design = pd.concat([design.rename(index=lambda m, p=p: f"{m}@{p.name}")
                                .assign(params=p.model.n_params) for p in self.presets_])
        write_mixtures(design, path)

    def start_from(self, observations: Observations, posterior: Posterior | None = None) -> None:
        """Make existing observations round 0: copied in, fitted, not trained again.

        Kept as is when the study already started from the same file (a rerun after a crash).
        ``posterior``, a fit of exactly these observations (``bimix fit OBS.csv``), becomes round
        0's posterior instead of a new fit.

        Raises
        ------
        BimixInputError
            The study already has other observations or another round 0; the observations'
            domains are not the corpus's; a column the trainer does not write.
        """
        from bimix_bayes.trainer.obslog import COLUMNS, LEGACY_COLUMNS

        source = observations.source
        marker = self.round_dir(0) / "imported.txt"
        if marker.is_file():
            if marker.read_text(encoding="utf-8").strip() != source:
                raise BimixInputError(f"this study started from {marker.read_text().strip()}, "
                                      f"not {source}", path=self.directory)
            return
        if self.observations_path.exists() or (self.round_dir(0) / "mixtures.csv").exists():
            raise BimixInputError("the study already has observations or a first round; start "
                                  "from existing observations in a new folder",
                                  path=self.directory)
        if self.across_sizes and observations.sizes is None:
            raise BimixInputError("a study across model sizes needs each run's size: give the "
                                  "observations a params column", path=source)
        if set(observations.domains) != set(self.corpus.domains):
            raise BimixInputError(f"the observations' domains ({', '.join(observations.domains)}) "
                                  "are not the corpus's "
                                  f"({', '.join(self.corpus.domains)})", path=source)
        if posterior is not None:
            if not _same_rows(posterior.observations.frame, observations.frame):
                raise BimixInputError(f"the posterior was not fitted on {source}; give the fit "
                                      "of exactly these observations, or no posterior")
        extra = [c for c in observations.extra_columns if c not in COLUMNS]
        if extra:
            raise BimixInputError(f"column(s) {', '.join(extra)} cannot be continued by the "
                                  f"trainer, which writes {','.join(COLUMNS)}", path=source)
        # The trainer appends to this file: it must have exactly the trainer's columns. Runs
        # without a model size stay without one (the trainer then appends none either).
        sized = observations.sizes is not None
        frame = observations.frame.reindex(columns=list(COLUMNS if sized else LEGACY_COLUMNS))
        Observations.from_frame(frame, source=source).to_csv(self.observations_path)
        write_mixtures(observations.mixtures()[self.corpus.domains].rename_axis("mixture"),
                       self.round_dir(0) / "mixtures.csv")
        if posterior is not None:
            posterior.save(self.round_dir(0) / "posterior.nc")
        with atomic_path(marker) as tmp:
            tmp.write_text(source + "\n", encoding="utf-8")

    def imported(self, k: int) -> bool:
        """Whether round ``k`` holds observations brought in by :meth:`start_from`."""
        return (self.round_dir(k) / "imported.txt").is_file()

    def run(self, rounds: int, design: pd.DataFrame | None = None) -> Posterior:
        """Run the initial design and ``rounds`` planned rounds; resume wherever a crash stopped.

        Parameters
        ----------
        rounds : int
            Planned rounds after the initial design (0: train and fit the initial design only).
        design : DataFrame, optional
            The initial design (default :func:`bimix_bayes.planner.initial_design`, the entropy
            mixtures); ignored when the study already has one.
        """
        if isinstance(rounds, bool) or not isinstance(rounds, int | np.integer) or rounds < 0:
            raise BimixInputError(f"rounds must be a non-negative integer, got {rounds!r}")
        if not (self.round_dir(0) / "mixtures.csv").is_file():
            if design is None:
                from bimix_bayes.planner import initial_design

                design = initial_design(self.corpus)
            self.start(design)
        post = None
        for k in range(rounds + 1):
            if k > 0:
                self.plan_round(k, post)
            if not self.imported(k):
                self.train_round(k)
            post = self.fit_round(k)
        return post


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two observation frames hold the same rows, in any order (a fit's file sorts them)."""
    key = ["run", "domain", "step"]
    a, b = (f[list(REQUIRED)].sort_values(key, kind="stable").reset_index(drop=True) for f in (a, b))
    if a.shape != b.shape or not a[["run", "domain"]].astype(str).equals(
            b[["run", "domain"]].astype(str)):
        return False
    numbers = [np.asarray(f[["proportion", "step", "loss"]].astype(float)) for f in (a, b)]
    return bool(np.allclose(*numbers, rtol=1e-9, atol=0, equal_nan=True))


def check_settings(*, steps: int, batch: int, target_step: int | None = None,
                   rule: str = "thompson", fit: dict[str, Any] | None = None,
                   device: str | None = None) -> None:
    """Raise :class:`BimixInputError` for study settings that cannot work, before any work.

    :class:`Study` calls it on construction; :func:`bimix_bayes.demo.run_demo` calls it before it
    builds its corpus.

    Examples
    --------
    >>> check_settings(steps=0, batch=4)
    Traceback (most recent call last):
    ...
    bimix_bayes.errors.BimixInputError: steps must be a positive integer, got 0
    """
    import inspect

    from bimix_bayes.model import BayesianBiMix
    from bimix_bayes.planner import MAX_BATCH, check_rule

    if isinstance(batch, int | np.integer) and batch > MAX_BATCH:
        raise BimixInputError(f"batch is at most {MAX_BATCH} mixtures per round, got {batch}")
    values = {"steps": steps, "batch": batch, "target_step": steps if target_step is None
              else target_step}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise BimixInputError(f"{name} must be a positive integer, got {value!r}")
    check_rule(rule)
    if device not in (None, "auto", "cpu", "cuda"):
        raise BimixInputError(f"device must be cpu, cuda or auto, got {device!r}")
    fit = fit or {}
    unknown = sorted(set(fit) - set(inspect.signature(BayesianBiMix).parameters))
    if unknown:
        raise BimixInputError(f"unknown fit option(s) {', '.join(unknown)}")
    BayesianBiMix(**fit).check_settings()


#: Seeded batches of Dirichlet mixtures :func:`first_design` tries for one that spreads every share.
FIRST_DESIGN_DRAWS = 32


def first_design(corpus: Corpus, n: int = 8, seed: int = 0) -> pd.DataFrame:
    """A first round of ``n`` mixtures: the entropy mixtures, then seeded Dirichlet(1) mixtures.

    The entropy mixtures (:func:`bimix_bayes.planner.initial_design`) all lie near the centre of
    the simplex, so on their own they leave the proportion exponents weakly identified (an
    untrustworthy first fit); the random ones spread each domain's share so that every domain's
    exponent is identified from the first round: of up to :data:`FIRST_DESIGN_DRAWS` seeded
    batches, the first in which every domain's share spans
    :data:`bimix_bayes.mixtures.MIN_SHARE_RATIO`. ``n`` below the number of entropy mixtures keeps
    the first ``n`` of them. ``bimix suggest --corpus DIR --n N`` writes this design.

    Examples
    --------
    >>> from bimix_bayes.corpus import Corpus, build_embedded_corpus   # doctest: +SKIP
    >>> first_design(Corpus.open("corpus"), n=8).index.tolist()[-1]   # doctest: +SKIP
    'dirichlet-4'
    """
    from bimix_bayes.planner import initial_design

    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise BimixInputError(f"the first design needs n >= 1 mixtures, got {n!r}")
    from bimix_bayes.mixtures import MIN_SHARE_RATIO, share_spread

    design = initial_design(corpus)
    n_random = max(0, n - len(design))
    rng = np.random.default_rng(seed)
    names = pd.Index([f"dirichlet-{i + 1}" for i in range(n_random)], name="mixture")
    best, best_ratio = None, -np.inf
    # Seeded draws until every domain's share spans MIN_SHARE_RATIO (the check bimix suggest and
    # fit apply), else the draw whose narrowest domain spans most.
    for _ in range(FIRST_DESIGN_DRAWS):
        random = pd.DataFrame(rng.dirichlet(np.ones(len(corpus.domains)), size=n_random),
                              columns=design.columns, index=names)
        candidate = pd.concat([design, random]).head(n)
        ratio = float(share_spread(candidate)["ratio"].min())
        if ratio > best_ratio:
            best, best_ratio = candidate, ratio
        if ratio >= MIN_SHARE_RATIO or n_random == 0:
            break
    return best


def demo_design(corpus: Corpus, n_random: int = 4, seed: int = 0) -> pd.DataFrame:
    """The demo's initial design: the four entropy mixtures plus ``n_random`` Dirichlet ones."""
    from bimix_bayes.entropy import KINDS  # entropy_design makes one mixture per kind

    return first_design(corpus, len(KINDS) + n_random, seed)
