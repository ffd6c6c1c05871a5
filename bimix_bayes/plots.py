"""Figures of a fitted law: loss curves, calibration, coefficients, the mixture simplex, regret,
the optimum's shift with model size.

Every function takes API objects (a :class:`~bimix_bayes.posterior.Posterior`, a DataFrame), returns
a :class:`matplotlib.figure.Figure` and, given ``path``, also writes it atomically (the format
follows the file suffix: ``.png``, ``.pdf``, ``.svg``). Figures are built without ``pyplot``, so
nothing depends on a screen or on global figure state, and a loop of plots leaks no memory. In a
notebook, run ``%matplotlib inline`` once: it makes Jupyter display a returned figure (without it,
a figure made outside ``pyplot`` shows as text).

- :func:`plot_loss_curves`: loss against step, predictive bands, observations on top;
- :func:`plot_predicted_vs_observed`: calibration, predicted median and interval per observation;
- :func:`plot_coefficients`: forest plot of the per-domain coefficients (and transfer weights);
- :func:`plot_simplex`: ternary map of the expected loss or of P(beating the reference);
- :func:`plot_regret`: regret against training runs, per planning strategy;
- :func:`plot_residuals`: observed / predicted - 1 against step and against share;
- :func:`plot_size_shift`: the optimal mixture against model size (a fit across sizes).

Plots only draw: the numbers they show come from the modules that own them
(:mod:`bimix_bayes.metrics` for residuals and regret, :mod:`bimix_bayes.simplex` for the ternary
map, :mod:`bimix_bayes.mixtures` for choosing distinct mixtures).

``bimix plot`` draws each of them from files. Losses are in nats per token throughout.

Examples
--------
>>> post = Posterior.load("fit.nc")                                           # doctest: +SKIP
>>> plot_loss_curves(post, path="curves.png")                                 # doctest: +SKIP
>>> plot_simplex(post, ("web", "code", "math"), step=5000, path="simplex.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import (
    EngFormatter,
    FormatStrFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from bimix_bayes._io import atomic_path
from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations

if TYPE_CHECKING:
    from bimix_bayes.posterior import Posterior

UNITS = "nats per token"
#: Axis labels saying what each coefficient of :mod:`bimix_bayes.laws` means.
COEFFICIENT_LABELS = {
    "log_c": "log_c: log irreducible-loss factor",
    "alpha": "alpha: proportion exponent",
    "u": "u: log reducible / irreducible at s_ref",
    "beta": "beta: step exponent",
    "eps": "eps: proportion floor",
    "sigma": "sigma: residual scale (log-loss)",
    "sigma_run": "sigma_run: per-run scale (log-loss)",
}
#: Default number of observed runs drawn by :func:`plot_loss_curves`: the demo's six domains
#: barely depend on the mixture, and more than four overlapping bands do not read.
MAX_CURVES = 4
#: Bands are filled only for this many mixtures or fewer; beyond, stacked fills turn into one
#: brown blur, so the bands are drawn as dashed edges in their mixture's colour only.
MAX_FILLED = 2
#: Monte Carlo samples behind every predictive band (see :func:`predictive`).
PLOT_SAMPLES = 2000


#: Figure formats by file suffix (no suffix: PNG).
FIGURE_FORMATS = ("png", "pdf", "svg")


def check_figure_path(path: str | os.PathLike[str]) -> str:
    """The figure format that ``path``'s suffix names; an unknown suffix is a user error.

    Called before any work, so ``--out fig.xyz`` fails at once, not after the plot is drawn.

    Examples
    --------
    >>> check_figure_path("fit.svg"), check_figure_path("fit")
    ('svg', 'png')
    """
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in FIGURE_FORMATS:
        raise BimixInputError(f"unknown figure format {fmt!r}; use a .png, .pdf or .svg name",
                              path=path)
    return fmt


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` atomically; the format follows the suffix of ``path`` (default PNG).

    Examples
    --------
    >>> save_figure(Figure(), "empty.png")                                     # doctest: +SKIP
    """
    fmt = check_figure_path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.2), **kw) -> tuple[Figure, list]:
    """A figure with ``n`` panels on a grid of at most ``ncols`` columns; spare panels removed."""
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw).ravel()
    for ax in axes[n:]:
        ax.remove()
    return fig, list(axes[:n])


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


# ------------------------------------------------------------------------------ prediction
def subsample(post: Posterior, n: int, seed: int = 0) -> Posterior:
    """The posterior restricted to a seeded subset of ``n`` draws (one chain); all when fewer.

    Quantiles of predictions need a fixed number of Monte Carlo samples, not every draw, so plots
    of a large posterior stay fast.

    Examples
    --------
    >>> subsample(post, 2000).n_samples                                           # doctest: +SKIP
    2000
    """
    if post.n_samples <= n:
        return post
    index = np.sort(np.random.default_rng(seed).choice(post.n_samples, size=n, replace=False))
    draws = (post.draws.stack(sample=("chain", "draw")).isel(sample=index)
             .drop_vars(["sample", "chain", "draw"]).rename(sample="draw")
             .assign_coords(draw=np.arange(n)).expand_dims(chain=[0]))
    tree = post.tree.copy()
    tree["posterior"] = xr.DataTree(draws.transpose("chain", "draw", ...))
    return type(post)(tree)


def predictive(
    post: Posterior,
    mixtures: pd.DataFrame,
    steps: Sequence[int],
    prob: float = 0.9,
    band: str = "new-run",
    seed: int = 0,
    n_samples: int = PLOT_SAMPLES,
) -> xr.Dataset:
    """:meth:`Posterior.predict` from about ``n_samples`` Monte Carlo samples.

    A posterior with more draws is subsampled (:func:`subsample`), which keeps plots fast; with
    the new-run band a smaller one (a one-draw least-squares fit) has its draws repeated by
    ``predict(min_samples=n_samples)`` so that the noise band has its spread.

    Examples
    --------
    >>> pred = predictive(leastsq_post, mixtures, [1000], band="new-run")     # doctest: +SKIP
    """
    return subsample(post, n_samples, seed).predict(
        mixtures, steps, prob=prob, band=band, seed=seed, min_samples=n_samples)


def _largest_size(post: Posterior, observations: Observations) -> tuple[Observations, str]:
    """For a fit across model sizes, the runs at the largest size of ``observations`` (the size
    the figures predict at) and a note saying so; otherwise the observations unchanged."""
    if not post.has_size_axis:
        return observations, ""
    size, part = post.size_groups(observations)[-1]
    return part, f" (runs of {size:.3g} parameters)"


# ------------------------------------------------------------------------------ loss curves
def default_steps(observations: Observations, n: int = 60, beyond: float = 4.0) -> list[int]:
    """A log-spaced step grid from the first observed step to ``beyond`` times the last.

    The grid never starts before the first observed step: a power law extrapolated back towards
    step 0 rises without bound, past the loss of a uniform guess (``ln`` of the vocabulary size),
    which no tokenizer allows. Forward extrapolation is what users ask for, so it is kept (and
    marked in the figure).

    Examples
    --------
    >>> obs = Observations.from_frame(pd.DataFrame({"run": ["a", "a"], "domain": ["x", "x"],
    ...     "proportion": [1.0, 1.0], "step": [100, 1000], "loss": [3.0, 2.5]}))
    >>> grid = default_steps(obs)
    >>> grid[0], grid[-1]
    (100, 4000)
    """
    steps = observations.steps
    grid = np.geomspace(steps[0], steps[-1] * beyond, n)
    return sorted({int(round(s)) for s in grid})


#: Marker per mixture (cycled), so runs of near-identical mixtures can still be told apart.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def plot_loss_curves(
    post: Posterior,
    mixtures: pd.DataFrame | None = None,
    steps: Sequence[int] | None = None,
    prob: float = 0.9,
    band: str = "new-run",
    *,
    domains: Sequence[str] | None = None,
    max_mixtures: int = MAX_CURVES,
    vocab_size: int | None = None,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Loss against training step with predictive bands, one panel per domain.

    Each mixture gets its own colour (legend on the right) and marker: the posterior median of
    its mean loss curve (line), a ``prob`` band (dashed edges, filled lightly when at most
    :data:`MAX_FILLED` mixtures are drawn, so overlapping bands of similar mixtures stay apart)
    and the observed losses of runs whose name matches a mixture. A dotted line marks the last
    observed step, so extrapolation is visible; with ``vocab_size`` a grey line marks
    ``ln(vocab_size)``, the loss of a uniform guess, which no real curve exceeds.

    Parameters
    ----------
    post : Posterior
        The fitted law.
    mixtures : pandas.DataFrame, optional
        Index ``mixture``, one column per training domain. Default: the observed runs' mixtures,
        at most ``max_mixtures`` of them, the most distinct first
        (:func:`bimix_bayes.mixtures.most_distinct`; the title says how many are shown).
    steps : sequence of int, optional
        Steps to predict at; default :func:`default_steps` (from the first observed step to
        beyond the last).
    prob : float
        Probability mass of the bands.
    band : {"new-run", "mean"}
        ``"new-run"``: bands for the loss a new training run would report (run effect and
        residual noise included), comparable with the observed points. ``"mean"``: bands of the
        mean curve.
    domains : sequence of str, optional
        Evaluated domains to draw (default all).
    max_mixtures : int
        Cap on the default mixtures (ignored when ``mixtures`` is given).
    vocab_size : int, optional
        The tokenizer's vocabulary size, to mark the uniform-guess bound.
    seed : int
        Seeds the noise draws of the new-run band.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_loss_curves(post, vocab_size=257, path="curves.png")          # doctest: +SKIP
    """
    from bimix_bayes.mixtures import most_distinct

    obs, note = _largest_size(post, post.observations)
    if mixtures is None:
        mixtures = obs.mixtures()
        if len(mixtures) > max_mixtures:
            note += f" ({max_mixtures} most distinct of {len(mixtures)} runs shown)"
            mixtures = most_distinct(mixtures, max_mixtures)
    domains = _check_domains(post, domains)
    steps = default_steps(obs) if steps is None else steps
    pred = predictive(post, mixtures, steps, prob=prob, band=band, seed=seed)
    # The line is the median mean curve: smooth, unlike a quantile of noisy draws.
    center = (pred if band == "mean" else predictive(post, mixtures, steps, band="mean"))["median"]

    frame = obs.frame[obs.frame["loss"].notna()]
    fig, axes = _grid(len(domains))
    colors = _colors(pred.sizes["mixture"])
    x = pred["step"].to_numpy()
    for ax, domain in zip(axes, domains, strict=True):
        for i, (color, name) in enumerate(zip(colors, pred["mixture"].values, strict=True)):
            p = pred.sel(mixture=name, domain=domain)
            marker = _MARKERS[i % len(_MARKERS)]
            if len(colors) <= MAX_FILLED:
                ax.fill_between(x, p["lower"], p["upper"], color=color, alpha=0.15, linewidth=0)
            for edge in (p["lower"], p["upper"]):
                ax.plot(x, edge, color=color, linewidth=0.7, linestyle="--", alpha=0.8,
                        gid="band-edge")
            ax.plot(x, center.sel(mixture=name, domain=domain), color=color, linewidth=1.5,
                    marker=marker, markevery=max(len(x) // 6, 1), markersize=4, label=str(name),
                    gid="median")
            seen = frame[(frame["run"] == name) & (frame["domain"] == domain)]
            if len(seen):
                ax.scatter(seen["step"].astype(float), seen["loss"], color=color, s=16, zorder=3,
                           marker=marker, edgecolor="white", linewidth=0.5)
        ax.axvline(obs.steps[-1], color="0.4", linestyle=":", linewidth=1)
        if vocab_size is not None:
            ax.axhline(np.log(vocab_size), color="0.5", linewidth=1, gid="uniform-bound")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(domain)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"loss ({UNITS})")
        ax.grid(alpha=0.3, which="both", linewidth=0.5)
    described = "a new run's loss" if band == "new-run" else "the mean curve"
    shown = frame["run"].isin([str(m) for m in pred["mixture"].values]).any()
    parts = [f"dots: observed{note}"] if shown else [note.strip()] if note else []
    parts.append("dotted: last observed step")
    if vocab_size is not None:
        parts.append(f"grey: ln({vocab_size}) = {np.log(vocab_size):.2f}, a uniform guess")
    fig.suptitle(f"Predicted loss: median curve and {prob:.0%} band (dashed edges) of {described}\n"
                 + "; ".join(parts))
    handles, labels = axes[0].get_legend_handles_labels()
    # Centred on the right: the two-line title above spans the legend's column too.
    fig.legend(handles, labels, title="mixture", loc="outside right center")
    return _finish(fig, path)


def _check_domains(post: Posterior, domains: Sequence[str] | None) -> list[str]:
    if domains is None:
        return post.domains
    unknown = [d for d in domains if d not in post.domains]
    if unknown:
        raise BimixInputError(f"unknown domain(s) {', '.join(unknown)}; the posterior evaluates "
                              f"{', '.join(post.domains)}")
    return list(domains)


# ------------------------------------------------------------------------ predicted vs observed
def plot_predicted_vs_observed(
    post: Posterior,
    observations: Observations | None = None,
    prob: float = 0.9,
    band: str = "new-run",
    *,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Predicted against observed loss with ``prob`` intervals, coloured by domain.

    Each observed (run, domain, step) gets the predictive median for its run's mixture and step,
    with an interval bar; the title reports the share of observations inside their intervals
    (close to ``prob`` when the model is calibrated).

    Parameters
    ----------
    post : Posterior
        The fitted law.
    observations : Observations, optional
        Held-out observations (their runs' mixtures must cover the posterior's training domains).
        Default: the observations the law was fitted to (in-sample).
    prob : float
        Probability mass of the intervals.
    band : {"new-run", "mean"}
        ``"new-run"``: intervals for an observed loss (run effect and residual noise included),
        the ones that should cover the points. ``"mean"``: intervals of the mean curve.
    seed : int
        Seeds the noise draws of the new-run band.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_predicted_vs_observed(post, held_out, path="calibration.png")   # doctest: +SKIP
    """
    obs = post.observations if observations is None else observations
    if observations is None:
        kind = "in-sample"
    else:
        kind = "held-out runs" if set(obs.runs).isdisjoint(post.observations.runs) else "given runs"
    obs, note = _largest_size(post, obs)
    kind += note
    rows = obs.frame[obs.frame["loss"].notna()]
    unknown = sorted(set(rows["domain"]) - set(post.domains))
    if unknown:
        raise BimixInputError(f"observed domain(s) {', '.join(unknown)} are not evaluated by the "
                              f"posterior ({', '.join(post.domains)})", path=obs.source)
    mixtures = obs.mixtures().reindex(columns=post.sources)
    if mixtures.isna().any().any():
        lacking = [s for s in post.sources if s not in obs.domains]
        raise BimixInputError(f"the observations give no proportion for training domain(s) "
                              f"{', '.join(lacking)}", path=obs.source)
    pred = predictive(post, mixtures, obs.steps, prob=prob, band=band, seed=seed)
    at = {k: xr.DataArray(rows[k].to_numpy(), dims="row") for k in ("run", "domain")}
    at["step"] = xr.DataArray(rows["step"].to_numpy(dtype=int), dims="row")
    cell = pred[["median", "lower", "upper"]].sel(mixture=at["run"], domain=at["domain"],
                                                  step=at["step"])
    observed = rows["loss"].to_numpy(dtype=float)
    median, lower, upper = (cell[k].to_numpy() for k in ("median", "lower", "upper"))
    inside = (observed >= lower) & (observed <= upper)

    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    ax = fig.subplots()
    domains = [d for d in post.domains if d in set(rows["domain"])]
    for color, domain in zip(_colors(len(domains)), domains, strict=True):
        m = (rows["domain"] == domain).to_numpy()
        ax.errorbar(observed[m], median[m], yerr=[median[m] - lower[m], upper[m] - median[m]],
                    fmt="o", markersize=3, color=color, ecolor=color, elinewidth=0.8,
                    alpha=0.8 if len(observed) < 500 else 0.3, label=domain)
    span = [min(observed.min(), lower.min()), max(observed.max(), upper.max())]
    ax.plot(span, span, color="0.3", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlabel(f"observed loss ({UNITS})")
    ax.set_ylabel(f"predicted loss ({UNITS}), median and {prob:.0%} interval")
    ax.set_title(f"Predicted vs observed ({kind}): {inside.mean():.0%} of {len(observed)} "
                 f"inside their {prob:.0%} intervals")
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.legend(title="domain", fontsize="small")
    return _finish(fig, path)


# ------------------------------------------------------------------------------ coefficients
def plot_coefficients(
    post: Posterior,
    var_names: Sequence[str] | None = None,
    prob: float = 0.9,
    *,
    prior: xr.Dataset | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Forest plot of the per-domain coefficients, one panel (own x scale) per coefficient.

    Each domain gets its posterior median (dot), central 50 % interval (thick) and ``prob``
    interval (thin). Given ``prior`` draws, the prior's intervals are drawn in grey just below
    each domain's posterior, so one sees how much the data moved and narrowed each coefficient.
    The coefficients live on very different scales (``eps`` near 1e-3, ``log_c`` near 1), so they
    get a panel each instead of arviz-plots' single shared axis; ``eps`` is drawn on a log axis.
    With the transfer law a last panel maps the posterior median transfer weight from each source
    (column) to each domain (row).

    Parameters
    ----------
    post : Posterior
        The fitted law (a one-draw least-squares fit shows points only).
    var_names : sequence of str, optional
        Per-domain variables to draw; default ``log_c, alpha, u, beta, eps``. Any variable of the
        draws with dims ``(chain, draw, domain)`` works (``sigma``, ``sigma_run``).
    prob : float
        Probability mass of the thin interval.
    prior : xarray.Dataset, optional
        Prior draws with dims ``(sample, domain)`` per variable, such as
        :func:`bimix_bayes.model.prior_predictive` returns (:func:`bimix_bayes.model.prior_of`
        gives those of a fitted posterior). Variables it lacks are drawn without a prior.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_coefficients(post, prior=prior_of(post), path="coefficients.png")  # doctest: +SKIP
    """
    draws = post.draws
    law = post.spec.law_component
    if var_names is None:
        var_names = [k for k, dims in law.parameters.items() if dims == ("domain",)]
    var_names = list(var_names)
    bad = [v for v in var_names if v not in draws or set(draws[v].dims) != {"chain", "draw", "domain"}]
    if bad:
        raise BimixInputError(f"not a per-domain variable of this posterior: {', '.join(bad)}")
    transfer = "transfer" in law.parameters
    n = len(var_names) + transfer
    fig, axes = _grid(n, ncols=3, size=(4.0, 0.55 * len(post.domains) + 1.5), sharey=False)
    y = np.arange(len(post.domains))[::-1].astype(float)
    tail = (1 - prob) / 2
    levels = [tail, 0.25, 0.5, 0.75, 1 - tail]
    for ax, name in zip(axes[:len(var_names)], var_names, strict=True):
        values = draws[name].stack(sample=("chain", "draw")).transpose("domain", "sample").to_numpy()
        q = np.quantile(values, levels, axis=1)
        has_prior = prior is not None and name in prior
        yy = y + 0.12 if has_prior else y
        if has_prior:
            p = prior[name].transpose("domain", ...).sel(domain=post.domains).to_numpy()
            pq = np.quantile(p.reshape(len(post.domains), -1), levels, axis=1)
            ax.hlines(y - 0.18, pq[0], pq[4], color="0.6", linewidth=1)
            ax.hlines(y - 0.18, pq[1], pq[3], color="0.6", linewidth=3.5, label="prior")
            ax.plot(pq[2], y - 0.18, "o", color="0.6", markerfacecolor="white", markersize=4,
                    gid="prior-median")
            values = np.concatenate([values, p.reshape(len(post.domains), -1)], axis=1)
        ax.hlines(yy, q[0], q[4], color="C0", linewidth=1)
        ax.hlines(yy, q[1], q[3], color="C0", linewidth=3.5, label="posterior")
        ax.plot(q[2], yy, "o", color="C0", markerfacecolor="white", markersize=5, gid="median")
        if name == "eps" and (values > 0).all():
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(y, post.domains)
        ax.set_xlabel(COEFFICIENT_LABELS.get(name, name))
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    if transfer:
        ax = axes[-1]
        w = draws["transfer"].median(("chain", "draw")).transpose("domain", "source")
        image = ax.imshow(w.to_numpy(), cmap="Greens", aspect="auto", vmin=0)
        ax.set_xticks(range(w.sizes["source"]), [str(s) for s in w["source"].values], rotation=45,
                      ha="right")
        ax.set_yticks(range(w.sizes["domain"]), [str(d) for d in w["domain"].values])
        ax.set_xlabel("source (trained on)")
        ax.set_ylabel("domain (evaluated)")
        ax.set_title("transfer weight, posterior median")
        fig.colorbar(image, ax=ax, shrink=0.8)
    shown = (f"{post.n_samples} draws): median, 50% and {prob:.0%} intervals" if post.n_samples > 1
             else "point estimate)")
    fig.suptitle(f"Coefficients ({post.law} law, {post.method}, {shown}"
                 + ("; grey: the prior" if prior is not None else ""))
    if prior is not None:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    return _finish(fig, path)


# ---------------------------------------------------------------------------------- simplex
def plot_simplex(
    post: Posterior,
    domains: Sequence[str] | None,
    step: int,
    reference: pd.DataFrame | pd.Series | None = None,
    quantity: Literal["expected_loss", "prob_improvement"] = "expected_loss",
    *,
    resolution: int = 40,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Ternary map over three training domains of the expected loss or of P(beating the reference).

    Draws :func:`bimix_bayes.simplex.simplex_map` on ``mpltern``'s ternary axes, whose ticks read
    each corner domain's share: ``quantity`` ``expected_loss`` fills the triangle with the
    posterior mean of the average loss at ``step``, ``prob_improvement`` with the probability
    that it is lower than the reference's. A star marks the reference, a cross the best mixture
    on the grid, and dots, drawn on top of both, the observed runs that lie on this slice of the
    simplex (every other domain at the reference's share).

    Parameters
    ----------
    post, domains, step, reference, resolution
        As for :func:`bimix_bayes.simplex.simplex_map`.
    quantity : {"expected_loss", "prob_improvement"}
        What fills the triangle.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_simplex(post, ("web", "code", "math"), step=5000,
    ...                    quantity="prob_improvement", path="simplex.png")   # doctest: +SKIP
    """
    import mpltern  # noqa: F401  (registers the "ternary" projection)

    from bimix_bayes.simplex import QUANTITIES, corner_domains, on_slice, simplex_map

    if quantity not in QUANTITIES:
        raise BimixInputError(f"unknown quantity {quantity!r}; expected one of "
                              f"{', '.join(QUANTITIES)}")
    grid, reference = simplex_map(post, domains, step, reference, resolution=resolution)
    domains = corner_domains(post, domains)
    total = float(reference[domains].sum())
    value = grid[quantity].to_numpy()
    if quantity == "expected_loss":
        best = int(np.argmin(value))
        label = f"expected average loss ({UNITS})"
        levels, norm, cmap = 15, None, "viridis"
    else:
        # Many mixtures can be sure to win (P = 1); among them the lowest expected loss is best.
        best = int(np.lexsort((grid["expected_loss"].to_numpy(), -value))[0])
        label = "P(average loss < reference's)"
        # The top level sits just above 1: contourf leaves values equal to the top level unfilled.
        levels = np.append(np.linspace(0, 1, 21)[:-1], 1 + 1e-9)
        norm, cmap = TwoSlopeNorm(0.5, 0.0, 1.0), "RdBu"

    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    # Ticks in true shares: the three corners together hold ``total`` of the mixture.
    ax = fig.add_subplot(projection="ternary", ternary_sum=total)
    left, right, top = domains  # domain 0 at the lower left, 1 at the lower right, 2 on top

    def tlr(frame: pd.DataFrame | pd.Series) -> list:
        return [np.asarray(frame[d], dtype=float) for d in (top, left, right)]

    fill = ax.tricontourf(*tlr(grid), value, levels=levels, cmap=cmap, norm=norm)
    fig.colorbar(fill, ax=ax, label=label, shrink=0.8, pad=0.1)
    ax.set_tlabel(f"{top} share")
    ax.set_llabel(f"{left} share")
    ax.set_rlabel(f"{right} share")
    ax.grid(color="white", alpha=0.5, linewidth=0.5)
    ax.plot(*tlr(reference.to_frame().T), "*", color="white", markeredgecolor="black",
            markersize=15, zorder=4, label=f"reference {reference.name!r}")
    shares = ", ".join(f"{d} {grid[d].iloc[best]:.2f}" for d in domains)
    ax.plot(*tlr(grid.iloc[[best]]), "X", color="orange", markeredgecolor="black", markersize=11,
            zorder=4, label=f"best on grid: {shares}")
    runs = on_slice(post, domains, reference)
    if len(runs):
        # On top of the star and the cross: an observed run at the reference is still visible.
        ax.plot(*tlr(runs), "o", color="black", markeredgecolor="white", markersize=5,
                markeredgewidth=0.8, zorder=5, label="observed runs")
    others = [s for s in post.sources if s not in domains]
    held = f"; others held at the reference's shares (sum {1 - total:.2f})" if others else ""
    fig.suptitle(f"{label.split(' (')[0].capitalize()} at step {step}{held}", fontsize="medium")
    fig.legend(loc="outside lower center", fontsize="small", ncols=2)
    return _finish(fig, path)


# ----------------------------------------------------------------------------------- regret
_LINESTYLES = ("-", "--", "-.", ":")


def plot_regret(
    frame: pd.DataFrame,
    *,
    ylabel: str = f"regret ({UNITS})",
    target: float | None = None,
    source: str = "<regret table>",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Regret against the number of training runs, one curve per planning strategy.

    Each strategy has its own colour, marker and line style, and its points are shifted a little
    sideways, so a strategy whose curve coincides with another's stays visible.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows ``strategy, runs, regret[, seed]`` (the planner benchmark's output): the regret
        of each strategy's recommended mixture after ``runs`` training runs. Curves show the mean
        over seeds with a band of plus and minus one standard error
        (:func:`bimix_bayes.metrics.regret_summary`).
    ylabel : str
        Label of the regret axis (its units).
    target : float, optional
        A regret worth reaching, drawn as a dashed line.
    source : str
        Where the table came from, for error messages.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> frame = pd.DataFrame({"strategy": ["random"] * 4, "runs": [4, 4, 8, 8],
    ...                       "regret": [0.2, 0.3, 0.1, 0.05], "seed": [0, 1, 0, 1]})
    >>> len(plot_regret(frame).axes)
    1
    """
    from bimix_bayes.metrics import regret_summary

    stats = regret_summary(frame, source=source)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    strategies = list(stats.index.get_level_values("strategy").unique())
    runs = np.unique(stats.index.get_level_values("runs").to_numpy(dtype=float))
    # Sideways shift: a fraction of the smallest gap between run counts, centred on the true x.
    gap = float(np.diff(runs).min()) if len(runs) > 1 else 1.0
    shifts = (np.arange(len(strategies)) - (len(strategies) - 1) / 2) * 0.03 * gap
    for i, (color, name) in enumerate(zip(_colors(len(strategies)), strategies, strict=True)):
        s = stats.loc[name]
        x = s.index.to_numpy(dtype=float) + shifts[i]
        ax.plot(x, s["mean"], color=color, marker=_MARKERS[i % len(_MARKERS)], markersize=4,
                linestyle=_LINESTYLES[i % len(_LINESTYLES)], linewidth=1.4, label=str(name),
                zorder=3 + i)
        ax.fill_between(x, (s["mean"] - s["sem"]).clip(lower=0), s["mean"] + s["sem"],
                        color=color, alpha=0.15, linewidth=0)
    if target is not None:
        ax.axhline(target, color="0.3", linestyle="--", linewidth=1, label=f"target {target:g}")
    positive = stats.loc[stats["mean"] > 0, "mean"]
    if len(positive) == len(stats):
        ax.set_yscale("log")
    elif len(positive):
        # A strategy that finds the optimum has regret 0, which a log axis cannot show: linear
        # from 0 up to the smallest positive mean, logarithmic above.
        ax.set_yscale("symlog", linthresh=float(positive.min()))
        ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    seeds = int(stats["count"].max())
    ax.set_xlabel("training runs")
    ax.set_ylabel(ylabel)
    ax.set_title(f"Regret by planning strategy: mean ± 1 s.e. over {seeds} seed(s)")
    ax.grid(alpha=0.3, which="both", linewidth=0.5)
    ax.legend(title="strategy", fontsize="small")
    return _finish(fig, path)


# -------------------------------------------------------------------------------- residuals
def plot_residuals(
    post: Posterior,
    observations: Observations | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Relative residuals ``observed / predicted - 1`` against step and against share.

    Draws :func:`bimix_bayes.metrics.residuals`, coloured by domain: the left panel against the
    training step (log axis), the right against the domain's own share of the mixture. A law
    that fits scatters around the zero line everywhere; a trend (residuals rising at late steps,
    or at small shares) shows where the law's form misses.

    Parameters
    ----------
    post : Posterior
        The fitted law.
    observations : Observations, optional
        Held-out observations; default the fitted ones (in-sample).
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_residuals(post, path="residuals.png")                       # doctest: +SKIP
    """
    from bimix_bayes.metrics import mean_relative_error, residuals

    rows = residuals(post, observations)
    fig = Figure(figsize=(10.5, 4.2), layout="constrained")
    by_step, by_share = fig.subplots(1, 2, sharey=True)
    domains = [d for d in post.domains if d in set(rows["domain"])]
    alpha = 0.8 if len(rows) < 500 else 0.35
    for i, (color, domain) in enumerate(zip(_colors(len(domains)), domains, strict=True)):
        r = rows[rows["domain"] == domain]
        marker = _MARKERS[i % len(_MARKERS)]
        by_step.scatter(r["step"].astype(float), 100 * r["residual"], color=color, s=12,
                        marker=marker, alpha=alpha, label=domain)
        by_share.scatter(r["share"], 100 * r["residual"], color=color, s=12, marker=marker,
                         alpha=alpha)
    for ax in (by_step, by_share):
        ax.axhline(0, color="0.3", linewidth=1)
        ax.grid(alpha=0.3, linewidth=0.5)
    by_step.set_xscale("log")
    by_step.xaxis.set_major_formatter(EngFormatter(sep=""))
    by_step.set_xlabel("training step")
    by_step.set_ylabel("observed / predicted - 1 (%)")
    by_share.set_xlabel("the domain's share of the mixture")
    kind = "in-sample" if observations is None else "given observations"
    mre = mean_relative_error(rows["loss"].astype(float), rows["predicted"])
    fig.suptitle(f"Residuals of the posterior-mean loss ({kind}, {len(rows)} evaluations, "
                 f"mean relative error {100 * mre:.2f}%)", fontsize="medium")
    fig.legend(title="domain", loc="outside right center", fontsize="small")
    return _finish(fig, path)


# ------------------------------------------------------------------------------- size shift
def plot_size_shift(
    post: Posterior,
    step: float | None = None,
    *,
    params: float | None = None,
    prob: float = 0.9,
    n_sizes: int = 13,
    tolerance: float = 0.005,
    max_draws: int = 400,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """How the optimal mixture and its uncertainty shift with model size, for a fit across sizes.

    Each posterior draw has its own optimal mixture at every size
    (:meth:`bimix_bayes.surface.LossSurface.draw_optima`, the spread that
    :func:`bimix_bayes.optimizer.optimize` reports as ``optima``); the figure draws each
    training domain's share, posterior mean and ``prob`` band of those optima, against the model
    size on a log grid from the smallest fitted size to 10x the largest (fitted sizes marked).
    The title answers RegMix's assumption that rankings transfer across scales:
    P(the optimum at the smallest fitted size is within ``tolerance`` of ``Lbar`` of the optimum
    at the target size), each draw judging both mixtures at the target size.

    Parameters
    ----------
    post : Posterior
        A fit to runs at two or more model sizes.
    step : float, optional
        Training step the mixtures are judged at; default the last observed step.
    params : float, optional
        Target size of the transfer question; default the largest fitted size.
    prob : float
        Mass of the equal-tailed bands.
    n_sizes : int
        Points of the size grid (the fitted and target sizes are added).
    tolerance : float
        Relative ``Lbar`` excess that counts as "within" the target's optimum (0.005: 0.5 %).
    max_draws, seed : int
        A seeded subset of the draws (the same at every size).
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_size_shift(post, step=5000, path="size-shift.png")          # doctest: +SKIP
    >>> fig.get_suptitle()                                                     # doctest: +SKIP
    """
    from bimix_bayes.constraints import resolve_constraints
    from bimix_bayes.surface import LossSurface

    if not post.has_size_axis:
        raise BimixInputError("the size-shift figure needs a fit to runs at two or more model "
                              "sizes (a params column with several sizes)")
    if not 0 < prob < 1:
        raise BimixInputError(f"prob must be in (0, 1), got {prob}")
    step = float(post.steps[-1] if step is None else step)
    target = post.target_params(params)
    sizes = np.unique(np.concatenate([np.geomspace(post.sizes[0], 10 * post.sizes[-1], n_sizes),
                                      post.sizes, [target]]))
    constraints = resolve_constraints(post, None)
    surfaces = [LossSurface(post, step, max_draws=max_draws, seed=seed, params=n) for n in sizes]
    optima = np.stack([s.draw_optima(constraints)[0] for s in surfaces])  # (size, sample, source)
    at_target = surfaces[int(np.flatnonzero(sizes == target)[0])]
    smallest = optima[0]
    lbar_small = at_target.average(smallest, per_draw=True)
    lbar_best = at_target.average(optima[int(np.flatnonzero(sizes == target)[0])], per_draw=True)
    p_transfer = float(np.mean(lbar_small - lbar_best <= tolerance * lbar_best))

    tail = (1 - prob) / 2
    lower, upper = np.quantile(optima, [tail, 1 - tail], axis=1)
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, (color, source) in enumerate(zip(_colors(len(post.sources)), post.sources,
                                            strict=True)):
        ax.plot(sizes, optima[:, :, i].mean(axis=1), color=color,
                marker=_MARKERS[i % len(_MARKERS)], markersize=3, label=source)
        ax.fill_between(sizes, lower[:, i], upper[:, i], color=color, alpha=0.15, linewidth=0)
    for n in post.sizes:
        ax.axvline(n, color="0.6", linestyle=":", linewidth=1)
    ax.axvline(target, color="0.3", linestyle="--", linewidth=1,
               label=f"target {target:.3g}")
    ax.axvspan(post.sizes[-1], sizes[-1], color="0.9", zorder=0, label="beyond the fitted sizes")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.set_xlabel("model size (parameters; dotted: fitted sizes)")
    ax.set_ylabel("share in the optimal mixture")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3, which="both", linewidth=0.5)
    ax.legend(title="domain", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(f"Optimal mixture at step {step:g} against model size: mean and {prob:g} band "
                 f"of the per-draw optima\nP(optimum at {post.sizes[0]:.3g} within "
                 f"{tolerance:.1%} Lbar of the optimum at {target:.3g}) = {p_transfer:.2f} "
                 "(do rankings transfer?)", fontsize="medium")
    return _finish(fig, path)
