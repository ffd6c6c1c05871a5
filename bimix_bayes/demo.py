"""``bimix demo``: the whole product on the embedded corpus, on CPU, in a few minutes.

Builds the embedded corpus, trains the initial design with a CPU preset, fits the Bayesian model,
and reports the predicted loss bands, the optimised mixture with its expected gain and probability of
improvement, and the next mixtures to train, with plots and a self-contained HTML report
(:mod:`bimix_bayes.report`) in the output folder.
Rerunning it resumes: finished runs, fits and files are reused.

Examples
--------
>>> result = run_demo("demo-out")                                  # doctest: +SKIP
>>> result.report                                                   # doctest: +SKIP
PosixPath('demo-out/report.html')
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bimix_bayes import diagnostics as diag
from bimix_bayes._io import atomic_path
from bimix_bayes.corpus import Corpus, build_embedded_corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.exports import write_mixture
from bimix_bayes.mixtures import SUGGESTION_UNITS, write_mixtures
from bimix_bayes.posterior import Posterior
from bimix_bayes.report import write_report
from bimix_bayes.study import Study, check_settings, demo_design

#: The CPU preset the demo trains, shipped with the package.
DEMO_PRESET = Path(__file__).parent / "data" / "presets" / "demo.toml"


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left its outputs, and what it found."""

    directory: Path
    posterior: Posterior
    plan: Any  # bimix_bayes.optimizer.OptimizationResult
    suggestions: pd.DataFrame
    report: Path


def run_demo(
    out: str | os.PathLike[str] = "demo-out",
    *,
    steps: int = 150,
    n_random: int = 4,
    batch: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    preset: str | os.PathLike[str] = DEMO_PRESET,
    seed: int = 0,
    progress: bool = True,
    log: Any = print,
) -> DemoResult:
    """Run the demo into ``out`` (see the module docstring).

    Parameters
    ----------
    out : path-like
        Output folder: corpus, observations, posterior, plots and ``report.html``.
    steps : int
        Training steps per proxy run.
    n_random : int
        Seeded Dirichlet mixtures added to the four entropy mixtures of the initial design.
    batch : int
        Next mixtures to suggest.
    draws, tune, chains : int
        NUTS settings of the fit. Sampling is about a second at the defaults; fewer draws leave
        R-hat above 1.01 on this small design.
    preset : path-like
        Model preset (default: the packaged ``demo.toml``, sized for two CPU cores).
    seed : int
        Seeds everything.
    progress : bool
        Show progress bars.
    log : callable
        Receives one line of text per stage.
    """
    from bimix_bayes import plots
    from bimix_bayes.optimizer import optimize
    from bimix_bayes.planner import suggest
    from bimix_bayes.trainer.preset import Preset

    out = Path(out)
    check_settings(steps=steps, batch=batch, fit={"draws": draws, "tune": tune, "chains": chains})
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise BimixInputError(f"n_random must be a non-negative integer, got {n_random!r}")
    Preset.load(preset)
    corpus_dir = out / "corpus"
    if not (corpus_dir / "manifest.json").is_file():
        log("[1/5] building the embedded corpus")
        build_embedded_corpus(corpus_dir)
    corpus = Corpus.open(corpus_dir)
    study = Study(out, corpus, preset, steps=steps, batch=batch, seed=seed, progress=progress,
                  fit={"draws": draws, "tune": tune, "chains": chains})
    design = demo_design(corpus, n_random=n_random, seed=seed)
    study.start(design)
    log(f"[2/5] training {len(design)} proxy models ({steps} steps each, "
        f"{len(corpus.domains)} domains) -> {study.observations_path}")
    study.train_round(0)
    log("[3/5] fitting the hierarchical Bayesian BiMix model (nutpie NUTS)")
    with warnings.catch_warnings():
        # The diagnostics summary below states every problem and its remedy.
        warnings.simplefilter("ignore", diag.UntrustworthyFitWarning)
        post = study.fit_round(0)
    log("      " + diag.summary_text(post.diagnostics, options="demo").replace("\n", "\n      "))

    log(f"[4/5] optimising the mixture and planning the next {batch} runs at step {steps}")
    plan = optimize(post, steps, seed=seed)
    nxt = suggest(post, batch, steps, seed=seed)
    # One row, the mixture itself: readable by train/predict --mixtures (the plan's interval rows
    # are not mixtures).
    write_mixture(plan.mixture, out / "optimum.csv")
    write_mixtures(nxt, out / "next.csv", units=SUGGESTION_UNITS)
    with atomic_path(out / "optimum.json") as tmp:
        tmp.write_text(json.dumps(plan.summary(), indent=2))

    log("[5/5] plotting and writing the report")
    compare = pd.DataFrame([plan.reference, plan.mixture], index=pd.Index(
        ["reference", "optimum"], name="mixture"))
    vocab = corpus.vocab_size
    figures = {
        "loss_curves.png": lambda p: plots.plot_loss_curves(post, vocab_size=vocab, path=p),
        "predicted_vs_observed.png": lambda p: plots.plot_predicted_vs_observed(post, path=p),
        "residuals.png": lambda p: plots.plot_residuals(post, path=p),
        "coefficients.png": lambda p: plots.plot_coefficients(post, path=p),
        "optimum_vs_reference.png": lambda p: plots.plot_loss_curves(post, mixtures=compare,
                                                                      vocab_size=vocab, path=p),
    }
    for name, draw in figures.items():
        draw(out / name)
    intro = (f"{len(post.observations.runs)} proxy runs of {steps} steps on {len(post.sources)} "
             "domains of the embedded corpus, fitted with the hierarchical Bayesian BiMix law; "
             f"the mixture is optimised for step {steps} against the best observed run.")
    next_table = nxt.drop(columns="rule")
    report = write_report(post, out / "report.html", plan=plan.summary(), title="bimix demo report",
                          intro=intro, vocab_size=vocab, options="demo",
                          sections=[(f"Next {len(nxt)} mixtures to train ({nxt['rule'].iloc[0]} "
                                     "sampling)", next_table)])
    return DemoResult(out, post, plan, nxt, report)
