"""A fitted law as posterior draws, its netCDF file, and predictions from it.

Every fitting method (least squares, NUTS, Pathfinder, ...) ends in a :class:`Posterior`: draws of the
law's coefficients with dims ``(chain, draw, domain[, source])``, the observations it was fitted to, and
the configuration. A least-squares fit is one chain of one draw. ``predict``, ``optimize`` and
``suggest`` need nothing but this object, or the one netCDF file it saves to.

Variables in ``draws`` (the names every fitting method maps to):

========== ================================ ==============================================
name       dims                             meaning
========== ================================ ==============================================
log_c      (chain, draw, domain)            log irreducible-part coefficient (see laws)
alpha      (chain, draw, domain)            proportion exponent
u          (chain, draw, domain)            log reducible/irreducible ratio at ``s_ref``
beta       (chain, draw, domain)            step exponent
eps        (chain, draw, domain)            proportion floor for untrained domains
transfer   (chain, draw, domain, source)    cross-domain transfer weights (transfer law)
sigma      (chain, draw, domain)            residual scale of log-loss within a run
sigma_run  (chain, draw, domain)            scale of the per-run effect on log-loss
nu         (chain, draw)                    Student-t degrees of freedom of the residual
========== ================================ ==============================================

Examples
--------
>>> post = Posterior.load("fit.nc")                                       # doctest: +SKIP
>>> pred = post.predict(mixtures, steps=[1000, 5000], prob=0.9)          # doctest: +SKIP
>>> predictions_frame(pred).head()                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bimix_bayes import laws
from bimix_bayes._io import atomic_path, write_csv
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import validate_mixtures
from bimix_bayes.observations import Observations

#: Bumped whenever a file written by an older version can no longer be read correctly.
FILE_FORMAT = 1
COEFFICIENTS = ("log_c", "alpha", "u", "beta", "eps")
LAWS = {"bimix": COEFFICIENTS, "transfer": (*COEFFICIENTS, "transfer")}
#: The units line of a prediction CSV (see :func:`bimix_bayes._io.write_csv`).
PREDICTION_UNITS = "mean, median, lower and upper in nats per token; prob is the interval's mass"


@dataclass(frozen=True)
class Posterior:
    """Posterior draws of a data-mixing law, with the observations and configuration behind them.

    Build one with :meth:`from_draws` or :meth:`load`.

    Attributes
    ----------
    tree : xarray.DataTree
        Groups ``posterior`` (the draws), ``observations`` and, when the sampler gave them,
        ``sample_stats``; the root attributes hold law, method, ``s_ref``, configuration,
        diagnostics and the package version.
    """

    tree: xr.DataTree

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_draws(
        cls,
        draws: xr.Dataset,
        observations: Observations,
        *,
        law: str,
        method: str,
        s_ref: float,
        config: dict[str, Any] | None = None,
        sample_stats: xr.Dataset | None = None,
        diagnostics: dict[str, Any] | None = None,
    ) -> Posterior:
        """Wrap draws (dims ``chain, draw, ...``) named as in the module docstring."""
        from bimix_bayes import __version__

        _check_draws(draws, law, source="<draws>")
        groups: dict[str, xr.Dataset] = {
            "posterior": draws,
            "observations": observations.to_dataset(),
        }
        if sample_stats is not None:
            groups["sample_stats"] = sample_stats
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update(
            file_format=FILE_FORMAT,
            bimix_bayes_version=__version__,
            law=law,
            method=method,
            s_ref=float(s_ref),
            config=json.dumps(config or {}, sort_keys=True, default=str),
            diagnostics=json.dumps(diagnostics or {}, sort_keys=True, default=_json_default),
        )
        return cls(tree)

    # ------------------------------------------------------------------------------ file
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one netCDF file atomically (a crash leaves the old file or none, never half)."""
        tree = self.tree.copy()
        obs = tree["observations"].to_dataset()
        # netCDF cannot hold object arrays mixing strings and NaN: store text, "" where absent.
        for name, var in obs.data_vars.items():
            if var.dtype == object:
                obs[name] = var.fillna("").astype(str)
        tree["observations"] = xr.DataTree(obs)
        with atomic_path(path) as tmp:
            tree.to_netcdf(tmp, engine="netcdf4")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Posterior:
        """Read a file written by :meth:`save`, refusing files this version cannot read."""
        path = Path(path)
        if not path.is_file():
            raise BimixInputError("file not found", path=path)
        try:
            with xr.open_datatree(path, engine="netcdf4") as opened:
                tree = opened.load()
        except (OSError, ValueError) as exc:
            raise BimixInputError(f"not a readable netCDF posterior file ({exc})", path=path) from None
        fmt = tree.attrs.get("file_format")
        if fmt is None or "law" not in tree.attrs:
            raise BimixInputError("not a bimix-bayes posterior file (no file_format attribute)",
                                  path=path)
        if int(fmt) != FILE_FORMAT:
            raise BimixInputError(
                f"written by bimix-bayes {tree.attrs.get('bimix_bayes_version', '?')} in file format "
                f"{fmt}; this version reads format {FILE_FORMAT}: refit with `bimix fit`",
                path=path)
        if "posterior" not in tree.children or "observations" not in tree.children:
            raise BimixInputError("the file lacks its posterior or observations group", path=path)
        _check_draws(tree["posterior"].to_dataset(), tree.attrs["law"], source=str(path))
        return cls(tree)

    # ------------------------------------------------------------------------------ accessors
    @property
    def draws(self) -> xr.Dataset:
        """The posterior draws, dims ``(chain, draw, ...)``."""
        return self.tree["posterior"].to_dataset()

    @property
    def observations(self) -> Observations:
        """The observations the law was fitted to."""
        ds = self.tree["observations"].to_dataset()
        for name, var in ds.data_vars.items():
            if var.dtype.kind in "US":
                ds[name] = var.where(var != "")
        return Observations.from_dataset(ds)

    @property
    def sample_stats(self) -> xr.Dataset | None:
        """Sampler statistics (divergences, energy, ...) when the method gave them."""
        return self.tree["sample_stats"].to_dataset() if "sample_stats" in self.tree.children else None

    @property
    def law(self) -> str:
        return str(self.tree.attrs["law"])

    @property
    def method(self) -> str:
        return str(self.tree.attrs["method"])

    @property
    def s_ref(self) -> float:
        return float(self.tree.attrs["s_ref"])

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.tree.attrs.get("config", "{}"))

    @property
    def diagnostics(self) -> dict[str, Any]:
        return json.loads(self.tree.attrs.get("diagnostics", "{}"))

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
        return [str(d) for d in self.tree["observations"]["domain"].values]

    @property
    def n_samples(self) -> int:
        return int(self.draws.sizes["chain"] * self.draws.sizes["draw"])

    # ------------------------------------------------------------------------------ prediction
    def mixtures_frame(self, mixtures: pd.DataFrame, source: str = "<mixtures>") -> pd.DataFrame:
        """Validate a wide mixture table against this posterior's training domains."""
        return validate_mixtures(mixtures.rename_axis("mixture").reset_index(),
                                 domains=self.sources, source=source)

    def _stacked(self, name: str) -> np.ndarray:
        return self.draws[name].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()

    def log_loss_draws(self, mixtures: pd.DataFrame, steps: Sequence[float]) -> np.ndarray:
        """Mean-curve log-loss for every draw: array ``(sample, mixture, step, domain)``.

        ``mixtures`` is a wide table (index ``mixture``, one column per training domain).
        """
        mix = mixtures[self.sources].to_numpy(dtype=float)  # (M, S)
        own = mixtures[self.domains].to_numpy(dtype=float)  # (M, D)
        p = {name: self._stacked(name)[:, None, None, :] for name in COEFFICIENTS}
        transfer = None
        if self.law == "transfer":
            transfer = self._stacked("transfer")[:, None, None, :, :]  # (N, 1, 1, D, S)
        r_eff = laws.effective_proportion(
            own[None, :, None, :], eps=p["eps"], mixture=mix[None, :, None, :], transfer=transfer
        )
        steps_arr = np.asarray(steps, dtype=float)[None, None, :, None]
        return laws.log_loss(
            r_eff, steps_arr, log_c=p["log_c"], alpha=p["alpha"], u=p["u"], beta=p["beta"],
            s_ref=self.s_ref,
        )

    def predict(
        self,
        mixtures: pd.DataFrame,
        steps: Sequence[int],
        prob: float = 0.9,
        observation: bool = False,
        seed: int = 0,
        min_samples: int = 2000,
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
        observation : bool
            False: uncertainty of the mean loss curve. True: the loss a new training run would
            report, adding the per-run effect and the residual noise; draws are then repeated
            up to ``min_samples`` so that a point fit (one draw) still gets a noise band.
        seed : int
            Seeds the noise draws when ``observation`` is True.

        Returns
        -------
        xarray.Dataset
            ``loss_draws`` (sample, mixture, domain, step) in nats per token, and ``mean``,
            ``median``, ``lower``, ``upper`` (mixture, domain, step); attributes ``prob`` and
            ``observation``.
        """
        if not 0 < prob < 1:
            raise BimixInputError(f"prob must be in (0, 1), got {prob}")
        steps = [int(s) for s in steps]
        if not steps or min(steps) <= 0:
            raise BimixInputError(f"steps must be positive integers, got {steps}")
        mixtures = self.mixtures_frame(mixtures)
        log_l = self.log_loss_draws(mixtures, steps)  # (N, M, T, D)
        if observation:
            reps = -(-min_samples // len(log_l))
            noise = self._noise_draws((reps, *log_l.shape), seed)  # every draw gets reps noises
            log_l = (log_l[None] + noise).reshape(-1, *log_l.shape[1:])
        loss = np.exp(log_l).transpose(0, 1, 3, 2)  # (N, M, D, T)
        tail = (1 - prob) / 2
        lower, median, upper = np.quantile(loss, [tail, 0.5, 1 - tail], axis=0)
        dims = ("mixture", "domain", "step")
        coords = {"mixture": list(mixtures.index), "domain": self.domains, "step": steps}
        pred = xr.Dataset(
            {
                "loss_draws": (("sample", *dims), loss),
                "mean": (dims, loss.mean(axis=0)),
                "median": (dims, median),
                "lower": (dims, lower),
                "upper": (dims, upper),
            },
            coords=coords,
            attrs={"prob": prob, "observation": int(observation), "units": "nats per token"},
        )
        return pred

    def _noise_draws(self, shape: tuple[int, ...], seed: int) -> np.ndarray:
        """Per-run effect (constant along steps) plus residual noise: ``(rep, sample, M, T, D)``."""
        rng = np.random.default_rng(seed)
        reps, n, m, t, d = shape
        noise = np.zeros(shape)
        if "sigma_run" in self.draws:
            sd_run = self._stacked("sigma_run")[:, None, None, :]
            noise += rng.standard_normal((reps, n, m, 1, d)) * sd_run
        if "sigma" in self.draws:
            sd = self._stacked("sigma")[:, None, None, :]
            if "nu" in self.draws:
                nu = self._stacked("nu")[:, None, None, None]
                noise += rng.standard_t(np.broadcast_to(nu, shape)) * sd
            else:
                noise += rng.standard_normal(shape) * sd
        return noise


def predictions_frame(pred: xr.Dataset) -> pd.DataFrame:
    """Tidy prediction table ``mixture,domain,step,mean,median,lower,upper,prob`` (DESIGN §4)."""
    frame = pred[["mean", "median", "lower", "upper"]].to_dataframe().reset_index()
    frame["prob"] = pred.attrs["prob"]
    return frame[["mixture", "domain", "step", "mean", "median", "lower", "upper", "prob"]]


def write_predictions(pred: xr.Dataset, path: str | os.PathLike[str]) -> None:
    """Write :func:`predictions_frame` atomically, opening with a ``# units:`` comment line."""
    write_csv(predictions_frame(pred), path, units=PREDICTION_UNITS, index=False,
              float_format="%.6g")


def _check_draws(draws: xr.Dataset, law: str, source: str) -> None:
    if law not in LAWS:
        raise BimixInputError(f"unknown law {law!r}; expected one of {', '.join(LAWS)}", path=source)
    missing = [v for v in LAWS[law] if v not in draws]
    if missing:
        raise BimixInputError(
            f"the posterior of law {law!r} lacks variable(s) {', '.join(missing)}: it comes from a "
            "different model; refit with `bimix fit`", path=source)
    if draws.sizes.get("chain", 0) * draws.sizes.get("draw", 0) == 0:
        raise BimixInputError("the posterior holds no draws", path=source)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
