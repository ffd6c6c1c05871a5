"""Convergence diagnostics of a fit, the verdict on whether to trust it, and what to do if not.

:func:`mcmc_diagnostics` condenses an MCMC trace (ArviZ 1.x DataTree) into a flat, JSON-friendly
dict: divergences, R-hat, bulk and tail ESS, E-BFMI and tree-depth saturation, each with the worst
variable, plus ``trustworthy`` and a list of ``problems`` that each name a concrete remedy.
:func:`warn_if_untrustworthy` turns the problems into one :class:`UntrustworthyFitWarning`.

Thresholds follow Vehtari et al. (2021): R-hat <= 1.01 and bulk/tail ESS >= 100 per chain; E-BFMI
>= 0.3 (Betancourt 2016); zero divergences.

Examples
--------
>>> d = {"method": "nuts", "trustworthy": False, "problems": ["2 divergent transitions: ..."]}
>>> summary_text(d).splitlines()[0]
'method nuts: NOT trustworthy'
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import arviz as az
import numpy as np
import xarray as xr

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
BFMI_MIN = 0.3


class UntrustworthyFitWarning(UserWarning):
    """The sampler's diagnostics say the posterior draws should not be relied on."""


def _worst(ds: xr.Dataset, fn: str) -> tuple[float, str]:
    """The extreme value over all variables and elements, and where it is."""
    best_val, best_name = (-np.inf if fn == "max" else np.inf), ""
    for name, var in ds.data_vars.items():
        values = np.asarray(var.values, dtype=float)
        if values.size == 0 or not np.isfinite(values).any():
            continue
        idx = np.nanargmax(values) if fn == "max" else np.nanargmin(values)
        val = float(values.flat[idx])
        if (fn == "max" and val > best_val) or (fn == "min" and val < best_val):
            where = np.unravel_index(idx, values.shape) if values.ndim else ()
            label = ",".join(str(var[dim].values[i]) if dim in var.coords else str(i)
                             for dim, i in zip(var.dims, where, strict=True))
            best_val, best_name = val, f"{name}[{label}]" if label else name
    return best_val, best_name


def mcmc_diagnostics(trace: xr.DataTree, var_names: Sequence[str] | None = None) -> dict[str, Any]:
    """R-hat, ESS, divergences, E-BFMI and tree depth of an MCMC trace, with a verdict.

    Parameters
    ----------
    trace : xarray.DataTree
        With groups ``posterior`` and ``sample_stats`` (``diverging``, ``energy``; tree-depth
        flags when the sampler reports them).
    var_names : sequence of str, optional
        Variables to check R-hat and ESS on (default: all in ``posterior``).

    Returns
    -------
    dict
        ``chains, draws, n_divergent, max_rhat, max_rhat_var, min_ess_bulk, min_ess_bulk_var,
        min_ess_tail, min_ess_tail_var, min_bfmi, n_max_treedepth, trustworthy, problems``.
    """
    post = trace["posterior"].to_dataset()
    if var_names is not None:
        post = post[[v for v in var_names if v in post]]
    # A reduced form's fixed parameters (no step term at one step) are constants: no R-hat.
    post = post[[v for v, var in post.data_vars.items()
                 if float(var.max() - var.min()) > 0 or var.size == 0]]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    stats = trace["sample_stats"].to_dataset() if "sample_stats" in trace.children else xr.Dataset()
    out: dict[str, Any] = {"chains": int(chains), "draws": int(draws)}
    out["n_divergent"] = int(stats["diverging"].sum()) if "diverging" in stats else 0
    for key in ("maxdepth_reached", "reached_max_treedepth"):
        if key in stats:
            out["n_max_treedepth"] = int(stats[key].sum())
    if draws >= 4:
        out["max_rhat"], out["max_rhat_var"] = _worst(az.rhat(post), "max")
        out["min_ess_bulk"], out["min_ess_bulk_var"] = _worst(az.ess(post, method="bulk"), "min")
        out["min_ess_tail"], out["min_ess_tail_var"] = _worst(az.ess(post, method="tail"), "min")
    if "energy" in stats and draws >= 4:
        out["min_bfmi"] = float(az.bfmi(trace)["energy"].min())
    out["problems"] = problems(out)
    out["trustworthy"] = not out["problems"]
    return out


def approximation_diagnostics(posterior: xr.Dataset, method: str, extra: dict[str, Any]
                              ) -> dict[str, Any]:
    """The verdict on an approximate fit (Laplace, ADVI): there are no MCMC diagnostics, so it is
    unchecked unless its optimisation visibly failed."""
    found = [f"the {method} optimisation did not converge ({extra['map_message']}); "
             "use method='nuts'"] if not extra.get("map_converged", True) else []
    if extra.get("hessian_positive_definite") is False:
        found.append("the Hessian at the mode is not positive definite (a flat or saddle "
                     "direction); use method='nuts'")
    return {"chains": 1, "draws": int(posterior.sizes["draw"]), "approximate": True,
            "trustworthy": None if not found else False, "problems": found}


#: How each remedy is spelt for the one who reads it: the Python keywords of
#: :class:`bimix_bayes.model.BayesianBiMix`, or the options of the ``bimix`` command that printed
#: the diagnostics. A remedy a command cannot apply (None) is left out of its text.
REMEDY_OPTIONS: dict[str, dict[str, str | None]] = {
    "python": {"draws": "draws=2000", "tune": "tune=2000", "chains": "chains=8",
               "student": "noise='student'", "check": "draws=1000, tune=1000"},
    "fit": {"draws": "--draws 2000", "tune": "--tune 2000", "chains": "--chains 8",
            "student": "--noise student", "check": "--draws 1000 --tune 1000"},
    # demo and loop set the tuning steps equal to --draws and have no --chains or --noise.
    "demo": {"draws": "--draws 2000", "tune": "--draws 2000 (it sets the tuning steps too)",
             "chains": None, "student": None, "check": "--draws 1000"},
    "loop": {"draws": "--draws 2000", "tune": "--draws 2000 (it sets the tuning steps too)",
             "chains": None, "student": "`bimix fit OUT/observations.csv --noise student`",
             "check": "--draws 1000"},
}


def _join(options: dict[str, str | None], keys: tuple[str, ...], word: str) -> str:
    """The remedies of ``keys`` this caller can apply, joined by ``word``; one per option name
    (demo's --draws sets the tuning steps too: "raise --draws 2000 and --draws 2000" says it twice).
    """
    seen, parts = set(), []
    for value in (options.get(k) for k in keys):
        if value and value.split()[0] not in seen:
            seen.add(value.split()[0])
            parts.append(value)
    return f" {word} ".join(parts)


def _either(options: dict[str, str | None], *keys: str) -> str:
    return _join(options, keys, "or")


def problems(d: dict[str, Any], options: str | dict[str, str | None] = "python") -> list[str]:
    """Each failed check of :func:`mcmc_diagnostics`'s dict, with a concrete remedy.

    Parameters
    ----------
    d : dict
        The diagnostics.
    options : str or dict
        How the remedies are spelt: a key of :data:`REMEDY_OPTIONS` (``"python"``, or the CLI
        command ``"fit"``, ``"demo"``, ``"loop"``) or such a mapping.

    Examples
    --------
    >>> d = {"chains": 4, "draws": 1000, "n_divergent": 3, "max_rhat": 1.0, "min_ess_bulk": 900,
    ...      "min_ess_tail": 900}
    >>> problems(d, "fit")[0].split("; ")[1]
    'raise --tune 2000, check the data for outlier curves or use --noise student'
    """
    opt = REMEDY_OPTIONS[options] if isinstance(options, str) else options
    found = []
    ess_min = ESS_PER_CHAIN * d["chains"]
    if d["draws"] < 4 or "max_rhat" not in d:
        found.append(f"only {d['draws']} draws per chain: convergence cannot be checked; "
                     f"use {opt['check']}")
        return found
    if d["n_divergent"]:
        student = f" or use {opt['student']}" if opt.get("student") else ""
        found.append(f"{d['n_divergent']} divergent transitions: the posterior has regions the "
                     f"sampler cannot explore; raise {opt['tune']}, check the data for outlier "
                     f"curves{student}")
    if d["max_rhat"] > RHAT_MAX:
        found.append(f"max R-hat {d['max_rhat']:.3f} > {RHAT_MAX} ({d['max_rhat_var']}): chains "
                     f"disagree; raise {_join(opt, ('tune', 'draws'), 'and')} or check for "
                     "multimodality")
    for kind in ("bulk", "tail"):
        if d[f"min_ess_{kind}"] < ess_min:
            found.append(f"min {kind} ESS {d[f'min_ess_{kind}']:.0f} < {ess_min} "
                         f"({d[f'min_ess_{kind}_var']}): too few effective draws; raise "
                         f"{_either(opt, 'draws', 'chains')}")
    if d.get("min_bfmi", np.inf) < BFMI_MIN:
        found.append(f"E-BFMI {d['min_bfmi']:.2f} < {BFMI_MIN}: poor energy exploration "
                     f"(heavy tails or a funnel); raise {_either(opt, 'tune')}"
                     + (f" or use {opt['student']}" if opt.get("student") else ""))
    if d.get("n_max_treedepth", 0) > 0.05 * d["chains"] * d["draws"]:
        found.append(f"{d['n_max_treedepth']} draws hit the maximum tree depth: the posterior "
                     f"is badly scaled; raise {opt['tune']} so the mass matrix adapts")
    return found


def remedied_problems(d: dict[str, Any], options: str | dict[str, str | None] | None = None
                      ) -> list[str]:
    """``d["problems"]``, with the MCMC remedies spelt for ``options`` (None: as stored).

    Problems of an approximate fit (no MCMC checks) are kept as stored.
    """
    if options is None or "max_rhat" not in d and "chains" not in d or d.get("approximate"):
        return list(d.get("problems", []))
    return problems(d, options)


def warn_if_untrustworthy(d: dict[str, Any], stacklevel: int = 3) -> None:
    """Emit one :class:`UntrustworthyFitWarning` listing ``d["problems"]``, if any."""
    if d.get("trustworthy") is False:
        warnings.warn("the fit is not trustworthy: " + "; ".join(d["problems"]),
                      UntrustworthyFitWarning, stacklevel=stacklevel)


def summary_text(d: dict[str, Any], options: str | dict[str, str | None] | None = None) -> str:
    """A few lines for the terminal: verdict, then the numbers, then the problems.

    ``options`` (see :func:`problems`) rewrites the remedies in the spelling of the command that
    prints them; None keeps the ones stored with the fit.
    """
    verdict = {True: "trustworthy", False: "NOT trustworthy"}.get(d.get("trustworthy"), "unchecked")
    lines = [f"method {d.get('method', '?')}: {verdict}"]
    if "max_rhat" in d:
        lines.append(
            f"  {d['chains']} chains x {d['draws']} draws; divergences {d['n_divergent']}; "
            f"max R-hat {d['max_rhat']:.3f}; min ESS bulk {d['min_ess_bulk']:.0f} / "
            f"tail {d['min_ess_tail']:.0f}" + (f"; min E-BFMI {d['min_bfmi']:.2f}"
                                               if "min_bfmi" in d else ""))
    if "attempts" in d:
        tried = ", ".join(f"{a['n_divergent']} at {a['target_accept']}" for a in d["attempts"])
        lines.append(f"  divergences by target_accept: {tried}; kept {d['target_accept']}")
    if "seconds" in d:
        lines.append(f"  {d['seconds']:.1f} s")
    lines += [f"  - {p}" for p in remedied_problems(d, options)]
    return "\n".join(lines)
