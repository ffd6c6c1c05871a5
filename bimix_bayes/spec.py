"""What a Bayesian fit is made of: the model spec and the sampler settings, each a plain value.

:class:`ModelSpec` says *what* is fitted (a law, a noise model, their priors); :class:`SamplerConfig`
says *how* it is sampled. Both turn into JSON-ready dicts and back (``to_dict`` / ``from_dict``), and
the posterior file stores both with the spec's content id (:attr:`ModelSpec.id`), so that
:meth:`bimix_bayes.model.BayesianBiMix.from_posterior` rebuilds the estimator that made a file, and
a file whose spec this version cannot rebuild is refused with one clear message.

Examples
--------
>>> spec = ModelSpec(law="transfer")
>>> ModelSpec.from_dict(spec.to_dict()) == spec
True
>>> len(spec.id)
12
>>> SamplerConfig(draws=500).to_dict()["draws"]
500
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bimix_bayes import laws, noise
from bimix_bayes.errors import BimixInputError

#: "nuts": nutpie NUTS (default); "pymc": PyMC's own NUTS; "laplace": a normal approximation at the
#: posterior mode in the unconstrained space; "advi", "fullrank_advi": PyMC's variational
#: approximations.
METHODS = ("nuts", "pymc", "laplace", "advi", "fullrank_advi")
APPROXIMATE = ("laplace", "advi", "fullrank_advi")


def _priors_from(kind: type, values: dict[str, Any] | None, what: str) -> Any:
    """A priors dataclass from a dict (lists back to tuples); unknown fields are an error."""
    if values is None:
        return kind()
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise BimixInputError(f"unknown {what} prior(s) {', '.join(unknown)}; this version knows "
                              f"{', '.join(sorted(known)) or 'none'}")
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class ModelSpec:
    """A law, a noise model and their priors.

    Parameters
    ----------
    law : str
        A registered law (:func:`bimix_bayes.laws.names`).
    noise : str
        A noise model (:func:`bimix_bayes.noise.names`).
    law_priors, noise_priors : dataclass, optional
        The components' ``Priors``; default their defaults.
    """

    law: str = "bimix"
    noise: str = "normal"
    law_priors: Any = field(default=None, compare=False)
    noise_priors: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        law, nz = laws.get(self.law), noise.get(self.noise)  # unknown names fail here
        for name, kind, given in (("law_priors", law.Priors, self.law_priors),
                                  ("noise_priors", nz.Priors, self.noise_priors)):
            if given is None:
                object.__setattr__(self, name, kind())
            elif not isinstance(given, kind):
                raise BimixInputError(f"{name} must be {kind.__module__}.{kind.__qualname__}, "
                                      f"got {type(given).__name__}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def law_component(self) -> laws.Law:
        return laws.get(self.law)

    @property
    def noise_component(self) -> noise.Noise:
        return noise.get(self.noise)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: names and every prior hyperparameter."""
        return {"law": self.law, "noise": self.noise,
                "law_priors": dataclasses.asdict(self.law_priors),
                "noise_priors": dataclasses.asdict(self.noise_priors)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; :class:`BimixInputError` for what this version lacks."""
        unknown = sorted(set(values) - {"law", "noise", "law_priors", "noise_priors"})
        if unknown:
            raise BimixInputError(f"unknown model spec field(s) {', '.join(unknown)}")
        law, nz = laws.get(values.get("law", "bimix")), noise.get(values.get("noise", "normal"))
        return cls(law=law.name, noise=nz.name,
                   law_priors=_priors_from(law.Priors, values.get("law_priors"), law.name),
                   noise_priors=_priors_from(nz.Priors, values.get("noise_priors"), nz.name))

    @property
    def id(self) -> str:
        """Content id: the first 12 hex digits of the SHA-256 of :meth:`to_dict` as sorted JSON."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SamplerConfig:
    """How a model is sampled.

    Parameters
    ----------
    method : {"nuts", "pymc", "laplace", "advi", "fullrank_advi"}
        nutpie NUTS (default, fastest exact), PyMC's own NUTS in Python (fallback where nutpie
        cannot compile the model), a Laplace approximation at the mode, or a variational
        approximation (seconds, approximate; no MCMC diagnostics).
    draws, tune, chains : int
        Posterior draws and tuning steps per chain (for ADVI: ``draws`` draws from the
        approximation and ``10 * tune`` optimisation steps).
    seed : int
    adaptation : str
        nutpie mass-matrix adaptation ("low_rank" by default; "diag" is nutpie's own default).
    target_accept : float
        NUTS target acceptance rate. 0.95 rather than the usual 0.8: on the reference workload
        it costs about 15 % more sampling time and removes the few divergences that 0.8 leaves
        (benchmarks/results/target_accept.md).
    retry_target_accept : float or None
        When a NUTS fit diverges, sample once more at this target acceptance rate, reusing the
        compiled model, and keep the attempt with fewer divergences (small designs, such as a
        first round of 8 runs, need it). None disables the retry.
    progressbar : bool
    """

    method: str = "nuts"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    adaptation: str = "low_rank"
    target_accept: float = 0.95
    retry_target_accept: float | None = 0.99
    progressbar: bool = False

    def check(self) -> None:
        """Raise :class:`BimixInputError` for settings that cannot work."""
        if self.method not in METHODS:
            raise BimixInputError(
                f"unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise BimixInputError(f"{name} must be a positive integer, got {value}")
        for name in ("target_accept", "retry_target_accept"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise BimixInputError(f"{name} must be in (0, 1), got {value}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BimixInputError(f"unknown sampler setting(s) {', '.join(unknown)}")
        return cls(**values)
