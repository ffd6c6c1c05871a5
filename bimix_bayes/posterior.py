"""A fitted law as posterior draws, its netCDF file, and predictions from it.

Every fitting method (least squares, NUTS, Laplace, ...) ends in a :class:`Posterior`: draws of every
model variable with dims ``(chain, draw, ...)``, the observations it was fitted to, the model spec
(:class:`~bimix_bayes.spec.ModelSpec`: law, noise, priors) and the sampler settings. A least-squares
fit is one chain of one draw. ``predict``, ``optimize`` and ``suggest`` need nothing but this object,
or the one netCDF file it saves to.

The file (format 2) is an ArviZ-native ``xarray.DataTree``; ArviZ's own functions accept it
(``az.summary(tree)``, ``az.loo(tree)``, ``az.compare({...})``):

================ ==========================================================================
group            contents
================ ==========================================================================
posterior        every sampled variable (hyperparameters included) and the law's and noise's
                 parameters (the names of :attr:`bimix_bayes.laws.Law.parameters` and
                 :attr:`bimix_bayes.noise.Noise.parameters`)
sample_stats     the sampler's per-draw statistics (``diverging``, ``energy``, ...)
log_likelihood   ``log_loss`` (chain, draw, curve): the log-density of each observed (run,
                 domain) curve with the run offset integrated out; ``curve`` is ``run|domain``
observed_data    ``loss`` (run, domain, step) in nats per token, NaN where not evaluated
constant_data    ``proportion`` (run, source): every run's mixture; extra observation columns
                 (``tokens``, ``seed``, ...) as (run, domain, step), numbers where they are
prior            optional (``bimix fit`` writes it): prior draws of the law's parameters at
                 this design (:func:`bimix_bayes.model.parameter_prior`)
================ ==========================================================================

Root attributes: ``file_format``, ``bimix_bayes_version``, ``method``, ``s_ref``, ``model_spec``
and ``sampler_config`` (JSON), ``spec_id``, ``law``, ``noise``, ``diagnostics`` (JSON) and, when
``--law auto`` chose the law, ``law_selection`` (JSON: every candidate's held-out score).

Examples
--------
>>> post = Posterior.load("fit.nc")                                       # doctest: +SKIP
>>> pred = post.predict(mixtures, steps=[1000, 5000], prob=0.9)          # doctest: +SKIP
>>> predictions_frame(pred).head()                                        # doctest: +SKIP
>>> import arviz as az, xarray as xr                                      # doctest: +SKIP
>>> az.loo(xr.open_datatree("fit.nc"))                                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bimix_bayes import laws, scale
from bimix_bayes._io import atomic_path, write_csv
from bimix_bayes.draws import BLOCK, Draws, shaped
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import validate_mixtures
from bimix_bayes.noise import OBSERVED_NAME
from bimix_bayes.observations import PARAMS, Observations
from bimix_bayes.spec import ModelSpec

#: Bumped whenever a file written by an older version can no longer be read correctly.
FILE_FORMAT = 2
#: Root attributes every file must have.
REQUIRED_ATTRS = ("file_format", "bimix_bayes_version", "method", "s_ref", "model_spec")
#: Groups every file must have.
REQUIRED_GROUPS = ("posterior", "observed_data", "constant_data")
#: The units line of a prediction CSV (see :func:`bimix_bayes._io.write_csv`).
PREDICTION_UNITS = ("mean, median, lower and upper in nats per token; prob is the interval's mass; "
                    "band: new-run (what a new training run reports) or mean (the mean curve)")
#: Predictive bands: a new run's loss (the default), or the mean curve.
BANDS = ("new-run", "mean")


@dataclass(frozen=True)
class Posterior:
    """Posterior draws of a data-mixing law, with the observations and settings behind them.

    Build one with :meth:`from_draws` or :meth:`load`.

    Attributes
    ----------
    tree : xarray.DataTree
        The groups and attributes of the module docstring.
    """

    tree: xr.DataTree

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_draws(
        cls,
        draws: xr.Dataset,
        observations: Observations,
        *,
        spec: ModelSpec,
        method: str,
        s_ref: float,
        sampler_config: dict[str, Any] | None = None,
        sample_stats: xr.Dataset | None = None,
        diagnostics: dict[str, Any] | None = None,
        law_selection: dict[str, Any] | None = None,
    ) -> Posterior:
        """Wrap draws (dims ``chain, draw, ...``) holding at least the spec's parameters.

        The ``log_likelihood`` group is computed here, from the draws through the law and the
        noise model of ``spec``. ``law_selection`` is the held-out comparison that chose the law
        (:meth:`bimix_bayes.comparison.LawSelection.to_dict`), when one did.
        """
        from bimix_bayes import __version__

        _check_draws(draws, spec, source="<draws>")
        observed, constant = _observation_groups(observations, list(draws["domain"].values))
        groups = {"posterior": draws, "observed_data": observed, "constant_data": constant}
        if sample_stats is not None:
            groups["sample_stats"] = sample_stats[
                [v for v, var in sample_stats.data_vars.items() if var.dims == ("chain", "draw")]]
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update(
            file_format=FILE_FORMAT, bimix_bayes_version=__version__, method=method,
            s_ref=float(s_ref), law=spec.law, noise=spec.noise, spec_id=spec.id,
            model_spec=json.dumps(spec.to_dict(), sort_keys=True),
            sampler_config=json.dumps(sampler_config or {}, sort_keys=True),
            diagnostics=json.dumps(diagnostics or {}, sort_keys=True, default=_json_default),
        )
        if law_selection is not None:
            tree.attrs["law_selection"] = json.dumps(law_selection, default=_json_default)
        post = cls(tree)
        tree["log_likelihood"] = xr.DataTree(post.curve_log_likelihood())
        return post

    # ------------------------------------------------------------------------------ file
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one netCDF file atomically (a crash leaves the old file or none, never half)."""
        with atomic_path(path) as tmp:
            self.tree.to_netcdf(tmp, engine="netcdf4")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Posterior:
        """Read a file written by :meth:`save`, refusing files this version cannot read.

        Raises
        ------
        BimixInputError
            Not a posterior file, another file format, a missing group or attribute, a spec
            this version cannot rebuild, draws that do not match the spec, or non-finite draws.
        """
        path = Path(path)
        if not path.is_file():
            raise BimixInputError("file not found", path=path)
        try:
            with xr.open_datatree(path, engine="netcdf4") as opened:
                tree = opened.load()
        except (OSError, ValueError) as exc:
            raise BimixInputError(f"not a readable netCDF posterior file ({exc})", path=path) from None
        fmt = tree.attrs.get("file_format")
        if fmt is None:
            raise BimixInputError("not a bimix-bayes posterior file (no file_format attribute)",
                                  path=path)
        if str(fmt) != str(FILE_FORMAT):
            raise BimixInputError(
                f"written by bimix-bayes {tree.attrs.get('bimix_bayes_version', '?')} in file format "
                f"{fmt}; this version reads format {FILE_FORMAT}: refit the observations with "
                "`bimix fit OBS.csv --out FIT.nc`", path=path)
        missing = [a for a in REQUIRED_ATTRS if a not in tree.attrs]
        missing += [f"group {g}" for g in REQUIRED_GROUPS if g not in tree.children]
        if missing:
            raise BimixInputError(f"the posterior file lacks {', '.join(missing)}: it is damaged; "
                                  "refit with `bimix fit`", path=path)
        try:
            spec = ModelSpec.from_dict(json.loads(tree.attrs["model_spec"]))
        except (ValueError, TypeError) as exc:
            raise BimixInputError(f"the file's model spec cannot be rebuilt by this version: {exc}",
                                  path=path) from None
        try:
            s_ref = float(tree.attrs["s_ref"])
        except (ValueError, TypeError):
            s_ref = np.nan
        if not (np.isfinite(s_ref) and s_ref > 0):
            raise BimixInputError(f"the file's s_ref ({tree.attrs['s_ref']!r}) is not a positive "
                                  "number: it is damaged; refit with `bimix fit`", path=path)
        for name in ("sampler_config", "diagnostics", "law_selection"):
            try:
                json.loads(tree.attrs.get(name, "{}"))
            except (ValueError, TypeError):
                raise BimixInputError(f"the file's {name} attribute is not JSON: it is damaged; "
                                      "refit with `bimix fit`", path=path) from None
        for name in ("law", "noise"):
            if tree.attrs.get(name, getattr(spec, name)) != getattr(spec, name):
                raise BimixInputError(f"the file's {name} attribute ({tree.attrs[name]!r}) "
                                      f"contradicts its model spec ({getattr(spec, name)!r})",
                                      path=path)
        _check_draws(tree["posterior"].to_dataset(), spec, source=str(path))
        return cls(tree)

    # ------------------------------------------------------------------------------ accessors
    @property
    def draws(self) -> xr.Dataset:
        """Every posterior variable, dims ``(chain, draw, ...)``."""
        return self.tree["posterior"].to_dataset()

    @cached_property
    def spec(self) -> ModelSpec:
        """The model spec: law, noise and priors."""
        return ModelSpec.from_dict(json.loads(self.tree.attrs["model_spec"]))

    @cached_property
    def observations(self) -> Observations:
        """The observations the law was fitted to."""
        observed = self.tree["observed_data"].to_dataset()
        constant = self.tree["constant_data"].to_dataset()
        ds = constant[["proportion"]].drop_vars("domain", errors="ignore").rename(source="domain")
        # Target domains (evaluated, never trained on) have no source column: proportion 0.
        targets = [d for d in observed["domain"].values if d not in set(ds["domain"].values)]
        ds = ds.reindex(domain=[*ds["domain"].values, *targets], fill_value=0.0)
        ds["loss"] = observed["loss"].reindex(domain=ds["domain"])
        extras = [v for v in constant.data_vars if v != "proportion"]
        for name in extras:
            var = constant[name].reindex(domain=ds["domain"])
            ds[name] = var.where(var != "") if var.dtype.kind in "US" else var
        ds.attrs.update(source=observed.attrs.get("source", "<posterior>"), extra_columns=extras)
        return Observations.from_dataset(ds)

    @property
    def steps(self) -> list[int]:
        """The steps the fitted losses were evaluated at."""
        return [int(s) for s in self.tree["observed_data"]["step"].values]

    def check_steps(self, steps: Sequence[float]) -> None:
        """Refuse steps a fit cannot speak for: a fit to losses at one step has no step term.

        Raises
        ------
        BimixInputError
            Naming the fitted step, when the fit saw one step and ``steps`` hold another.
        """
        if len(self.steps) == 1 and any(float(s) != self.steps[0] for s in steps):
            raise BimixInputError(
                f"this fit saw losses at one step ({self.steps[0]}) only, so its law has no step "
                f"term; ask for step {self.steps[0]}, or fit losses at several steps")

    @property
    def prior(self) -> xr.Dataset | None:
        """Prior draws of the law's parameters (dims ``chain, draw, ...``), where the file has them."""
        return self.tree["prior"].to_dataset() if "prior" in self.tree.children else None

    def with_prior(self, prior: xr.Dataset) -> Posterior:
        """This posterior with ``prior`` as its ``prior`` group (replacing any)."""
        tree = self.tree.copy()
        tree["prior"] = xr.DataTree(prior)
        return type(self)(tree)

    @property
    def sample_stats(self) -> xr.Dataset | None:
        """Sampler statistics (divergences, energy, ...) when the method gave them."""
        return self.tree["sample_stats"].to_dataset() if "sample_stats" in self.tree.children else None

    @property
    def law(self) -> str:
        return self.spec.law

    @property
    def noise(self) -> str:
        return self.spec.noise

    @property
    def method(self) -> str:
        return str(self.tree.attrs["method"])

    @property
    def s_ref(self) -> float:
        return float(self.tree.attrs["s_ref"])

    @property
    def sampler_config(self) -> dict[str, Any]:
        """The sampler settings of a Bayesian fit; empty for other methods."""
        return json.loads(self.tree.attrs.get("sampler_config", "{}"))

    @property
    def diagnostics(self) -> dict[str, Any]:
        return json.loads(self.tree.attrs.get("diagnostics", "{}"))

    @property
    def law_selection(self) -> dict[str, Any] | None:
        """The held-out comparison that chose the law (``--law auto``), or None."""
        text = self.tree.attrs.get("law_selection")
        return None if text is None else json.loads(text)

    @property
    def version(self) -> str:
        """The bimix-bayes version that wrote this posterior."""
        return str(self.tree.attrs["bimix_bayes_version"])

    @property
    def domains(self) -> list[str]:
        """Evaluated domains (the law's ``domain`` dimension)."""
        return [str(d) for d in self.draws["domain"].values]

    @property
    def sources(self) -> list[str]:
        """Every training domain a mixture must give a proportion for."""
        return [str(d) for d in self.tree["constant_data"]["source"].values]

    @property
    def n_samples(self) -> int:
        return int(self.draws.sizes["chain"] * self.draws.sizes["draw"])

    @cached_property
    def sizes(self) -> list[float]:
        """The model sizes (parameters) of the fitted runs, ascending; empty without a
        ``params`` column."""
        return [] if self._run_sizes is None else sorted(set(self._run_sizes.tolist()))

    @cached_property
    def _run_sizes(self) -> pd.Series | None:
        """Each fitted run's model size (index ``run``), read from ``constant_data`` without
        rebuilding the observations (every prediction needs it)."""
        constant = self.tree["constant_data"]
        if PARAMS not in constant.data_vars:
            return None
        cube = constant[PARAMS]
        values = cube.max([d for d in cube.dims if d != "run"], skipna=True)
        return pd.Series(values.to_numpy().astype(float), index=values["run"].to_numpy())

    @cached_property
    def _draws(self) -> Draws:
        ref = scale.reference(self.sizes) if len(self.sizes) > 1 else None
        return Draws.from_dataset(self.draws, self.spec.law_component,
                                  self.spec.noise_component, self.s_ref, self.sources,
                                  params_ref=ref, fitted_sizes=self.sizes)

    @property
    def has_size_axis(self) -> bool:
        """Whether the law was fitted across model sizes (:mod:`bimix_bayes.scale`)."""
        return self._draws.has_size_axis

    def target_params(self, params: float | None = None) -> float | None:
        """The model size a prediction or decision is for: ``params``, or the largest fitted size
        (None for a fit without sizes).

        Raises
        ------
        BimixInputError
            For a size a fit at one size (or without sizes) cannot speak for.
        """
        if params is not None and (not np.isfinite(params) or params <= 0):
            raise BimixInputError(f"params must be a positive number of parameters, got {params}")
        if self.has_size_axis:
            return float(params) if params is not None else self.sizes[-1]
        if params is None or (self.sizes and np.isclose(params, self.sizes[0], rtol=1e-9)):
            return self.sizes[0] if self.sizes else None
        seen = (f"runs of one model size ({self.sizes[0]:.3g} parameters)" if self.sizes
                else "runs without a model size (no params column)")
        raise BimixInputError(f"this fit saw {seen}, so it cannot predict a model of "
                              f"{params:.3g} parameters; fit runs at two or more sizes")

    def size_groups(self, observations: Observations) -> list[tuple[float | None, Observations]]:
        """``observations`` split by model size, each with the size to predict it at: for a fit
        across sizes every run is judged at its own size (scores, coverage, residuals); otherwise
        one group at the fit's size.

        Raises
        ------
        BimixInputError
            For runs without a size, given a fit across sizes.
        """
        if not self.has_size_axis:
            return [(None, observations)]
        sizes = observations.sizes
        if sizes is None:
            raise BimixInputError("this fit spans model sizes and these runs have no params "
                                  "column: give each run's size", path=observations.source)
        return [(float(n), observations.subset(list(sizes.index[sizes == n])))
                for n in sorted(sizes.unique())]

    def samples(self, params: float | None = None) -> Draws:
        """The sample-first view of the draws (:class:`~bimix_bayes.draws.Draws`), for a fit
        across model sizes at size ``params`` (default: the largest fitted size)."""
        return self._draws.at_params(self.target_params(params))

    # ------------------------------------------------------------------------------ prediction
    def mixtures_frame(self, mixtures: pd.DataFrame, source: str = "<mixtures>") -> pd.DataFrame:
        """Validate a wide mixture table against this posterior's training domains."""
        return validate_mixtures(mixtures.rename_axis("mixture").reset_index(),
                                 domains=self.sources, source=source)

    def log_loss_draws(self, mixtures: pd.DataFrame, steps: Sequence[float],
                       params: float | None = None) -> np.ndarray:
        """Mean-curve log-loss for every draw: array ``(sample, mixture, step, domain)``.

        ``mixtures`` is a wide table (index ``mixture``, one column per training domain);
        ``params`` the model size, as in :meth:`samples`.
        """
        return self.samples(params).log_loss(mixtures[self.sources].to_numpy(dtype=float), steps)

    def curve_log_likelihood(self) -> xr.Dataset:
        """Log-density of each observed (run, domain) curve under every draw.

        The unit PSIS-LOO leaves out (a whole curve, the run offset integrated out by the noise
        model); stored as the file's ``log_likelihood`` group.

        Returns
        -------
        xarray.Dataset
            ``log_loss`` (chain, draw, curve), ``curve`` labelled ``run|domain``; float32.
        """
        draws = self._draws
        obs = self.tree["observed_data"]["loss"].transpose("run", "step", "domain")
        sizes = (self._run_sizes.reindex(obs["run"].values).to_numpy(float)
                 if draws.has_size_axis else None)
        observed = np.log(obs.to_numpy())  # (run, step, domain)
        mask = np.isfinite(observed)
        mixtures = self.tree["constant_data"]["proportion"].sel(source=list(self.sources))
        steps = obs["step"].to_numpy()
        width = observed.size * max(getattr(draws.noise, "QUADRATURE_NODES", 1), len(self.sources))
        chunk = max(1, BLOCK // max(width, 1))
        parts = []
        for i in range(0, draws.n, chunk):
            part = draws.take(np.arange(i, min(i + chunk, draws.n)))
            resid = np.where(mask, observed, 0.0) - part.log_loss(mixtures.to_numpy(), steps,
                                                                  sizes)
            with np.errstate(divide="ignore", invalid="ignore"):  # a noise-free (simulated) truth
                parts.append(draws.noise.curve_log_likelihood(
                    shaped(part.noise_params, lead=2), resid, mask.astype(float), steps))
        ll = np.concatenate(parts).astype(np.float32)  # (sample, run, domain)
        runs, domains = obs["run"].to_numpy(), obs["domain"].to_numpy()
        keep = mask.any(axis=1)  # (run, domain) curves with an observation
        ri, di = np.nonzero(keep)
        chains, n_draw = self.draws.sizes["chain"], self.draws.sizes["draw"]
        values = ll[:, ri, di].reshape(chains, n_draw, len(ri))
        labels = [f"{runs[r]}|{domains[d]}" for r, d in zip(ri, di, strict=True)]
        return xr.Dataset({OBSERVED_NAME: (("chain", "draw", "curve"), values)},
                          coords={"chain": self.draws["chain"].values,
                                  "draw": self.draws["draw"].values, "curve": labels})

    def predict(
        self,
        mixtures: pd.DataFrame,
        steps: Sequence[int],
        prob: float = 0.9,
        band: str = "new-run",
        seed: int = 0,
        min_samples: int = 2000,
        params: float | None = None,
    ) -> xr.Dataset:
        """Predictive loss for each mixture, domain and step.

        Parameters
        ----------
        mixtures : pandas.DataFrame
            Index ``mixture``, one column per training domain (:attr:`sources`), rows summing to 1.
        steps : sequence of int
            Training steps to predict at.
        prob : float
            Probability mass of the equal-tailed interval ``[lower, upper]``.
        band : {"new-run", "mean"}
            ``"new-run"`` (the default): the loss a new training run of the mixture would report,
            the mean curve's uncertainty plus the noise model's run offset and residual scatter;
            draws are repeated up to ``min_samples`` so that a point fit (one draw) still gets a
            noise band. It is the band observed losses fall in: on held-out real mixtures its
            90 % band covered 0.98 / 0.94 of the losses (mixinglaws 3Mix 70M / 160M), where the
            mean curve's covered far less (benchmarks/results/accuracy_mixinglaws.md).
            ``"mean"``: the uncertainty of the mean loss curve only.
        seed : int
            Seeds the noise draws of the new-run band.
        params : float, optional
            Model size (parameters) to predict for, observed or not, for a fit across sizes
            (:mod:`bimix_bayes.scale`); default its largest fitted size.

        Returns
        -------
        xarray.Dataset
            ``loss_draws`` (sample, mixture, domain, step) in nats per token, and ``mean``,
            ``median``, ``lower``, ``upper`` (mixture, domain, step); attributes ``prob``,
            ``band`` and, for a fit with model sizes, ``params``.
        """
        if band not in BANDS:
            raise BimixInputError(f"band must be one of {', '.join(BANDS)}, got {band!r}")
        if not 0 < prob < 1:
            raise BimixInputError(f"prob must be in (0, 1), got {prob}")
        steps = [int(s) for s in steps]
        if not steps or min(steps) <= 0:
            raise BimixInputError(f"steps must be positive integers, got {steps}")
        self.check_steps(steps)
        mixtures = self.mixtures_frame(mixtures)
        size = self.target_params(params)
        draws = self.samples(size)
        log_l = draws.log_loss(mixtures[self.sources].to_numpy(dtype=float), steps)  # (N, M, T, D)
        if band == "new-run":
            reps = -(-min_samples // len(log_l))
            repeated = draws.take(np.tile(np.arange(draws.n), reps))
            rng = np.random.default_rng(seed)
            log_l = np.tile(log_l, (reps, 1, 1, 1)) + repeated.noise_sample(
                (repeated.n, *log_l.shape[1:]), rng, steps)
        loss = np.exp(log_l).transpose(0, 1, 3, 2)  # (N, M, D, T)
        tail = (1 - prob) / 2
        lower, median, upper = np.quantile(loss, [tail, 0.5, 1 - tail], axis=0)
        dims = ("mixture", "domain", "step")
        coords = {"mixture": list(mixtures.index), "domain": self.domains, "step": steps}
        return xr.Dataset(
            {
                "loss_draws": (("sample", *dims), loss),
                "mean": (dims, loss.mean(axis=0)),
                "median": (dims, median),
                "lower": (dims, lower),
                "upper": (dims, upper),
            },
            coords=coords,
            attrs={"prob": prob, "band": band, "units": "nats per token",
                   **({} if size is None else {"params": size})},
        )


def predictions_frame(pred: xr.Dataset) -> pd.DataFrame:
    """Tidy prediction table ``mixture,domain,step[,params],mean,median,lower,upper,prob,band``
    (DESIGN §4; ``params``: the model size predicted for, where the fit has sizes)."""
    frame = pred[["mean", "median", "lower", "upper"]].to_dataframe().reset_index()
    frame["prob"] = pred.attrs["prob"]
    frame["band"] = pred.attrs["band"]
    sized = ["params"] if "params" in pred.attrs else []
    for name in sized:
        frame[name] = pred.attrs[name]
    return frame[["mixture", "domain", "step", *sized, "mean", "median", "lower", "upper", "prob",
                  "band"]]


def write_predictions(pred: xr.Dataset, path: str | os.PathLike[str]) -> None:
    """Write :func:`predictions_frame` atomically, opening with a ``# units:`` comment line."""
    write_csv(predictions_frame(pred), path, units=PREDICTION_UNITS, index=False,
              float_format="%.6g")


def _observation_groups(observations: Observations, domains: list[str]
                        ) -> tuple[xr.Dataset, xr.Dataset]:
    """``observed_data`` (the losses of the evaluated domains) and ``constant_data`` (mixtures
    and extra columns, numbers where every value is one)."""
    ds = observations.to_dataset()
    observed = xr.Dataset({"loss": ds["loss"].sel(domain=domains).astype(float)},
                          attrs={"source": str(ds.attrs.get("source", "<observations>")),
                                 "units": "nats per token"})
    constant = xr.Dataset({"proportion": ds["proportion"].sel(domain=observations.sources)
                           .rename(domain="source")})
    for name in ds.attrs.get("extra_columns", []):
        var = ds[name].sel(domain=domains)
        numbers = pd.to_numeric(pd.Series(var.to_numpy().ravel()), errors="coerce")
        given = pd.Series(var.to_numpy().ravel()).notna()
        if (numbers.notna() == given).all():
            constant[name] = var.copy(data=numbers.to_numpy(float).reshape(var.shape))
        else:  # netCDF cannot hold object arrays mixing strings and NaN: text, "" where absent
            constant[name] = var.fillna("").astype(str)
    return observed, constant


def _check_draws(draws: xr.Dataset, spec: ModelSpec, source: str) -> None:
    """The draws hold the spec's parameters with their dims, at least one draw, all finite."""
    wanted = {**spec.law_component.parameters, **spec.noise_component.parameters}
    missing = [v for v in wanted if v not in draws]
    if missing:
        raise BimixInputError(
            f"the posterior of law {spec.law!r} with {spec.noise} noise lacks variable(s) "
            f"{', '.join(missing)}: it comes from a different model; refit with `bimix fit`",
            path=source)
    foreign = sorted({v for name in laws.names() for v in laws.get(name).parameters}
                     - set(wanted) & set(draws.data_vars))
    if foreign:
        raise BimixInputError(
            f"the posterior holds {', '.join(foreign)}, parameter(s) of another law than its "
            f"{spec.law!r}: the file was edited or mixed up; refit with `bimix fit`", path=source)
    wrong = [v for v, dims in wanted.items() if draws[v].dims != ("chain", "draw", *dims)]
    if wrong:
        raise BimixInputError(f"posterior variable(s) {', '.join(wrong)} have the wrong dims; "
                              "refit with `bimix fit`", path=source)
    if draws.sizes.get("chain", 0) * draws.sizes.get("draw", 0) == 0:
        raise BimixInputError("the posterior holds no draws", path=source)
    bad = [v for v in wanted if not np.isfinite(draws[v].to_numpy()).all()]
    if bad:
        raise BimixInputError(f"the posterior's {', '.join(bad)} hold non-finite draws; refit "
                              "with `bimix fit`", path=source)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
