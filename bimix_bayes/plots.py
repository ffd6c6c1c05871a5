"""Figures of a fitted law: loss curves, calibration, coefficients, the mixture simplex, regret.

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
- :func:`plot_regret`: regret against training runs, per planning strategy.

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
from matplotlib.tri import Triangulation

from bimix_bayes._io import atomic_path
from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations
from bimix_bayes.posterior import COEFFICIENTS

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
SIMPLEX_QUANTITIES = ("expected_loss", "prob_improvement")
#: Default number of observed runs drawn by :func:`plot_loss_curves` (more bands do not read).
MAX_CURVES = 6
#: Monte Carlo samples behind every predictive band (see :func:`predictive`).
PLOT_SAMPLES = 2000
#: Elements of one (sample, mixture, domain[, source]) block of the simplex map; bounds memory.
_BLOCK = 4_000_000


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
    observation: bool = False,
    seed: int = 0,
    n_samples: int = PLOT_SAMPLES,
) -> xr.Dataset:
    """:meth:`Posterior.predict` from about ``n_samples`` Monte Carlo samples.

    A posterior with more draws is subsampled (:func:`subsample`), which keeps plots fast; with
    ``observation`` a smaller one (a one-draw least-squares fit) has its draws repeated by
    ``predict(min_samples=n_samples)`` so that the noise band has its spread.

    Examples
    --------
    >>> pred = predictive(leastsq_post, mixtures, [1000], observation=True)    # doctest: +SKIP
    """
    return subsample(post, n_samples, seed).predict(
        mixtures, steps, prob=prob, observation=observation, seed=seed, min_samples=n_samples)


# ------------------------------------------------------------------------------ loss curves
def default_steps(observations: Observations, n: int = 60, beyond: float = 4.0) -> list[int]:
    """A log-spaced step grid from half the first observed step to ``beyond`` times the last.

    Examples
    --------
    >>> obs = Observations.from_frame(pd.DataFrame({"run": ["a", "a"], "domain": ["x", "x"],
    ...     "proportion": [1.0, 1.0], "step": [100, 1000], "loss": [3.0, 2.5]}))
    >>> grid = default_steps(obs)
    >>> grid[0], grid[-1]
    (50, 4000)
    """
    steps = observations.steps
    grid = np.geomspace(max(steps[0] / 2, 1), steps[-1] * beyond, n)
    return sorted({int(round(s)) for s in grid})


def plot_loss_curves(
    post: Posterior,
    mixtures: pd.DataFrame | None = None,
    steps: Sequence[int] | None = None,
    prob: float = 0.9,
    observation: bool = True,
    *,
    domains: Sequence[str] | None = None,
    max_mixtures: int = MAX_CURVES,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Loss against training step with predictive bands, one panel per domain.

    Each mixture gets the posterior median of its mean loss curve (line) and a ``prob`` band; the
    observed losses of runs whose name matches a mixture are drawn on top in the same colour. A
    dotted line marks the last observed step, so extrapolation is visible.

    Parameters
    ----------
    post : Posterior
        The fitted law.
    mixtures : pandas.DataFrame, optional
        Index ``mixture``, one column per training domain. Default: the observed runs' mixtures
        (at most ``max_mixtures`` of them, spread evenly over the runs; the title says so).
    steps : sequence of int, optional
        Steps to predict at; default :func:`default_steps` (beyond the last observed step).
    prob : float
        Probability mass of the bands.
    observation : bool
        True: bands for the loss a new training run would report (run effect and residual noise
        included), comparable with the observed points. False: bands of the mean curve.
    domains : sequence of str, optional
        Evaluated domains to draw (default all).
    max_mixtures : int
        Cap on the default mixtures (ignored when ``mixtures`` is given).
    seed : int
        Seeds the noise draws of ``observation``.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_loss_curves(post, path="curves.png")                          # doctest: +SKIP
    """
    obs = post.observations
    note = ""
    if mixtures is None:
        mixtures = obs.mixtures()
        if len(mixtures) > max_mixtures:
            keep = np.unique(np.linspace(0, len(mixtures) - 1, max_mixtures).round().astype(int))
            note = f" ({len(keep)} of {len(mixtures)} runs shown)"
            mixtures = mixtures.iloc[keep]
    domains = _check_domains(post, domains)
    steps = default_steps(obs) if steps is None else steps
    pred = predictive(post, mixtures, steps, prob=prob, observation=observation, seed=seed)
    # The line is the median mean curve: smooth, unlike a quantile of noisy draws.
    center = pred["median"] if not observation else predictive(post, mixtures, steps)["median"]

    frame = obs.frame[obs.frame["loss"].notna()]
    fig, axes = _grid(len(domains))
    colors = _colors(pred.sizes["mixture"])
    x = pred["step"].to_numpy()
    for ax, domain in zip(axes, domains, strict=True):
        for color, name in zip(colors, pred["mixture"].values, strict=True):
            p = pred.sel(mixture=name, domain=domain)
            ax.fill_between(x, p["lower"], p["upper"], color=color, alpha=0.2, linewidth=0)
            ax.plot(x, center.sel(mixture=name, domain=domain), color=color, linewidth=1.5,
                    label=str(name))
            seen = frame[(frame["run"] == name) & (frame["domain"] == domain)]
            if len(seen):
                ax.scatter(seen["step"].astype(float), seen["loss"], color=color, s=14, zorder=3,
                           edgecolor="white", linewidth=0.5)
        ax.axvline(obs.steps[-1], color="0.4", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(domain)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"loss ({UNITS})")
        ax.grid(alpha=0.3, which="both", linewidth=0.5)
    band = "a new run's loss" if observation else "the mean curve"
    shown = frame["run"].isin([str(m) for m in pred["mixture"].values]).any()
    parts = [f"dots: observed{note}"] if shown else [note.strip()] if note else []
    fig.suptitle(f"Predicted loss: median curve and {prob:.0%} band of {band}\n"
                 + "; ".join([*parts, "dotted: last observed step"]))
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
    observation: bool = True,
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
    observation : bool
        True: intervals for an observed loss (run effect and residual noise included), the ones
        that should cover the points. False: intervals of the mean curve.
    seed : int
        Seeds the noise draws of ``observation``.
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
    pred = predictive(post, mixtures, obs.steps, prob=prob, observation=observation, seed=seed)
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
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Forest plot of the per-domain coefficients, one panel (own x scale) per coefficient.

    Each domain gets its posterior median (dot), central 50 % interval (thick) and ``prob``
    interval (thin). The coefficients live on very different scales (``eps`` near 1e-3, ``log_c``
    near 1), so they get a panel each instead of arviz-plots' single shared axis; ``eps`` is drawn
    on a log axis. With the transfer law a last panel maps the posterior median transfer weight
    from each source (column) to each domain (row).

    Parameters
    ----------
    post : Posterior
        The fitted law (a one-draw least-squares fit shows points only).
    var_names : sequence of str, optional
        Per-domain variables to draw; default ``log_c, alpha, u, beta, eps``. Any variable of the
        draws with dims ``(chain, draw, domain)`` works (``sigma``, ``sigma_run``).
    prob : float
        Probability mass of the thin interval.
    path : path-like, optional
        Also write the figure here.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_coefficients(post, path="coefficients.png")                  # doctest: +SKIP
    """
    draws = post.draws
    var_names = list(COEFFICIENTS if var_names is None else var_names)
    bad = [v for v in var_names if v not in draws or set(draws[v].dims) != {"chain", "draw", "domain"}]
    if bad:
        raise BimixInputError(f"not a per-domain variable of this posterior: {', '.join(bad)}")
    transfer = post.law == "transfer" and "transfer" in draws
    n = len(var_names) + transfer
    fig, axes = _grid(n, ncols=3, size=(4.0, 0.45 * len(post.domains) + 1.4), sharey=False)
    y = np.arange(len(post.domains))[::-1]
    tail = (1 - prob) / 2
    for ax, name in zip(axes[:len(var_names)], var_names, strict=True):
        values = draws[name].stack(sample=("chain", "draw")).transpose("domain", "sample").to_numpy()
        q = np.quantile(values, [tail, 0.25, 0.5, 0.75, 1 - tail], axis=1)
        ax.hlines(y, q[0], q[4], color="C0", linewidth=1)
        ax.hlines(y, q[1], q[3], color="C0", linewidth=3.5)
        ax.plot(q[2], y, "o", color="C0", markerfacecolor="white", markersize=5)
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
    fig.suptitle(f"Coefficients ({post.law} law, {post.method}, {shown}")
    return _finish(fig, path)


# ---------------------------------------------------------------------------------- simplex
def simplex_grid(n: int) -> np.ndarray:
    """Barycentric lattice on the triangle: ``(points, 3)`` with ``n + 1`` points per edge.

    Examples
    --------
    >>> simplex_grid(2).tolist()
    [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]
    """
    points = [(n - i - k, i, k) for k in range(n + 1) for i in range(n + 1 - k)]
    return np.array(points, dtype=float) / n


def _to_xy(bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric (a, b, c) to the plane: a at (0, 0), b at (1, 0), c at the apex."""
    return bary[..., 1] + bary[..., 2] / 2, bary[..., 2] * np.sqrt(3) / 2


def simplex_map(
    post: Posterior,
    domains: Sequence[str] | None,
    step: int,
    reference: pd.DataFrame | pd.Series | None = None,
    *,
    resolution: int = 40,
) -> tuple[pd.DataFrame, pd.Series]:
    """Expected average loss and P(beating the reference) on a triangle grid of mixtures.

    The mixtures vary the shares of the three ``domains``; every other training domain stays at
    its share in ``reference``, so the three share what the reference gives them together. The
    average is over the evaluated domains, of the mean loss curve at ``step``.

    Parameters
    ----------
    post : Posterior
        The fitted law.
    domains : sequence of 3 str, or None
        Training domains on the corners; None means all three when there are exactly three.
    step : int
        Training step at which losses are compared.
    reference : pandas.DataFrame (one row, index mixture) or pandas.Series, optional
        A mixture over all training domains. Default: the observed run with the lowest expected
        average loss at ``step`` (the optimizer's default reference).
    resolution : int
        Grid points per edge, minus one.

    Returns
    -------
    (pandas.DataFrame, pandas.Series)
        One row per grid mixture: a column per training domain, ``expected_loss`` (posterior
        mean, nats per token) and ``prob_improvement`` (posterior probability that its average
        loss is lower than the reference's, over paired draws); and the reference mixture, named.

    Examples
    --------
    >>> grid, ref = simplex_map(post, ("web", "code", "math"), step=5000)       # doctest: +SKIP
    >>> grid.loc[grid["expected_loss"].idxmin(), ["web", "code", "math"]]       # doctest: +SKIP
    """
    if domains is None:
        if len(post.sources) != 3:
            raise BimixInputError(f"name the three domains of the ternary map; the posterior has "
                                  f"{len(post.sources)}: {', '.join(post.sources)}")
        domains = post.sources
    domains = list(domains)
    if len(domains) != 3 or len(set(domains)) != 3:
        raise BimixInputError(f"a ternary map needs three different domains, got {domains}")
    unknown = [d for d in domains if d not in post.sources]
    if unknown:
        raise BimixInputError(f"unknown domain(s) {', '.join(unknown)}; training domains: "
                              f"{', '.join(post.sources)}")
    if not step > 0:
        raise BimixInputError(f"step must be > 0, got {step}")
    if resolution < 2:
        raise BimixInputError(f"resolution must be at least 2, got {resolution}")

    if reference is None:
        observed = post.observations.mixtures()
        best = np.argmin(_average_loss(post, observed, step).mean(axis=0))
        reference = observed.iloc[best]
    elif isinstance(reference, pd.DataFrame):
        if len(reference) != 1:
            raise BimixInputError(f"reference: expected one mixture, got {len(reference)}")
        reference = reference.iloc[0]
    name = "reference" if reference.name is None else str(reference.name)
    reference = post.mixtures_frame(reference.to_frame(name).T, source="<reference>").iloc[0]
    total = float(reference[domains].sum())
    if total <= 0:
        raise BimixInputError(f"the reference gives {', '.join(domains)} no share: nothing to vary")

    bary = simplex_grid(resolution)
    grid = pd.DataFrame(np.tile(reference.to_numpy(), (len(bary), 1)), columns=reference.index)
    grid[domains] = bary * total
    loss = _average_loss(post, pd.concat([grid, reference.to_frame().T]), step)
    grid_loss, ref_loss = loss[:, :-1], loss[:, -1:]
    grid["expected_loss"] = grid_loss.mean(axis=0)
    grid["prob_improvement"] = (grid_loss < ref_loss).mean(axis=0)
    return grid, reference


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

    Draws :func:`simplex_map`: ``quantity`` ``expected_loss`` fills the triangle with the
    posterior mean of the average loss at ``step``, ``prob_improvement`` with the probability
    that it is lower than the reference's. A star marks the reference, a cross the best mixture
    on the grid, dots the observed runs that lie on this slice of the simplex (every other
    domain at the reference's share).

    Parameters
    ----------
    post, domains, step, reference, resolution
        As for :func:`simplex_map`.
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
    if quantity not in SIMPLEX_QUANTITIES:
        raise BimixInputError(f"unknown quantity {quantity!r}; expected one of "
                              f"{', '.join(SIMPLEX_QUANTITIES)}")
    grid, reference = simplex_map(post, domains, step, reference, resolution=resolution)
    domains = post.sources if domains is None else list(domains)  # checked by simplex_map
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

    fig = Figure(figsize=(6.8, 5.6), layout="constrained")
    ax = fig.subplots()
    x, y = _to_xy(grid[domains].to_numpy() / total)
    fill = ax.tricontourf(Triangulation(x, y), value, levels=levels, cmap=cmap, norm=norm)
    fig.colorbar(fill, ax=ax, label=label, shrink=0.85)
    _draw_triangle(ax, domains, total)
    rx, ry = _to_xy(reference[domains].to_numpy(dtype=float) / total)
    ax.plot(rx, ry, "*", color="white", markeredgecolor="black", markersize=15,
            label=f"reference {reference.name!r}")
    shares = ", ".join(f"{d} {grid[d].iloc[best]:.2f}" for d in domains)
    ax.plot(x[best], y[best], "X", color="orange", markeredgecolor="black", markersize=11,
            label=f"best on grid: {shares}")
    observed = post.observations.mixtures()
    others = [s for s in post.sources if s not in domains]
    gap = np.abs(observed[others].to_numpy() - reference[others].to_numpy())
    on_slice = gap.max(axis=1, initial=0.0) <= 1e-6
    if on_slice.any():
        ox, oy = _to_xy(observed.loc[on_slice, domains].to_numpy(dtype=float) / total)
        ax.plot(ox, oy, "o", color="black", markersize=3.5, label="observed runs")
    held = f"; others held at the reference's shares (sum {1 - total:.2f})" if others else ""
    fig.suptitle(f"{label.split(' (')[0].capitalize()} at step {step}{held}", fontsize="medium")
    fig.legend(loc="outside lower center", fontsize="small", ncols=2)
    return _finish(fig, path)


def _average_loss(post: Posterior, mixtures: pd.DataFrame, step: int) -> np.ndarray:
    """Mean-curve loss averaged over the evaluated domains: ``(sample, mixture)``.

    Evaluated in blocks of mixtures: with the transfer law one block broadcasts over
    ``(sample, mixture, domain, source)``, gigabytes for a whole grid.
    """
    width = len(post.domains) * (len(post.sources) if post.law == "transfer" else 1)
    block = max(1, _BLOCK // (post.n_samples * width))
    parts = [np.exp(post.log_loss_draws(mixtures.iloc[i:i + block], [step])[:, :, 0, :]).mean(-1)
             for i in range(0, len(mixtures), block)]
    return np.concatenate(parts, axis=1)


def _draw_triangle(ax, domains: Sequence[str], total: float) -> None:
    corners = _to_xy(np.eye(3))
    ax.plot([*corners[0], corners[0][0]], [*corners[1], corners[1][0]], color="black", linewidth=1)
    for f in (0.2, 0.4, 0.6, 0.8):
        for i in range(3):
            # Lines of constant share f of corner i, drawn between the two other edges.
            ends = np.zeros((2, 3))
            ends[:, i] = f
            ends[0, (i + 1) % 3] = ends[1, (i + 2) % 3] = 1 - f
            ax.plot(*_to_xy(ends), color="white", linewidth=0.5, alpha=0.6)
    offsets = [(-0.03, -0.05, "right"), (1.03, -0.05, "left"), (0.5, np.sqrt(3) / 2 + 0.04, "center")]
    for name, (tx, ty, ha) in zip(domains, offsets, strict=True):
        ax.text(tx, ty, f"{name} = {total:.2g}", ha=ha, va="center", fontsize="medium")
    ax.set_xlim(-0.15, 1.15)
    ax.set_ylim(-0.1, np.sqrt(3) / 2 + 0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()


# ----------------------------------------------------------------------------------- regret
REGRET_COLUMNS = ("strategy", "runs", "regret")


def plot_regret(
    frame: pd.DataFrame,
    *,
    ylabel: str = f"regret ({UNITS})",
    target: float | None = None,
    source: str = "<regret table>",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Regret against the number of training runs, one curve per planning strategy.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy rows ``strategy, runs, regret[, seed]`` (the planner benchmark's output): the regret
        of each strategy's recommended mixture after ``runs`` training runs. Curves show the mean
        over seeds with a band of plus and minus one standard error.
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
    missing = [c for c in REGRET_COLUMNS if c not in frame.columns]
    if missing:
        raise BimixInputError(f"missing column(s) {', '.join(missing)}; expected "
                              f"{','.join(REGRET_COLUMNS)}[,seed]", path=source, line=1)
    regret = pd.to_numeric(frame["regret"], errors="coerce")
    runs = pd.to_numeric(frame["runs"], errors="coerce")
    bad = regret.isna() | runs.isna() | (regret < 0)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise BimixInputError(f"runs and regret must be numbers, regret >= 0; got "
                              f"runs={frame['runs'].iloc[i]!r}, regret={frame['regret'].iloc[i]!r}",
                              path=source, line=i + 2)
    data = frame.assign(regret=regret, runs=runs)
    stats = data.groupby(["strategy", "runs"], sort=True)["regret"].agg(["mean", "sem", "count"])
    stats["sem"] = stats["sem"].fillna(0.0)

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    strategies = list(pd.unique(frame["strategy"]))
    for color, name in zip(_colors(len(strategies)), strategies, strict=True):
        s = stats.loc[name]
        ax.plot(s.index, s["mean"], "-o", color=color, markersize=3, label=str(name))
        ax.fill_between(s.index, (s["mean"] - s["sem"]).clip(lower=0), s["mean"] + s["sem"],
                        color=color, alpha=0.2, linewidth=0)
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
