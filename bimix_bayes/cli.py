"""The ``bimix`` command line: a thin layer over the Python API.

Every command takes its inputs from files, calls one API function and writes its outputs atomically.
Bad input raises :class:`~bimix_bayes.errors.BimixInputError`, which :func:`main` prints as one line on
stderr with exit status 2 (no traceback).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from bimix_bayes import __version__, exports, importers, laws, noise, spec, trainer
from bimix_bayes._io import atomic_path, check_outputs
from bimix_bayes.corpus import Corpus, build_embedded_corpus, build_full_corpus
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import narrow_shares, read_mixtures, read_sizes, write_mixtures
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import BANDS, Posterior, write_predictions
from bimix_bayes.study import Study
from bimix_bayes.trainer.preset import load_ladder, preset_names

app = typer.Typer(
    name="bimix",
    help="Bayesian data-mixing laws for LLM pretraining: fit, predict, optimise, plan, train.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)

# Options with fixed choices: typer lists a Literal's values in --help and refuses others. Laws,
# noise models and samplers come from their owners (importing those does not import PyMC); the
# rest are spelt here so that `bimix --help` does not import the modules behind them, and
# tests/test_cli.py checks each against the constant of the module that owns it.
Method = Literal["bayes", "leastsq"]
Law = Literal[("auto", *laws.names())]
Noise = Literal[tuple(noise.names())]
Sampler = Literal[spec.METHODS]
Band = Literal[BANDS]
LogFormat = Literal[importers.FORMATS]
#: typer takes no list of Literals: entropy --kind lists its choices in its metavar instead.
ENTROPY_KINDS = ("shannon", "conditional", "joint", "von-neumann")
Split = Literal["train", "val"]
Device = Literal["cpu", "cuda", "auto"]
Distribute = Literal["data", "mixtures"]
Tokenizer = Literal["byte", "bpe"]
PlotKind = Literal["curves", "predicted-vs-observed", "coefficients", "simplex", "regret",
                   "residuals", "size-shift"]
SimplexQuantity = Literal["expected-loss", "prob-improvement"]
Objective = Literal["expected-gain", "prob-improvement", "quantile"]
Rule = Literal["thompson", "info"]
out = Console(soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"bimix {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the package version and exit.")] = False,
) -> None:
    """Bayesian data-mixing laws for LLM pretraining: fit, predict, optimise, plan, train."""


@app.command()
def validate(
    observations: Annotated[Path, typer.Argument(help="Tidy observations CSV.")],
) -> None:
    """Check an observations CSV and summarise it (with a params column: its model sizes).

    Example: bimix validate obs.csv
    """
    obs = Observations.read_csv(observations)
    out.print(
        f"{observations}: OK: {len(obs.runs)} runs, {len(obs.domains)} domains "
        f"({len(obs.evaluated_domains)} evaluated"
        + (f", {len(obs.targets)} of them targets no run trained on" if obs.targets else "")
        + f"), {len(obs.steps)} steps, {len(obs)} rows"
    )
    if obs.sizes is not None:
        counts = obs.sizes.value_counts()
        sizes = obs.distinct_sizes
        out.print(f"{len(sizes)} model size{'s' if len(sizes) > 1 else ''}: "
                  + ", ".join(f"{n:.3g} ({counts[n]} run{'s' if counts[n] > 1 else ''})"
                              for n in sizes))


@app.command("import")
def import_(
    fmt: Annotated[LogFormat, typer.Argument(
        metavar="FORMAT", help="tensorboard, wandb, hf or jsonl.")],
    paths: Annotated[list[Path], typer.Argument(
        help="Log files or folders: TensorBoard event files or log dirs; W&B history exports "
             "(CSV/JSON); HF trainer_state.json or output dirs; JSON Lines files.")],
    out_path: Annotated[Path, typer.Option("--out", help="Observations CSV to write.")],
    pattern: Annotated[str | None, typer.Option(
        help="Metric name with {domain}, matched in full (default eval/{domain}/loss; "
             "hf: eval_{domain}_loss).")] = None,
    mapping: Annotated[Path | None, typer.Option(
        "--map", help="Metric-to-domain mapping file instead of --pattern: CSV metric,domain or "
                      "a JSON object {metric: domain}.")] = None,
    mixtures: Annotated[Path | None, typer.Option(
        help="Wide mixture CSV with a row named after each run (a one-row file for a single "
             "run); default: the 'mixture' in the run's config.json/config.yaml.")] = None,
    run: Annotated[str | None, typer.Option(
        help="Name of the run, when the logs hold one (default: the file or folder name).")]
    = None,
    step_key: Annotated[str | None, typer.Option(
        help="wandb, jsonl: the column holding the training step (default _step / step).")]
    = None,
) -> None:
    """Turn training logs into an observations CSV (run,domain,proportion,step,loss).

    Examples:
    bimix import tensorboard runs/ --mixtures mix.csv --out obs.csv;
    bimix import hf out/checkpoint-500/trainer_state.json --mixtures mix.csv --run web60 --out obs.csv;
    bimix import wandb history.csv --pattern 'val/{domain}/loss' --mixtures mix.csv --out obs.csv;
    bimix import jsonl evals.jsonl --map metrics.csv --out obs.csv
    """
    mix = None if mixtures is None else read_mixtures(mixtures)
    obs = importers.read_logs(fmt, paths, pattern=pattern, mapping=mapping, mixtures=mix,
                              mixtures_source=str(mixtures), run=run, step_key=step_key)
    obs.to_csv(out_path)
    out.print(f"wrote {out_path}: {len(obs.runs)} runs, {len(obs.evaluated_domains)} evaluated "
              f"domains, {len(obs.steps)} steps, {len(obs)} rows")


def _steps(text: str) -> list[int]:
    """Parse ``--steps 1000,5000`` into distinct positive integers (a repeat is an error)."""
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) <= 0:
        raise BimixInputError(f"--steps takes comma-separated positive integers, got {text!r}")
    repeated = sorted({s for s in steps if steps.count(s) > 1})
    if repeated:
        raise BimixInputError(f"--steps lists step {repeated[0]} more than once")
    return steps


@app.command()
def fit(
    observations: Annotated[Path, typer.Argument(help="Tidy observations CSV.")],
    out_path: Annotated[Path, typer.Option("--out", help="Posterior file to write (netCDF).")],
    method: Annotated[Method, typer.Option(
        help="bayes (hierarchical Bayesian model) or leastsq (the paper's per-domain fit).",
    )] = "bayes",
    law: Annotated[Law, typer.Option(
        help="auto (the default: chosen between bimix and transfer by cross-validation over "
             "held-out mixtures, the comparison printed and stored; leastsq: bimix), or a law: "
             "bimix (own share), transfer (cross-domain), dml (Data Mixing Laws: log(L - c) "
             "linear in the mixture), transfer_linear (transfer plus a linear cross-domain "
             "term).")] = "auto",
    draws: Annotated[int, typer.Option(help="Posterior draws per chain (bayes).")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain (bayes).")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains (bayes).")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed (bayes).")] = 0,
    noise: Annotated[Noise, typer.Option(
        help="normal, student (Student-t residuals, robust to outliers), or ar1 (residuals "
             "correlated along a curve, AR(1) in log step) (bayes).")] = "normal",
    sampler: Annotated[Sampler, typer.Option(
        help="nuts (nutpie), pymc (PyMC's own NUTS), laplace (normal approximation at the "
             "mode), advi or fullrank_advi (variational; inaccurate on this model) (bayes).")]
    = "nuts",
    target_accept: Annotated[float, typer.Option(
        help="NUTS target acceptance rate; a fit that still diverges is resampled once at 0.99 "
             "(bayes).")] = 0.95,
    progress: Annotated[bool, typer.Option(help="Show sampling progress (bayes).")] = True,
) -> None:
    """Fit the data-mixing law to observations and save the posterior.

    A Bayesian fit prints its diagnostics (divergences, R-hat, ESS, E-BFMI) and any remedy, then
    names the coefficients the runs barely informed (posterior variance above half the prior's)
    and what to train to inform them. A design whose shares vary by less than 3x is named first.
    Runs at two or more model sizes (a params column) give the law a model-size axis: predict,
    optimize and suggest then take --params for the size to answer for.

    Example: bimix fit obs.csv --law transfer --draws 1000 --out fit.nc
    """
    check_outputs(files={"--out": out_path}, inputs={"OBSERVATIONS": observations})
    obs = Observations.read_csv(observations)
    narrow = narrow_shares(obs.mixtures()[obs.sources], what=f"the design of {observations}")
    if narrow:
        console.print(f"warning: {narrow}", markup=False, highlight=False)
    if method == "leastsq":
        from bimix_bayes.leastsq import LeastSquaresFit

        if law not in ("bimix", "auto"):
            raise BimixInputError(f"--method leastsq fits the bimix law only; use --method bayes "
                                  f"for --law {law}")
        estimator = LeastSquaresFit().fit(obs)
        posterior = estimator.to_posterior()
        for line in estimator.warnings():
            console.print(f"warning: {line}")
    else:
        from bimix_bayes.diagnostics import UntrustworthyFitWarning, design_advice, summary_text
        from bimix_bayes.model import BayesianBiMix, parameter_prior

        estimator = BayesianBiMix(law=law, noise=noise, method=sampler, draws=draws, tune=tune,
                                  chains=chains, seed=seed, target_accept=target_accept,
                                  progressbar=progress)
        estimator.check_settings()
        console.print(f"sampling {chains} chains x ({tune} tune + {draws} draws), {sampler}; "
                      "compiling the model first takes a while")
        with warnings.catch_warnings():  # the summary below states every problem once
            warnings.simplefilter("ignore", UntrustworthyFitWarning)
            posterior = estimator.fit(obs).posterior_
        # markup=False: rich would take the [web] of alpha[web] for a style and drop it.
        console.print(summary_text(estimator.diagnostics_, options="fit"), markup=False)
        # The prior at this design goes into the file (ArviZ's prior group) for the report.
        posterior = posterior.with_prior(parameter_prior(obs, posterior.spec, seed=seed))
        for line in design_advice(posterior, suggest=f"bimix suggest {out_path} --rule info "
                                  f"--n 4 --step {obs.steps[-1]} --out next.csv"):
            console.print(f"design: {line}", markup=False, highlight=False)
        if estimator.selection_ is not None:
            console.print(estimator.selection_.summary(), highlight=False)
    from bimix_bayes.report import paper_coefficients, paper_table, s_ref_note

    posterior.save(out_path)
    table = paper_table(paper_coefficients(posterior, prob=0.9)).rename_axis(index=None,
                                                                          columns=None)
    spread = "posterior mean ± sd [90% interval]" if posterior.n_samples > 1 else "point estimate"
    out.print(f"The paper's coefficients, L = A / r^alpha * (B / s^beta + C), C = 1 ({spread}):")
    out.print(table.to_string())
    out.print(s_ref_note(posterior))
    if posterior.has_size_axis:
        out.print(f"model-size axis: runs at {', '.join(f'{n:.3g}' for n in posterior.sizes)} "
                  f"parameters; the coefficients above are at the largest size, and predict, "
                  "optimize and suggest take --params for any size")
    out.print(f"wrote {out_path} ({method}, law {posterior.law}, {len(posterior.domains)} domains)")


@app.command()
def compare(
    observations: Annotated[Path, typer.Argument(help="Tidy observations CSV.")],
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Also write the comparison table (CSV, one row per law).")] = None,
    law: Annotated[list[str] | None, typer.Option(
        help="A law to compare (repeatable; simplest first; default: the laws --law auto "
             "chooses among).")] = None,
    folds: Annotated[int, typer.Option(help="Folds of held-out mixtures.")] = 5,
    noise: Annotated[Noise, typer.Option(help="Noise model of every fit.")] = "normal",
    seed: Annotated[int, typer.Option(help="Seeds the folds and the refits.")] = 0,
) -> None:
    """Compare laws on held-out mixtures (grouped cross-validation) without producing a fit.

    Every law is refitted once per fold with that fold's mixtures held out, and scored on them:
    the log predictive density of each held-out curve, the MRE of the posterior-mean loss and the
    coverage of the 90% new-run band. The choice is what `bimix fit --law auto` would make.

    Example: bimix compare obs.csv --out laws.csv
    """
    from bimix_bayes._io import write_csv
    from bimix_bayes.comparison import select_law  # PyMC: not needed by --help
    from bimix_bayes.model import AUTO_LAWS

    check_outputs(files={"--out": out_path}, inputs={"OBSERVATIONS": observations})
    if folds < 2:
        raise BimixInputError(f"--folds must be at least 2, got {folds}")
    obs = Observations.read_csv(observations)
    selection = select_law(obs, laws=law or AUTO_LAWS, noise=noise, folds=folds, seed=seed,
                           progress=console.print)
    out.print(selection.summary(), highlight=False)
    if out_path is not None:
        write_csv(selection.table.reset_index(), out_path, index=False, float_format="%.6g",
                  units="elpd and its SEs in nats (log density of held-out log-loss curves); "
                        "mre as a fraction of the loss; coverage of the new-run band")
        out.print(f"wrote {out_path}")


@app.command()
def predict(
    posterior_path: Annotated[Path, typer.Argument(help="Posterior file from `bimix fit`.")],
    mixtures: Annotated[Path, typer.Option(help="Wide mixture CSV (mixture + one column per "
                                                "training domain).")],
    steps: Annotated[str, typer.Option(help="Comma-separated training steps, e.g. 1000,5000.")],
    out_path: Annotated[Path, typer.Option("--out", help="Prediction CSV to write.")],
    prob: Annotated[float, typer.Option(help="Probability of the [lower, upper] interval.")]
    = 0.9,
    band: Annotated[Band, typer.Option(
        help="new-run: the loss a new training run would report (the mean curve's uncertainty "
             "plus run and residual noise; what observed losses fall in), or mean: the mean "
             "curve's uncertainty only.")] = "new-run",
    seed: Annotated[int, typer.Option(help="Seed of the noise draws (--band new-run).")] = 0,
    params: ParamsOpt = None,
) -> None:
    """Predict each domain's validation loss for mixtures at given steps, with intervals.

    Example: bimix predict fit.nc --mixtures mix.csv --steps 1000,5000 --out pred.csv
    """
    check_outputs(files={"--out": out_path},
                  inputs={"POSTERIOR": posterior_path, "--mixtures": mixtures})
    step_list = _steps(steps)
    post = Posterior.load(posterior_path)
    mix = read_mixtures(mixtures, domains=post.sources)
    pred = post.predict(mix, step_list, prob=prob, band=band, seed=seed, params=params)
    _warn_extrapolation(post, step_list)
    _size_note(post, params)
    write_predictions(pred, out_path)
    out.print(f"wrote {out_path}: {mix.shape[0]} mixtures x {len(post.domains)} domains x "
              f"{len(step_list)} steps ({post.method} fit, {prob:g} {band} bands)")


def _size_note(post: Any, params: float | None) -> None:
    """Say on stderr which model size a fit across sizes speaks for, and when it extrapolates."""
    if not post.has_size_axis:
        return
    size = post.target_params(params)
    fitted = ", ".join(f"{n:.3g}" for n in post.sizes)
    if params is None:
        console.print(f"note: for {size:.3g} parameters, the largest fitted size (fitted: "
                      f"{fitted}); pass --params for another size", highlight=False)
    elif not post.sizes[0] <= size <= post.sizes[-1]:
        console.print(f"note: {size:.3g} parameters lies outside the fitted sizes ({fitted}): "
                      "the law extrapolates in model size", highlight=False)


def _warn_extrapolation(post: Any, steps: list[float]) -> None:
    """Say on stderr when ``steps`` lie far beyond the steps the posterior was fitted on."""
    from bimix_bayes.observations import extrapolation

    message = extrapolation(post.observations.steps, steps)
    if message:
        console.print(f"warning: {message}", highlight=False)


def _domain_pairs(specs: list[str] | None, option: str) -> dict[str, str]:
    """Parse repeated ``DOMAIN=VALUE`` options into a dict (values still text)."""
    pairs = {}
    for item in specs or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BimixInputError(f"{option} takes DOMAIN=VALUE, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BimixInputError(f"{option}: not a number: {text!r}") from None


def _bounds(specs: list[str] | None, domains: list[str]) -> dict[str, tuple[float, float]]:
    """Parse repeated ``--bounds DOMAIN=MIN:MAX`` (either side may be empty: 0 and 1).

    ``*=MIN:MAX`` applies to every domain not named on its own. Only the syntax is checked here;
    the API (:class:`~bimix_bayes.optimizer.Constraints`, the entropy mixtures) checks the values.
    """
    limits: dict[str, tuple[float, float]] = {}
    for name, text in _domain_pairs(specs, "--bounds").items():
        lo, sep, hi = text.partition(":")
        if not sep:
            raise BimixInputError(f"--bounds takes DOMAIN=MIN:MAX, got {name}={text}")
        limits[name] = (_number(lo or "0", "--bounds"), _number(hi or "1", "--bounds"))
    every = limits.pop("*", None)
    if every is not None:
        limits = {d: limits.get(d, every) for d in domains} | limits
    return limits


BoundsOpt = Annotated[list[str] | None, typer.Option(
    "--bounds", help="Per-domain limits DOMAIN=MIN:MAX, e.g. code=0.05:0.5 (repeatable; an empty "
                     "side means 0 or 1; '*=0.02:' applies to every other domain).")]


@app.command()
def entropy(
    corpus: Annotated[Path, typer.Argument(help="Corpus directory (bimix corpus build).")],
    out_path: Annotated[Path, typer.Option("--out", help="Tidy CSV domain,kind,entropy,proportion.")],
    kind: Annotated[list[str] | None, typer.Option(
        metavar=f"<{'|'.join(ENTROPY_KINDS)}>",
        help="Which proxy; repeat for several (default: all four).",
    )] = None,
    mixture_out: Annotated[Path | None, typer.Option(
        help="Also write the mixtures (one row entropy-<kind> per kind) for `bimix train`.",
    )] = None,
    temperature: Annotated[float, typer.Option(help="Softmax temperature; 1 is the paper's.")] = 1.0,
    bounds: BoundsOpt = None,
    split: Annotated[Split, typer.Option(help="Shards to read: train or val.")] = "train",
    passages: Annotated[int, typer.Option(help="Passages sampled for von Neumann.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the passage sample.")] = 0,
) -> None:
    """Entropy proxies per domain and the softmax mixtures they imply (training-free first guess).

    With --mixture-out, warns when those mixtures alone are too close to uniform to identify the
    law (they usually are: train them beside spread ones, bimix suggest --corpus DIR --n 8).

    Example: bimix entropy corpus/ --out entropy.csv --mixture-out entropy_mix.csv --bounds '*=0.02:'
    """
    from bimix_bayes._io import write_csv
    from bimix_bayes.entropy import ENTROPY_UNITS, KINDS, EntropyProxies  # scipy: not needed by --help

    check_outputs(files={"--out": out_path, "--mixture-out": mixture_out},
                  inputs={"CORPUS": corpus})
    limits = _bounds(bounds, Corpus.open(corpus).domains) if bounds else {}
    lower = {d: lo for d, (lo, _) in limits.items()} or None
    upper = {d: hi for d, (_, hi) in limits.items()} or None
    proxies = EntropyProxies(kind or KINDS, temperature, lower=lower, upper=upper, split=split,
                             n_passages=passages, seed=seed).fit(corpus, log=console.print)
    write_csv(proxies.to_frame(), out_path, units=ENTROPY_UNITS, index=False,
              float_format="%.10g")
    if mixture_out is not None:
        write_mixtures(proxies.mixtures_, mixture_out)
    out.print(proxies.mixtures_.round(4).to_string())
    narrow = narrow_shares(proxies.mixtures_, what="the entropy design")
    if mixture_out is not None and narrow:  # a design to train
        console.print(f"warning: {narrow}; train them beside spread mixtures (`bimix suggest "
                      f"--corpus {corpus} --n 8` adds seeded Dirichlet ones)", markup=False,
                      highlight=False)


def _int_list(text: str | None, option: str) -> list[int] | None:
    """Parse a comma-separated list of integers (``--seed 0,1,2``, ``--eval-steps 100,500``)."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BimixInputError(f"{option} takes comma-separated integers, got {text!r}") from None


ModelOpt = Annotated[str, typer.Option(
    help=f"Model preset: a name ({', '.join(preset_names())}; shipped in "
         "bimix_bayes/data/presets/) or the path of a TOML file; comma-separated presets of "
         "different sizes (tiny,tiny-wide) for runs across model sizes.")]


def _ladder(model: str) -> list[str]:
    """The presets of --model: one, or a comma-separated size ladder."""
    return [m.strip() for m in model.split(",") if m.strip()]


@app.command()
def train(
    mixtures: Annotated[Path, typer.Option(help="Wide mixtures CSV: one run per row (and seed).")],
    model: ModelOpt,
    steps: Annotated[int, typer.Option(help="Optimiser steps per run.")],
    corpus: Annotated[Path, typer.Option(help="Corpus directory (bimix corpus build).")],
    out_path: Annotated[Path, typer.Option(
        "--out", help="Observations CSV; rows are appended, with the preset's size as params.")],
    seed: Annotated[str, typer.Option(help="Seed, or comma-separated seeds (one run each).")] = "0",
    eval_steps: Annotated[str | None, typer.Option(
        help="Comma-separated evaluation steps (default: --n-evals log-spaced steps).")] = None,
    n_evals: Annotated[int, typer.Option(help="Log-spaced evaluations when no --eval-steps.")] = 8,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = "auto",
    compile_: Annotated[bool, typer.Option("--compile", help="Use torch.compile.")] = False,
    distribute: Annotated[Distribute, typer.Option(
        help="Under torchrun: 'data' (DDP per run) or 'mixtures' (one run per rank).")] = "data",
    checkpoint_dir: Annotated[Path | None, typer.Option(
        help="Checkpoints of unfinished runs (default OUT.ckpt/).")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        help="Also checkpoint every N steps (default: a tenth of the run).")] = None,
    keep_checkpoints: Annotated[bool, typer.Option(help="Keep final checkpoints.")] = False,
    threads: Annotated[int | None, typer.Option(
        help="CPU threads for torch (1 is fastest on a busy shared machine).")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train GPT proxy models on mixtures and append per-domain validation losses to OUT.

    Rerunning the same command after a crash resumes from the last checkpoint; finished runs are
    skipped. For several GPUs, launch with torchrun --nproc_per_node=K -m bimix_bayes.cli train ...
    Across model sizes (--model tiny,tiny-wide), each mixture trains at the preset of the size
    its params column names (bimix suggest --params-choices writes it).

    Example: bimix train --mixtures mix.csv --model tiny --steps 300 --corpus c/ --out o.csv
    """
    presets = _ladder(model)
    check_outputs(files={"--out": out_path},
                  dirs={"--checkpoint-dir": checkpoint_dir or out_path.with_name(out_path.name
                                                                                 + ".ckpt")},
                  inputs={"--mixtures": mixtures, "--corpus": corpus,
                          **{f"--model {m}": m for m in presets}})
    source = Corpus.open(corpus)
    mix = read_mixtures(mixtures, domains=source.domains)
    obs = trainer.train_at_sizes(source, mix, load_ladder(presets), out_path,
                                 sizes=read_sizes(mixtures), source=str(mixtures), steps=steps,
                                 seeds=_int_list(seed, "--seed"),
                                 eval_steps=_int_list(eval_steps, "--eval-steps"),
                                 n_evals=n_evals, device=device, compile=compile_,
                                 checkpoint_dir=checkpoint_dir,
                                 checkpoint_every=checkpoint_every,
                                 keep_checkpoints=keep_checkpoints, distribute=distribute,
                                 threads=threads, progress=progress)
    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun, not one per rank
        out.print(f"{out_path}: {len(obs.runs)} runs, {len(obs)} rows")


corpus_app = typer.Typer(help="Token corpora of real text domains for the trainer.",
                         no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("build")
def corpus_build(
    out_dir: Annotated[Path, typer.Option("--out", help="Corpus directory to create.")],
    embedded: Annotated[bool, typer.Option(
        help="Build offline from the small slice shipped in the package (seconds).")] = False,
    domains: Annotated[str | None, typer.Option(
        help="Comma-separated subset of the default domains (full build only).")] = None,
    tokenizer: Annotated[Tokenizer, typer.Option(help="byte, or bpe (trained here).")] = "byte",
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 4096,
    force: Annotated[bool, typer.Option(help="Replace an existing corpus at --out.")] = False,
) -> None:
    """Tokenise text domains into train/val uint16 shards with a manifest.

    Without --embedded, reads the eight default domains from installed Debian packages and wheels
    (install them once with scripts/install-corpus-sources). Same inputs give byte-identical output.

    Example: bimix corpus build --embedded --out corpus/
    """
    check_outputs(dirs={"--out": out_dir})
    options = {"tokenizer": tokenizer, "vocab_size": vocab_size, "overwrite": force,
               "log": console.print}
    if embedded:
        if domains is not None:
            raise BimixInputError("--domains applies to the full build, not --embedded")
        build_embedded_corpus(out_dir, **options)
    else:
        names = None if domains is None else [d.strip() for d in domains.split(",") if d.strip()]
        build_full_corpus(out_dir, domains=names, **options)
    built = Corpus.open(out_dir)
    total = sum(built.info(d)["train_tokens"] + built.info(d)["val_tokens"] for d in built.domains)
    out.print(f"{out_dir}: {len(built.domains)} domains, {total:,} tokens "
              f"({built.tokenizer['kind']}, vocab {built.vocab_size})")




@app.command()
def plot(
    input_path: Annotated[Path, typer.Argument(
        help="Posterior file from `bimix fit`; for --kind regret, the planner benchmark's CSV "
             "(strategy,runs,regret[,seed]).")],
    out_path: Annotated[Path, typer.Option("--out", help="Figure to write (.png, .pdf or .svg).")],
    kind: Annotated[PlotKind, typer.Option(
        help="curves, predicted-vs-observed, coefficients, simplex, regret, residuals or "
             "size-shift.")] = "curves",
    mixtures: Annotated[Path | None, typer.Option(
        help="curves: wide mixture CSV to draw (default: the observed runs).")] = None,
    steps: Annotated[str | None, typer.Option(
        help="curves: comma-separated steps (default: a grid past the last observed step).")] = None,
    step: Annotated[int | None, typer.Option(
        help="simplex, size-shift: training step compared (size-shift: default the last "
             "observed).")] = None,
    domains: Annotated[str | None, typer.Option(
        help="simplex: the three corner domains, comma-separated; curves: domains to draw.")] = None,
    reference: Annotated[Path | None, typer.Option(
        help="simplex: one-row mixture CSV (default: the best observed run).")] = None,
    quantity: Annotated[SimplexQuantity, typer.Option(
        help="simplex: expected-loss or prob-improvement.")] = "expected-loss",
    observations: Annotated[Path | None, typer.Option(
        help="predicted-vs-observed, residuals: held-out observations CSV (default: "
             "in-sample).")] = None,
    prob: Annotated[float, typer.Option(help="Probability of the bands and intervals.")] = 0.9,
    mean: Annotated[bool, typer.Option(
        help="curves, predicted-vs-observed: bands of the mean curve, not of a new run's loss.",
    )] = False,
    vocab_size: Annotated[int | None, typer.Option(
        help="curves: the tokenizer's vocabulary size, to mark ln(V), the loss of a uniform "
             "guess.")] = None,
    prior: Annotated[bool, typer.Option(
        help="coefficients: draw the prior beside the posterior (Bayesian fits).")] = True,
    params: Annotated[float | None, typer.Option(
        "--params", help="size-shift: the target model size whose optimum the smallest "
                         "size's is judged against (default the largest fitted size).")] = None,
) -> None:
    """Draw a figure of a fitted law (or of planner regret) and write it.

    Kinds: curves (loss against step with predictive bands per domain), predicted-vs-observed,
    coefficients (forest plot, prior beside posterior), simplex (ternary map of three domains),
    residuals (observed / predicted - 1 against step and share), regret, size-shift (the
    optimal mixture against model size, and P(the smallest size's optimum transfers), for a fit
    across sizes).

    Example: bimix plot fit.nc --kind simplex --domains web,code,math --step 5000 --out simplex.png
    """
    from bimix_bayes import plots

    check_outputs(files={"--out": out_path},
                  inputs={"INPUT": input_path, "--mixtures": mixtures, "--reference": reference,
                          "--observations": observations})
    plots.check_figure_path(out_path)
    names = None if domains is None else [d.strip() for d in domains.split(",") if d.strip()]
    if kind == "regret":
        from bimix_bayes.metrics import read_regret

        plots.plot_regret(read_regret(input_path), source=str(input_path), path=out_path)
        out.print(f"wrote {out_path}")
        return


    post = Posterior.load(input_path)
    if kind == "curves":
        mix = None if mixtures is None else read_mixtures(mixtures, domains=post.sources)
        plots.plot_loss_curves(post, mix, None if steps is None else _steps(steps), prob=prob,
                               band="mean" if mean else "new-run", domains=names,
                               vocab_size=vocab_size,
                               path=out_path)
    elif kind == "predicted-vs-observed":
        held = None if observations is None else Observations.read_csv(observations)
        plots.plot_predicted_vs_observed(post, held, prob=prob,
                                         band="mean" if mean else "new-run",
                                         path=out_path)
    elif kind == "coefficients":
        from bimix_bayes.model import prior_of

        plots.plot_coefficients(post, prob=prob, prior=prior_of(post) if prior else None,
                                path=out_path)
    elif kind == "residuals":
        held = None if observations is None else Observations.read_csv(observations)
        plots.plot_residuals(post, held, path=out_path)
    elif kind == "size-shift":
        fig = plots.plot_size_shift(post, step, params=params, prob=prob, path=out_path)
        out.print(fig.get_suptitle().replace("\n", "; "))
    else:
        if step is None:
            raise BimixInputError("--kind simplex needs --step")
        ref = None if reference is None else read_mixtures(reference, domains=post.sources)
        plots.plot_simplex(post, names, step, ref, quantity=quantity.replace("-", "_"),
                           path=out_path)
    out.print(f"wrote {out_path} ({kind}, {post.method} fit)")


@app.command()
def report(
    posterior_path: Annotated[Path, typer.Argument(help="Posterior file from `bimix fit`.")],
    out_path: Annotated[Path, typer.Option("--out", help="HTML report to write.")],
    plan: Annotated[Path | None, typer.Option(
        help="Plan JSON from `bimix optimize` (written beside its plan CSV): adds the decision."
    )] = None,
    title: Annotated[str, typer.Option(help="Heading of the report.")] = "bimix-bayes report",
    vocab_size: Annotated[int | None, typer.Option(
        help="The tokenizer's vocabulary size, to mark ln(V) in the loss curves.")] = None,
    prior: Annotated[bool, typer.Option(
        help="Draw the prior beside the posterior in the coefficient figure.")] = True,
) -> None:
    """Write one self-contained HTML report to share: figures, decision, diagnostics.

    The file opens offline in any browser (figures embedded): the data, the paper's coefficients
    with their uncertainty, the plan's mixture, gain band and P(improvement) (with --plan), the law
    comparison when the fit holds one, and each diagnostic with what it means.

    Example: bimix report fit.nc --plan plan.json --out report.html
    """
    from bimix_bayes.posterior import Posterior
    from bimix_bayes.report import read_plan, write_report

    post = Posterior.load(posterior_path)
    summary = None if plan is None else read_plan(plan)
    write_report(post, out_path, plan=summary, title=title, vocab_size=vocab_size, prior=prior)
    out.print(f"wrote {out_path}")


def _plan_inputs(post: Any, bounds: list[str] | None, available: list[str] | None,
                 max_epochs: float, tokens: float | None, weight: list[str] | None
                 ) -> tuple[Any, dict[str, float] | None]:
    """Constraints and target weights shared by ``optimize`` and ``suggest``."""
    from bimix_bayes.constraints import Constraints

    limits = _bounds(bounds, post.sources)
    tokens_by_domain = {k: _number(v, "--available")
                        for k, v in _domain_pairs(available, "--available").items()}
    constraints = Constraints.build(post.sources, limits, available_tokens=tokens_by_domain,
                                    max_epochs=max_epochs, total_tokens=tokens)
    weights = {k: _number(v, "--weight") for k, v in _domain_pairs(weight, "--weight").items()}
    return constraints, weights or None


def _point_fit_warnings(post: Any, shown: str) -> list[str]:
    """What a user must know before trusting numbers computed from a point (one-draw) fit."""
    from bimix_bayes.leastsq import coefficient_warnings

    draws = post.draws.sizes.get("chain", 0) * post.draws.sizes.get("draw", 0)
    if draws != 1 and post.method != "leastsq":
        return []
    diag = post.diagnostics
    return [f"this is a point fit ({post.method}, one draw): {shown} carry no parameter "
            "uncertainty (a zero-width interval, P(gain > 0) of 0 or 1); fit with --method bayes "
            "for honest ones",
            *coefficient_warnings(diag.get("not_estimable", {}), diag.get("at_bound", {}))]


def _target_step(step: float | None, tokens: float | None, tokens_per_step: float | None) -> float:
    if step is not None:
        return step
    if tokens is not None and tokens_per_step:
        return tokens / tokens_per_step
    raise BimixInputError("give the target --step, or the token budget as --tokens with "
                          "--tokens-per-step")


AvailableOpt = Annotated[list[str] | None, typer.Option(
    "--available", help="Unique tokens available per domain, DOMAIN=TOKENS (repeatable; needs "
                        "--tokens): caps the share at TOKENS x --max-epochs / --tokens.")]
WeightOpt = Annotated[list[str] | None, typer.Option(
    "--weight", help="Target weight of an evaluated domain, DOMAIN=W (repeatable; default "
                     "uniform; unlisted domains get 0 once any is given).")]
StepOpt = Annotated[float | None, typer.Option(help="Training step at which to judge mixtures.")]
TokensOpt = Annotated[float | None, typer.Option(
    help="Total training tokens of the planned run (token budget).")]
TokensPerStepOpt = Annotated[float | None, typer.Option(
    help="Tokens per training step: with --tokens, sets the step when --step is not given.")]
ParamsOpt = Annotated[float | None, typer.Option(
    "--params", help="Model size (parameters, e.g. 1.2e9) to predict or decide for, with a fit "
                     "to runs at several sizes; default its largest fitted size.")]


@app.command()
def optimize(
    posterior_path: Annotated[Path, typer.Argument(help="Posterior file from `bimix fit`.")],
    out_path: Annotated[Path, typer.Option("--out", help="Plan CSV to write (domain,proportion); "
                                                         "the gain summary goes beside it as the "
                                                         "same name with suffix .json, so --out "
                                                         "itself must not end in .json.")],
    step: StepOpt = None,
    reference: Annotated[Path | None, typer.Option(
        help="Wide mixture CSV with the one mixture to beat (default: the best observed).")] = None,
    objective: Annotated[Objective, typer.Option(
        help="expected-gain, prob-improvement or quantile (risk-averse).")] = "expected-gain",
    quantile: Annotated[float, typer.Option(help="Lower quantile of the gain for "
                                                 "--objective quantile.")] = 0.1,
    bounds: BoundsOpt = None,
    available: AvailableOpt = None,
    max_epochs: Annotated[float, typer.Option(help="Epochs allowed over a domain's data.")] = 1.0,
    tokens: TokensOpt = None,
    tokens_per_step: TokensPerStepOpt = None,
    weight: WeightOpt = None,
    prob: Annotated[float, typer.Option(help="Probability of the reported intervals.")] = 0.9,
    max_draws: Annotated[int | None, typer.Option(help="Use at most this many draws.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (draw subset, multi-start).")] = 0,
    params: ParamsOpt = None,
    export: Annotated[list[str] | None, typer.Option(
        help="Also write the mixture as a training configuration (repeatable): hf (PLAN.hf.py, "
             "datasets.interleave_datasets probabilities), olmo (PLAN.olmo.yaml, OLMo-core "
             "sources with target_ratio), megatron (PLAN.megatron.txt, weight-prefix pairs for "
             "--data-args-path), json (PLAN.weights.json).")] = None,
    export_paths: Annotated[str | None, typer.Option(
        help="olmo, megatron: each domain's data path or prefix, with {domain} replaced "
             "(default {domain}/*.npy for olmo, {domain}_text_document for megatron).")] = None,
) -> None:
    """Find the mixture with the best expected gain (or P(improvement), or safe quantile).

    Writes PLAN.csv (domain, proportion and the interval of the optimum), PLAN.json (the gain
    summary) and PLAN.mixture.csv, the mixture in the wide format that predict --mixtures,
    train --mixtures and suggest --candidates read; --export adds training configurations.

    Example: bimix optimize fit.nc --step 5000 --bounds code=0.05:0.5 --export hf --out plan.csv
    """
    unknown = sorted(set(export or []) - set(exports.FORMATS))
    if unknown:
        raise BimixInputError(f"--export takes {', '.join(exports.FORMATS)}, got "
                              f"{', '.join(unknown)}")
    from bimix_bayes.optimizer import optimize as run_optimize  # scipy: not needed by --help

    summary_path = out_path.with_suffix(".json")
    mixture_path = out_path.with_suffix(".mixture.csv")
    check_outputs(files={"--out": out_path, "the gain summary (--out with suffix .json)":
                         summary_path, "the mixture (--out with suffix .mixture.csv)":
                         mixture_path},
                  inputs={"POSTERIOR": posterior_path, "--reference": reference})
    target = _target_step(step, tokens, tokens_per_step)
    post = Posterior.load(posterior_path)
    constraints, weights = _plan_inputs(post, bounds, available, max_epochs, tokens, weight)
    ref = None if reference is None else read_mixtures(reference, domains=post.sources)
    if ref is not None and len(ref) != 1:
        raise BimixInputError(f"the reference must hold one mixture, found {len(ref)}",
                              path=reference)
    result = run_optimize(post, target, reference=ref, weights=weights, objective=objective,
                          constraints=constraints, prob=prob, quantile=quantile,
                          max_draws=max_draws, seed=seed, params=params)
    _warn_extrapolation(post, [target])  # after the API's checks: a bad option is the one line
    _size_note(post, params)
    summary = result.summary()
    with atomic_path(out_path) as tmp:
        result.plan_frame().to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(summary_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    exports.write_mixture(result.mixture, mixture_path)
    note = (f"Mixture chosen by bimix optimize {posterior_path} --step {target:g} ({objective}); "
            f"expected gain {summary['gain_mean']:.4g} nats/token, "
            f"P(gain > 0) = {summary['prob_improvement']:.3f}.")
    written = [exports.export(result.mixture, fmt, out_path.with_suffix(""), note=note,
                              paths=export_paths) for fmt in dict.fromkeys(export or [])]
    out.print(result.plan_frame().round(4).to_string(index=False))
    for line in _point_fit_warnings(post, "the interval and P(gain > 0) below"):
        console.print(f"warning: {line}")
    out.print(
        f"gain {summary['gain_mean']:.4g} nats [{summary['gain_lower']:.4g}, "
        f"{summary['gain_upper']:.4g}] ({prob:g} interval), P(gain > 0) = "
        f"{summary['prob_improvement']:.3f}, expected loss {summary['expected_loss']:.4g} vs "
        f"{summary['reference_expected_loss']:.4g} for the reference")
    out.print(summary["verdict"])
    out.print(f"wrote {', '.join(map(str, [out_path, summary_path, mixture_path, *written]))}")


@app.command()
def suggest(
    posterior_path: Annotated[Path | None, typer.Argument(
        help="Posterior file from `bimix fit` (omit with --corpus for a cold start).")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="Mixture CSV to write (trainable).")]
    = Path("next.csv"),
    n: Annotated[int, typer.Option("--n", help="How many mixtures to suggest (batch size).")] = 4,
    step: StepOpt = None,
    rule: Annotated[Rule | None, typer.Option(
        help="thompson (batch Thompson sampling) or info (value of information); default "
             "thompson, and info with --params-choices.")] = None,
    candidates: Annotated[Path | None, typer.Option(
        help="Wide mixture CSV to choose from (default: the whole feasible simplex).")] = None,
    corpus: Annotated[Path | None, typer.Option(
        help="Cold start without a posterior: the corpus's entropy mixtures, then seeded "
             "Dirichlet(1) mixtures up to --n, drawn so that every domain's share spans 3x or "
             "more (a first round whose fit identifies every domain).")] = None,
    bounds: BoundsOpt = None,
    available: AvailableOpt = None,
    max_epochs: Annotated[float, typer.Option(help="Epochs allowed over a domain's data.")] = 1.0,
    tokens: TokensOpt = None,
    tokens_per_step: Annotated[float | None, typer.Option(
        help="Tokens per training step: with --tokens, sets the step when --step is not given; "
             "with --params-choices, costs each run (default: the fit's tokens column).")] = None,
    weight: WeightOpt = None,
    min_distance: Annotated[float, typer.Option(
        help="Smallest total-variation distance between suggestions.")] = 0.05,
    max_draws: Annotated[int, typer.Option(help="Use at most this many draws.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    params: Annotated[float | None, typer.Option(
        "--params", help="Target model size (parameters) the runs should teach about, with a "
                         "fit to runs at several sizes; default its largest fitted size.")] = None,
    params_choices: Annotated[str | None, typer.Option(
        help="Comma-separated model sizes a run may be trained at, e.g. 1e7,3e7,1e8 (a fit "
             "across sizes): suggests (mixture, size) pairs by information about the --params "
             "optimum per FLOP (6 x params x tokens).")] = None,
    budget: Annotated[float | None, typer.Option(
        help="Compute budget of the batch in FLOPs (with --params-choices); --n caps the "
             "number of runs.")] = None,
) -> None:
    """Suggest the next mixtures to train, with each one's score, expected loss and sd.

    With --params-choices, also the model size to train each at and its cost in FLOPs, within
    --budget: small runs where they teach as much about the target size's optimum per FLOP.

    Example: bimix suggest fit.nc --n 4 --step 5000 --rule thompson --out next.csv
    Across sizes: bimix suggest fit.nc --step 5000 --params-choices 1e7,3e7,1e8 --budget 5e17
    --tokens-per-step 1e6 --params 1e9 --n 16 --out next.csv
    Cold start: bimix suggest --corpus corpus --n 8 --out design.csv
    """
    import pandas as pd

    from bimix_bayes.mixtures import SUGGESTION_UNITS
    from bimix_bayes.planner import suggest as run_suggest  # scipy: not needed by --help
    from bimix_bayes.study import first_design

    check_outputs(files={"--out": out_path},
                  inputs={"POSTERIOR": posterior_path, "--candidates": candidates,
                          "--corpus": corpus})
    if posterior_path is None:
        if corpus is None:
            raise BimixInputError("give a posterior file, or --corpus for a cold-start design")
        nxt = first_design(Corpus.open(corpus), n, seed=seed)
        narrow = narrow_shares(nxt, what="this first design")
        if narrow:
            console.print(f"warning: {narrow}; ask for more mixtures (--n {max(8, n + 4)}: "
                          "seeded Dirichlet ones after the entropy mixtures spread the shares)",
                          markup=False, highlight=False)
    else:
        choices = None if params_choices is None else [
            _number(c.strip(), "--params-choices") for c in params_choices.split(",")]
        target = _target_step(step, tokens, tokens_per_step)
        post = Posterior.load(posterior_path)
        constraints, weights = _plan_inputs(post, bounds, available, max_epochs, tokens, weight)
        cand = None if candidates is None else read_mixtures(candidates, domains=post.sources)
        if cand is not None and n > len(cand) * len(choices or [None]):
            raise BimixInputError(f"asked for {n} mixtures but the candidate list holds only "
                                  f"{len(cand)}", path=candidates)
        nxt = run_suggest(post, n, target, rule=rule, candidates=cand, weights=weights,
                          constraints=constraints, min_distance=min_distance,
                          max_draws=max_draws, seed=seed, params=params,
                          params_choices=choices, budget=budget,
                          tokens_per_step=tokens_per_step)
        _warn_extrapolation(post, [target])
        _size_note(post, params)
        if "cost" in nxt:
            limit = "" if budget is None else f" of the {budget:.3g} budget"
            console.print(f"note: {len(nxt)} runs cost {nxt['cost'].sum():.3g} FLOPs{limit} "
                          f"(6 x params x tokens); score: nats of regret at "
                          f"{post.target_params(params):.3g} parameters per run at the cost of "
                          f"the smallest size", highlight=False)
        so_far = post.observations.mixtures()[post.sources]
        narrow = narrow_shares(pd.concat([so_far, nxt[post.sources]]),
                               what="the runs so far with these suggestions")
        if narrow:
            console.print(f"warning: {narrow}; ask for mixtures that do (--rule info, or "
                          "--candidates or --bounds that allow them)", markup=False,
                          highlight=False)
        for line in _point_fit_warnings(post, "the scores and loss_sd"):
            console.print(f"warning: {line}")
    write_mixtures(nxt, out_path, units=SUGGESTION_UNITS if "expected_loss" in nxt else None)
    out.print(nxt.round(4).to_string())
    out.print(f"wrote {out_path} ({len(nxt)} mixtures)")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo-out"),
    steps: Annotated[int, typer.Option(help="Training steps per proxy run.")] = 150,
    batch: Annotated[int, typer.Option(help="Next mixtures to suggest.")] = 4,
    draws: Annotated[int, typer.Option(help="NUTS draws (and tuning steps) per chain.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seeds everything.")] = 0,
) -> None:
    """The whole product on the embedded corpus, on CPU, in a few minutes.

    Builds the embedded corpus, trains an initial design of mixtures with a small GPT, fits the
    Bayesian model and prints the loss bands, the optimised mixture with its expected gain and
    P(improvement), and the next mixtures to train; plots and a self-contained report.html go
    to --out. Rerunning resumes.

    Example: bimix demo --out demo-out
    """
    from bimix_bayes.demo import run_demo

    check_outputs(dirs={"--out": out_dir})
    result = run_demo(out_dir, steps=steps, batch=batch, draws=draws, tune=draws, seed=seed,
                      log=console.print)
    s = result.plan.summary()
    losses = result.plan.losses
    pct = f"{100 * s['prob']:.0f}%"
    out.rule(f"Predicted loss at step {steps} (nats per token, mean [{pct} band])")
    for d in result.posterior.domains:
        cells = [f"{m}: {losses['mean'].sel(mixture=m, domain=d).item():.3f} "
                 f"[{losses['lower'].sel(mixture=m, domain=d).item():.3f}, "
                 f"{losses['upper'].sel(mixture=m, domain=d).item():.3f}]"
                 for m in ("optimum", "reference")]
        out.print(f"{d:>12}  " + "   ".join(cells))
    out.rule("Optimised mixture")
    out.print(result.plan.mixture.round(3).to_string())
    out.print(f"expected gain {s['gain_mean']:.4f} nats/token, {pct} interval "
              f"[{s['gain_lower']:.4f}, {s['gain_upper']:.4f}], "
              f"P(improvement) = {s['prob_improvement']:.2f}")
    out.print(s["verdict"])
    out.rule("Next mixtures to train")
    out.print(result.suggestions.drop(columns="rule").round(3).to_string())
    out.print(f"\nreport: {result.report}")


@app.command()
def loop(
    corpus: Annotated[Path, typer.Option(help="Corpus directory (bimix corpus build).")],
    model: ModelOpt,
    steps: Annotated[int, typer.Option(help="Optimiser steps per run.")],
    study_dir: Annotated[Path, typer.Option("--out", help="Study folder (resumable).")],
    rounds: Annotated[int, typer.Option(help="Planned rounds after the initial design.")] = 2,
    batch: Annotated[int, typer.Option(help="Mixtures per planned round.")] = 4,
    initial: Annotated[Path | None, typer.Option(
        help="Initial design (wide mixtures CSV); default: the corpus's entropy mixtures.")] = None,
    observations: Annotated[Path | None, typer.Option(
        help="Start from these observations instead of training an initial design (e.g. the "
             "output of bimix train or bimix import): they become round 0, fitted, not "
             "retrained.")] = None,
    posterior: Annotated[Path | None, typer.Option(
        help="With --observations: their fit from bimix fit, used as round 0's posterior "
             "instead of fitting them again.")] = None,
    rule: Annotated[Rule | None, typer.Option(
        help="Planner rule: thompson or info (default thompson; info across model sizes).")]
    = None,
    params: Annotated[float | None, typer.Option(
        "--params", help="Across model sizes: the target size the plans are for (default the "
                         "largest preset's).")] = None,
    budget: Annotated[float | None, typer.Option(
        help="Across model sizes: FLOPs per planned round (6 x params x tokens per run); "
             "--batch caps the runs.")] = None,
    draws: Annotated[int, typer.Option(help="NUTS draws (and tuning steps) per chain.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seeds training, fitting and planning.")] = 0,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = "auto",
    threads: Annotated[int | None, typer.Option(
        help="CPU threads for torch (1 is fastest on a busy shared machine).")] = None,
) -> None:
    """Rounds of suggest, train and refit; every observation in OUT/observations.csv.

    Each step's output is written atomically and reused when it exists, and unfinished runs resume
    from checkpoints: rerun the same command after a crash to continue.

    Example: bimix loop --corpus c/ --model tiny --steps 300 --out study/ --rounds 3
    From runs already trained and fitted: bimix loop --observations obs.csv --posterior fit.nc
    --corpus c/ --model demo --steps 150 --out study/ --rounds 1
    Across model sizes (the initial design at every size, then the planner picks each run's
    mixture and size): bimix loop --corpus c/ --model tiny,tiny-wide --steps 150 --out study/
    --budget 6e12
    """
    if initial is not None and observations is not None:
        raise BimixInputError("give --initial (mixtures to train) or --observations (runs "
                              "already trained), not both")
    from bimix_bayes.diagnostics import UntrustworthyFitWarning, summary_text
    from bimix_bayes.optimizer import optimize
    from bimix_bayes.report import write_report

    presets = _ladder(model)
    check_outputs(dirs={"--out": study_dir},
                  inputs={"--corpus": corpus, "--initial": initial,
                          **{f"--model {m}": m for m in presets}})
    source = Corpus.open(corpus)
    design = read_mixtures(initial, domains=source.domains) if initial else None
    study = Study(study_dir, source, presets, steps=steps, batch=batch, rule=rule, seed=seed,
                  device=None if device == "auto" else device, threads=threads,
                  fit={"draws": draws, "tune": draws}, params=params, budget=budget)
    if posterior is not None and observations is None:
        raise BimixInputError("--posterior is round 0's fit of --observations; give both")
    if observations is not None:
        study.start_from(Observations.read_csv(observations),
                         None if posterior is None else Posterior.load(posterior))
    with warnings.catch_warnings():  # the latest fit's summary below states its problems once
        warnings.simplefilter("ignore", UntrustworthyFitWarning)
        post = study.run(rounds, design)
    console.print(summary_text(post.diagnostics, options="loop"), markup=False)
    plan = optimize(post, study.target_step, seed=seed, params=study.target_params).summary()
    report = write_report(post, study.directory / "report.html", plan=plan,
                          title=f"bimix loop report: {study.directory}",
                          vocab_size=source.vocab_size, options="loop")
    out.print(f"{study.rounds_done()} rounds fitted; {len(post.observations.runs)} runs in "
              f"{study.observations_path}; latest posterior {study.round_dir(study.rounds_done() - 1)}")
    out.print(f"plan at step {study.target_step}: {plan['verdict']}")
    out.print(f"report: {report}")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bimix`` script.

    Every user error, a usage error of the command line included, is one ``error: `` line on
    stderr with exit status 2; Ctrl-C prints ``interrupted`` and exits 130.
    """
    # typer 0.29 vendors click as typer._click; the public names are typer.BadParameter's bases.
    usage_error = typer.BadParameter.__mro__[1]  # UsageError
    click_exception = typer.BadParameter.__mro__[2]  # ClickException

    # Users act on a warning's text, not on the source line that raised it.
    warnings.formatwarning = _one_line_warning
    try:
        # Not standalone: click would print a usage error as a boxed paragraph, and typer turns
        # Ctrl-C into a silent exit 130 (it returns 130 here instead).
        code = app(args=argv, prog_name="bimix", standalone_mode=False)
    except BimixInputError as exc:
        # One line whatever the message holds (a library's text may span several).
        print(f"error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        sys.exit(2)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `bimix`: the help text
            print(exc.format_message(), file=sys.stderr)
            sys.exit(2)
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        # The vendored click validates choices with pydantic, which prefixes "Value error, ".
        message = " ".join(exc.format_message().replace("Value error, ", "").split())
        print(f"error: {where}{message}{hint}", file=sys.stderr)
        sys.exit(2)
    except click_exception as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer's answer to KeyboardInterrupt; no command returns 130 itself
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
