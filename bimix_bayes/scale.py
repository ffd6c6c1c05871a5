"""The model-size axis: a law's coefficients as smooth functions of log model size.

Researchers train small proxies to choose the mixture of a large model. When the observations hold
runs at several model sizes (the ``params`` column, :attr:`bimix_bayes.observations.Observations.sizes`),
every law of the family gains a size axis in one way, owned here: the coefficients the law names
in :meth:`bimix_bayes.laws.Law.size_coefficients` become linear in

    x = log(N / N_ref)            (N_ref: the geometric mean of the fitted sizes)

either directly (``"linear"``: ``c(N) = c + g * x``, so for BiMix's ``log_c`` the irreducible part is
a power law in N, ``C ∝ N^g``) or on the log scale (``"log"``: ``c(N) = c * exp(g * x)``, a positive
exponent such as ``alpha`` changing smoothly with size). Every slope ``g`` is per domain about a
population mean over domains (and, from three sizes on, a sampled scale; :class:`Priors`), so two
or three sizes suffice: domains borrow strength from each other. Coefficients the law does not
name (BiMix's ``eps``, the transfer weights; ``beta`` from three sizes on) are shared by all
sizes.

No smooth law in N fits every size exactly, so each fitted size also has its own offset of every
domain's log-loss, ``delta[size, domain] = size_sigma * size_z``. From
:data:`MIN_SIZES_FOR_SAMPLED_SCALES` sizes on, the scale ``size_sigma`` is learned from how far the
sizes stray from the smooth trend; two sizes leave no scatter about a trend to learn from, and
there it is fixed (:attr:`Priors.two_size_offset`). A prediction at a fitted size uses that size's
offset; at a size that was not fitted it draws a new one (:func:`offsets`), so the band of an
extrapolated size is as wide as the sizes' scatter about the law says it should be.

At ``N = N_ref`` the coefficients are the law's own, so the law's sampled geometry (its ``level``
at the design's typical point) is unchanged; a prediction at size ``N`` evaluates the law with the
coefficients at that size (:func:`at_size`), and so do the optimizer and the planner
(:meth:`bimix_bayes.posterior.Posterior.samples`).

Examples
--------
>>> import numpy as np
>>> from bimix_bayes import laws
>>> params = {"log_c": np.array([1.0]), "log_c_size": np.array([-0.1]),
...           "alpha": np.array([0.2]), "log_alpha_size": np.array([0.0])}
>>> at = at_size(laws.get("bimix"), params, np.log(10.0))
>>> sorted(at), round(float(at["log_c"][0]), 4)
(['alpha', 'log_c'], 0.7697)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

#: Suffix of a slope's name: ``log_c`` -> ``log_c_size``, ``alpha`` (log scale) -> ``log_alpha_size``.
SUFFIX = "_size"


@dataclass(frozen=True)
class Priors:
    """Priors of the slopes, per e-fold of model size (``x`` grows by 1 when N grows 2.7x).

    Across published ladders (mixinglaws 70M-1B, RegMix 1M-1B) a domain's log-loss falls by about
    0.03-0.1 per e-fold at a fixed mixture and step; the population mean's Normal(0, 0.3) allows
    ten times that either way. The domains' slopes scatter about it with scale ``slope_tau``:

    - with two sizes, fixed at ``slope_tau``. A sampled scale's funnel left two-size fits
      untrustworthy, failing R-hat and ESS on the scale itself. On 3Mix 70M + 160M the fixed scale
      gave 0 divergences and bulk ESS 1667 (against 2 and 738), at half the time, and 4.1 %
      instead of 4.4 % MRE at 410M (benchmarks/results/cross_scale.md);
    - from three sizes on, sampled, with a Gamma(2, 2 / tau) prior (mean ``tau``) that keeps the
      centred hierarchy out of its funnel as BiMix's pooling does. There the per-size offsets
      share the size axis with the slopes. On 5Mix 70M-410M (an exploratory run, short chains) a
      fixed scale pushed the misfit into the offsets: R-hat 2.2, and bands covering 0.99 of the
      1B losses.
    """

    slope_mu: tuple[float, float] = (0.0, 0.3)
    slope_tau: float = 0.1
    #: Half-normal scale of a size's offset from the smooth law, in log-loss (0.03: 3 % of the
    #: loss), from three sizes on.
    offset_sd: float = 0.03
    #: The offsets' scale with two sizes, fixed. Sampled, its funnel failed R-hat in every
    #: two-size fit tried (1.45 on 5Mix 70M + 160M); without offsets the bands at the next size
    #: up covered 0.2-0.7 of its losses. Three-size fits of the published ladders learn 0.010
    #: (RedPajama), 0.015 (3Mix) and 0.016 (5Mix) for it. At 0.012 the bands of the next size up
    #: cover 0.98-1.00 of its losses on 3Mix, 5Mix and RedPajama (cross_scale.md): wider than
    #: 90 %. Those three-size fits share one step exponent, while two-size fits give it a size
    #: slope, which likely leaves less misfit for the offsets; the scale is a guess to revisit.
    two_size_offset: float = 0.012


def slope_name(coefficient: str, kind: str) -> str:
    """The posterior name of a coefficient's size slope."""
    return f"log_{coefficient}{SUFFIX}" if kind == "log" else f"{coefficient}{SUFFIX}"


def reference(sizes: Sequence[float]) -> float:
    """``N_ref``: the geometric mean of the distinct fitted sizes."""
    distinct = np.unique(np.asarray(sizes, float))
    return float(np.exp(np.mean(np.log(distinct))))


#: Names of the per-size offsets in the posterior: the scale and the standardised offsets.
OFFSET_SCALE, OFFSET_Z = "size_sigma", "size_z"
#: Fewest fitted sizes that let the model learn the scales of the slopes and the offsets: how far
#: domains' slopes scatter and how far sizes stray from the smooth law.
MIN_SIZES_FOR_SAMPLED_SCALES = 3


def learns_scales(design: Any) -> bool:
    """Whether ``design`` (with a size axis) has sizes enough to learn the scales
    (:data:`MIN_SIZES_FOR_SAMPLED_SCALES`); with fewer they are fixed."""
    return len(design.coords["size"]) >= MIN_SIZES_FOR_SAMPLED_SCALES


def build(law: Any, params: dict[str, Any], design: Any, priors: Priors = Priors()
          ) -> tuple[dict[str, Any], Any]:
    """Add the size slopes and offsets of ``law`` to the current PyMC model (coords ``size``).

    Returns the parameters at each run's size, shaped ``(run, 1, domain)`` to broadcast against
    ``(run, step, domain)``, and each run's offset of log-loss ``(run, 1, domain)``.
    ``design.size`` holds each run's ``x``; the slopes land in the posterior under
    :func:`slope_name`.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from bimix_bayes.laws.bimix import _hierarchical

    several = learns_scales(design)
    slopes = {}
    for coefficient, kind in law.size_coefficients(design).items():
        name = slope_name(coefficient, kind)
        slopes[name] = _hierarchical(name, priors.slope_mu, priors.slope_tau, log=False,
                                     fixed_scale=not several)
    # Stored even when fixed, so that a prediction reads one scale from any sized posterior.
    sigma = (pm.HalfNormal(OFFSET_SCALE, priors.offset_sd) if several
             else pm.Deterministic(OFFSET_SCALE, pt.constant(priors.two_size_offset)))
    z = pm.Normal(OFFSET_Z, 0.0, 1.0, dims=("size", "domain"))  # non-centred: few sizes
    index = np.searchsorted(np.asarray(design.coords["size"], float), design.params)
    offset = (sigma * z)[index][:, None, :]
    return (at_size(law, {**params, **slopes}, pt.as_tensor(design.size)[:, None, None], xp=pt),
            offset)


def offsets(params: Mapping[str, np.ndarray], fitted: Sequence[float], sizes: Sequence[float],
            seed: int = 0) -> np.ndarray:
    """Each draw's log-loss offset at ``sizes``: ``(sample, len(sizes), domain)``.

    A fitted size takes its sampled offset; another size a new draw from the offsets'
    distribution (seeded, so one size always gets the same draws). Zero for draws without
    offsets (made by hand, :meth:`bimix_bayes.posterior.Posterior.from_draws`).
    """
    if OFFSET_Z not in params:
        return np.zeros((len(next(iter(params.values()))), len(sizes), 1))
    sigma = np.reshape(params[OFFSET_SCALE], (-1, 1))
    z = params[OFFSET_Z]  # (sample, size, domain)
    out = []
    for n in sizes:
        hit = np.flatnonzero(np.isclose(np.asarray(fitted, float), float(n), rtol=1e-9))
        if hit.size:
            out.append(sigma * z[:, hit[0]])
        else:
            rng = np.random.default_rng([seed, int(np.log(float(n)) * 1e6)])
            out.append(sigma * rng.standard_normal(z[:, 0].shape))
    return np.stack(out, axis=1)


def at_size(law: Any, params: Mapping[str, Any], x: Any, xp: ModuleType = np) -> dict[str, Any]:
    """The law's parameters at log size offset ``x`` (broadcasting against the parameters' leading
    axes), without the slopes; a coefficient without a slope in ``params`` passes through.
    """
    out = {k: v for k, v in params.items() if not k.endswith(SUFFIX)}
    for coefficient, kind in law.size_coefficients(None).items():
        slope = params.get(slope_name(coefficient, kind))
        if slope is None:
            continue
        base = params[coefficient]
        out[coefficient] = base + slope * x if kind == "linear" else base * xp.exp(slope * x)
    return out


def parameter_names(law: Any) -> list[str]:
    """Every size parameter of ``law`` a posterior across sizes holds: slopes and offsets."""
    return [*(slope_name(c, kind) for c, kind in law.size_coefficients(None).items()),
            OFFSET_SCALE, OFFSET_Z]
