"""The loss landscape on a three-domain slice of the mixture simplex.

:func:`simplex_map` evaluates the posterior's average loss, and the probability of beating a
reference mixture, on a triangle grid of mixtures that vary three training domains while every
other domain stays at the reference's share. :func:`bimix_bayes.plots.plot_simplex` draws it.

Examples
--------
>>> simplex_grid(2).tolist()
[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bimix_bayes.errors import BimixInputError

if TYPE_CHECKING:
    from bimix_bayes.posterior import Posterior

QUANTITIES = ("expected_loss", "prob_improvement")
#: Elements of one (sample, point, domain) block of the map; bounds its memory.
_BLOCK = 2_000_000


def simplex_grid(n: int) -> np.ndarray:
    """Barycentric lattice on the triangle: ``(points, 3)`` with ``n + 1`` points per edge.

    Examples
    --------
    >>> simplex_grid(1).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    points = [(n - i - k, i, k) for k in range(n + 1) for i in range(n + 1 - k)]
    return np.array(points, dtype=float) / n


def corner_domains(post: Posterior, domains: Sequence[str] | None) -> list[str]:
    """The three training domains of a ternary slice, checked (None: all three of a 3-domain fit).

    Examples
    --------
    >>> corner_domains(post, ("web", "code", "math"))                         # doctest: +SKIP
    ['web', 'code', 'math']
    """
    if domains is None:
        if len(post.sources) != 3:
            raise BimixInputError(f"name the three domains of the ternary map; the posterior has "
                                  f"{len(post.sources)}: {', '.join(post.sources)}")
        return list(post.sources)
    domains = list(domains)
    if len(domains) != 3 or len(set(domains)) != 3:
        raise BimixInputError(f"a ternary map needs three different domains, got {domains}")
    unknown = [d for d in domains if d not in post.sources]
    if unknown:
        raise BimixInputError(f"unknown domain(s) {', '.join(unknown)}; training domains: "
                              f"{', '.join(post.sources)}")
    return domains


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
    average is over the evaluated domains, of the mean loss curve at ``step``
    (:class:`bimix_bayes.surface.LossSurface`, the optimizer's objective).

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
        average loss at ``step`` (the optimizer's default reference,
        :func:`bimix_bayes.optimizer.best_observed`).
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
    from bimix_bayes.optimizer import best_observed
    from bimix_bayes.surface import LossSurface

    domains = corner_domains(post, domains)
    if not step > 0:
        raise BimixInputError(f"step must be > 0, got {step}")
    if resolution < 2:
        raise BimixInputError(f"resolution must be at least 2, got {resolution}")
    surface = LossSurface(post, step)
    if reference is None:
        reference = best_observed(post, surface)
        # Named after the observed run it is (best_observed calls it "reference").
        observed = post.observations.mixtures()[surface.sources]
        same = (observed - reference).abs().max(axis=1) <= 1e-12
        reference = reference.rename(str(observed.index[same.to_numpy().argmax()]))
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
    points = grid[surface.sources].to_numpy()
    # In blocks of points: LossSurface.average also returns every domain's log-loss, which for a
    # whole grid of a 4000-draw posterior is hundreds of MiB (benchmarks/results/plots_speed.md).
    block = max(1, _BLOCK // (surface.n_draws * len(surface.domains)))
    grid_loss = np.concatenate([surface.average(points[i:i + block])
                                for i in range(0, len(points), block)], axis=1)  # (sample, point)
    ref_loss = surface.average(reference[surface.sources].to_numpy())[:, None]
    grid["expected_loss"] = grid_loss.mean(axis=0)
    grid["prob_improvement"] = (grid_loss < ref_loss).mean(axis=0)
    return grid, reference


def on_slice(post: Posterior, domains: Sequence[str], reference: pd.Series,
             tol: float = 1e-6) -> pd.DataFrame:
    """The observed runs' mixtures that lie on the slice: every other domain at the reference's share.

    Examples
    --------
    >>> on_slice(post, ["a", "b", "c"], ref).index.tolist()                    # doctest: +SKIP
    ['run0', 'run1']
    """
    observed = post.observations.mixtures()
    others = [s for s in post.sources if s not in domains]
    gap = np.abs(observed[others].to_numpy() - reference[others].to_numpy())
    return observed[gap.max(axis=1, initial=0.0) <= tol]
