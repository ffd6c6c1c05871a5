"""One sample-first view of a posterior's draws, built in one place and used everywhere.

:class:`Draws` holds a fitted law's and noise model's parameters as numpy arrays with the sample axis
first (``chain`` and ``draw`` stacked), with the components that interpret them. Prediction
(:meth:`bimix_bayes.posterior.Posterior.predict`), the optimizer's loss surface, the planner and the
plots evaluate the law through it instead of converting the DataTree each on their own.

Examples
--------
>>> draws = post.samples()                                        # doctest: +SKIP
>>> draws.log_loss(mixtures.to_numpy(), [1000, 5000]).shape       # doctest: +SKIP
(4000, 3, 2, 6)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from bimix_bayes import scale
from bimix_bayes.laws import Law
from bimix_bayes.noise import Noise

#: Elements of one broadcast block (sample, mixture, step, domain[, source]): bounds memory.
BLOCK = 4_000_000


def shaped(params: Mapping[str, np.ndarray], lead: int) -> dict[str, np.ndarray]:
    """Parameters ``(sample, *dims)`` with ``lead`` unit axes after the sample axis.

    A per-domain parameter then broadcasts against ``(sample, *lead axes, domain)``, a
    ``(domain, source)`` one keeps its trailing source axis, and a scalar gets a unit domain axis.
    """
    return {k: v.reshape(v.shape[0], *[1] * lead, *(v.shape[1:] or (1,))) for k, v in params.items()}


@dataclass(frozen=True)
class Draws:
    """A posterior's parameters, sample first, with the law and noise that give them meaning.

    Attributes
    ----------
    law : bimix_bayes.laws.Law
    noise : bimix_bayes.noise.Noise
    params : dict
        The law's parameters (:attr:`Law.parameters`), each ``(sample, *dims)``, and for a fit
        across model sizes their size slopes (:mod:`bimix_bayes.scale`).
    noise_params : dict
        The noise model's parameters, each ``(sample, *dims)``.
    s_ref : float
        Reference step of the law.
    domains, sources : tuple of str
        Evaluated domains and training domains (a domain may be one, the other or both).
    params_ref : float or None
        ``N_ref`` of the size slopes, where there are any.
    fitted_sizes : tuple of float
        The fitted model sizes, whose offsets the draws hold (:mod:`bimix_bayes.scale`).
    offset : array (sample, domain) or None
        Log-loss offset of the size :meth:`at_params` chose.
    """

    law: Law
    noise: Noise
    params: dict[str, np.ndarray]
    noise_params: dict[str, np.ndarray]
    s_ref: float
    domains: tuple[str, ...]
    sources: tuple[str, ...]
    params_ref: float | None = None
    fitted_sizes: tuple[float, ...] = ()
    offset: np.ndarray | None = None
    own_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # -1 marks a target domain (evaluated, not a training domain): its own share is 0.
        object.__setattr__(self, "own_index", np.array(
            [self.sources.index(d) if d in self.sources else -1 for d in self.domains], dtype=int))

    @classmethod
    def from_dataset(cls, posterior: xr.Dataset, law: Law, noise: Noise, s_ref: float,
                     sources: Sequence[str], params_ref: float | None = None,
                     fitted_sizes: Sequence[float] = ()) -> Draws:
        """The view of a ``posterior`` group (dims ``chain, draw, ...``)."""
        stacked = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)

        def arrays(names: Sequence[str]) -> dict[str, np.ndarray]:
            return {k: stacked[k].to_numpy().astype(float) for k in names if k in stacked}

        slopes = scale.parameter_names(law)
        return cls(law=law, noise=noise, params=arrays([*law.parameters, *slopes]),
                   noise_params=arrays(list(noise.parameters)), s_ref=float(s_ref),
                   domains=tuple(str(d) for d in posterior["domain"].values),
                   sources=tuple(str(s) for s in sources),
                   params_ref=params_ref if any(k in stacked for k in slopes) else None,
                   fitted_sizes=tuple(float(n) for n in fitted_sizes))

    @property
    def has_size_axis(self) -> bool:
        """Whether the law's coefficients still depend on model size (see :meth:`at_params`)."""
        return self.params_ref is not None

    def at_params(self, params: float) -> Draws:
        """The draws of the law's coefficients at model size ``params`` (slopes applied), for a
        fit across sizes; unchanged otherwise."""
        if not self.has_size_axis:
            return self
        x = np.log(float(params) / self.params_ref)
        offset = scale.offsets(self.params, self.fitted_sizes, [params])[:, 0]
        law_params = {k: v for k, v in scale.at_size(self.law, self.params, x).items()
                      if k not in (scale.OFFSET_SCALE, scale.OFFSET_Z)}
        return replace(self, params=law_params, params_ref=None, offset=offset)

    @property
    def n(self) -> int:
        """Number of draws."""
        return len(next(iter(self.params.values())))

    @property
    def own_onehot(self) -> np.ndarray:
        """``(domain, source)``: 1 where the source is the domain itself."""
        onehot = np.zeros((len(self.domains), len(self.sources)))
        trained = self.own_index >= 0
        onehot[np.flatnonzero(trained), self.own_index[trained]] = 1.0
        return onehot

    def take(self, idx: np.ndarray) -> Draws:
        """The draws with these indices."""
        return replace(self, params={k: v[idx] for k, v in self.params.items()},
                       noise_params={k: v[idx] for k, v in self.noise_params.items()},
                       offset=None if self.offset is None else self.offset[idx])

    def subset(self, max_draws: int | None, seed: int = 0) -> Draws:
        """A seeded random subset of at most ``max_draws`` draws (sorted), or all of them."""
        if max_draws is None or self.n <= max_draws:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(self.n, size=max_draws, replace=False))
        return self.take(keep)

    def own(self, mixtures: np.ndarray) -> np.ndarray:
        """Each evaluated domain's own share: ``(..., source)`` -> ``(..., domain)``; 0 for a
        target domain."""
        mixtures = np.asarray(mixtures, float)
        return np.where(self.own_index >= 0, mixtures[..., self.own_index], 0.0)

    def log_loss(self, mixtures: np.ndarray, steps: Sequence[float],
                 sizes: Sequence[float] | None = None) -> np.ndarray:
        """Mean-curve log-loss of every draw: ``(sample, mixture, step, domain)``.

        ``mixtures`` is ``(mixture, source)``; evaluated in blocks of draws so that laws with a
        ``(domain, source)`` parameter stay within :data:`BLOCK` elements. Draws across model
        sizes need each mixture's model size (``sizes``, parameters); see also :meth:`at_params`.
        """
        if self.has_size_axis:
            if sizes is None:
                raise ValueError("these draws span model sizes: give each mixture's size")
            x = np.log(np.asarray(sizes, float) / self.params_ref)[None, :, None, None]
            offset = scale.offsets(self.params, self.fitted_sizes, sizes)[:, :, None, :]
        elif self.offset is not None:
            offset = self.offset[:, None, None, :]
        else:
            offset = np.zeros((self.n, 1, 1, 1))
        mix = np.asarray(mixtures, float)[None, :, None, :]  # (1, M, 1, S)
        steps_arr = np.asarray(steps, float)[None, None, :, None]  # (1, 1, T, 1)
        width = mix.shape[1] * steps_arr.shape[2] * len(self.domains) * len(self.sources)
        chunk = max(1, BLOCK // max(width, 1))
        parts = []
        for i in range(0, self.n, chunk):
            p = shaped({k: v[i:i + chunk] for k, v in self.params.items()}, lead=2)
            if self.has_size_axis:
                p = scale.at_size(self.law, p, x)
            parts.append(self.law.log_loss(p, self.own(mix), mix, steps_arr, self.s_ref)
                         + offset[i:i + chunk])
        return np.concatenate(parts, axis=0)

    def noise_sample(self, shape: tuple[int, ...], rng: np.random.Generator,
                     steps: Sequence[float] | None = None) -> np.ndarray:
        """A new run's deviation from the mean curve for every draw: ``shape`` is
        ``(sample, ..., step, domain)``, ``steps`` the step axis's steps (needed by noise
        correlated along a curve, unless there is one step)."""
        return self.noise.sample(shaped(self.noise_params, lead=len(shape) - 2), shape, rng, steps)
