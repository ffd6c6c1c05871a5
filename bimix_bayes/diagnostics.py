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
import pandas as pd
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
                 if var.size == 0 or float(var.max() - var.min()) > 0]]
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


# ---------------------------------------------------------------------------- design: contraction
#: A coefficient whose posterior variance is more than half its prior variance (contraction
#: ``1 - var_post / var_prior`` below this) was barely informed by the data: its posterior sd is
#: above 0.71 of the prior's, so what the fit says about it is mostly the prior. 0.5 is where
#: the data and the prior carry equal weight (a normal prior and likelihood of equal precision).
CONTRACTION_MIN = 0.5
#: Prior draws used for the prior variances when the posterior file holds none: the Monte Carlo
#: error of a contraction near 0.5 is then about 0.02.
PRIOR_DRAWS = 1000
#: A share this small or less tells the law what a domain's loss is near zero share (``eps``).
SMALL_SHARE = 0.01

#: What to train when a law parameter is barely informed, by parameter name: ``(kind, dim)``,
#: with kind ``"share"`` (vary the share of the element's ``dim`` coordinate more widely),
#: ``"small-share"`` (train a mixture with little of it) or ``"steps"`` (evaluate at more and
#: later steps). A law with new parameters adds its names here; any other name gets the generic
#: advice (more, more varied mixtures).
ADVICE: dict[str, tuple[str, str | None]] = {
    "alpha": ("share", "domain"),        # proportion exponent: slope in log-share
    "eps": ("small-share", "domain"),    # sets the loss at shares near zero
    "transfer": ("share", "source"),     # transfer[domain, source]: the source's share
    "t": ("share", "source"),            # t[domain, source] of the mixture-linear laws
    "u": ("steps", None),                # step term
    "beta": ("steps", None),             # step exponent
}


def contraction(post: Any, prior: xr.Dataset | None = None) -> pd.DataFrame | None:
    """How much the data narrowed each law coefficient: ``1 - var_post / var_prior``.

    1 means the data pinned the coefficient down; near 0 (or below, by Monte Carlo error) that
    the posterior is still the prior. Variances are taken on the log scale for a coefficient
    whose draws are all positive (``alpha``, ``beta``, ``eps``, transfer weights: log-normal or
    half-normal priors, whose raw variance is dominated by their tails), else as they are.
    Elements without prior variance (a transfer law's zero diagonal) are left out.

    Parameters
    ----------
    post : Posterior
        A Bayesian fit (more than one draw).
    prior : xarray.Dataset, optional
        Prior draws of the law's parameters (dims ``chain, draw, ...``); default the file's
        ``prior`` group, else :data:`PRIOR_DRAWS` drawn now from the recorded spec at the same
        design (:func:`bimix_bayes.model.parameter_prior`, a fraction of a second).

    Returns
    -------
    pandas.DataFrame or None
        Index ``coefficient`` (``alpha[code]``, ``transfer[math,code]``); columns ``parameter``,
        one per dim of the parameter (``domain``, ``source``), ``scale`` (``log`` or
        ``linear``), ``prior_sd``, ``posterior_sd``, ``contraction`` and ``informed``
        (contraction at least :data:`CONTRACTION_MIN`). None for a point fit (least squares).

    Examples
    --------
    >>> table = contraction(Posterior.load("fit.nc"))                         # doctest: +SKIP
    >>> table.loc[~table["informed"], "contraction"]                          # doctest: +SKIP
    coefficient
    alpha[docs]    0.21
    """
    if post.n_samples < 2 or not post.sampler_config:
        return None
    if prior is None:
        prior = post.prior
    if prior is None:
        from bimix_bayes.model import parameter_prior

        prior = parameter_prior(post.observations, post.spec, draws=PRIOR_DRAWS)
    rows = []
    for name, dims in post.spec.law_component.parameters.items():
        if name not in prior or name not in post.draws:
            continue
        before = prior[name].stack(sample=("chain", "draw")).transpose(*dims, "sample")
        after = post.draws[name].stack(sample=("chain", "draw")).transpose(*dims, "sample")
        a, b = before.to_numpy().astype(float), after.to_numpy().astype(float)
        for index in np.ndindex(*a.shape[:-1]):
            pa, pb = a[index], b[index]
            if not np.ptp(pa) > 0:
                continue
            log = bool((pa > 0).all() and (pb > 0).all())
            if log:
                pa, pb = np.log(pa), np.log(pb)
            var_prior, var_post = float(np.var(pa)), float(np.var(pb))
            labels = [str(before[dim].values[i]) for dim, i in zip(dims, index, strict=True)]
            rows.append({"coefficient": f"{name}[{','.join(labels)}]" if labels else name,
                         "parameter": name, **dict(zip(dims, labels, strict=True)),
                         "scale": "log" if log else "linear", "prior_sd": np.sqrt(var_prior),
                         "posterior_sd": np.sqrt(var_post),
                         "contraction": 1.0 - var_post / var_prior})
    table = pd.DataFrame(rows).set_index("coefficient")
    table["informed"] = table["contraction"] >= CONTRACTION_MIN
    return table


def _names(table: pd.DataFrame, most: int = 6) -> str:
    """``alpha[code] 0.12, alpha[docs] 0.30`` (and how many more), lowest contraction first."""
    rows = table.sort_values("contraction")
    shown = ", ".join(f"{c} {v:.2f}" for c, v in rows["contraction"].head(most).items())
    return shown + (f" and {len(rows) - most} more" if len(rows) > most else "")


def _information_needed(worst: float) -> float:
    """How many times the information on a coefficient its contraction says the data gave, for
    it to reach :data:`CONTRACTION_MIN` (capped at 20 near zero contraction).

    Posterior precision = prior precision x (1 + data / prior), so contraction ``c`` means
    ``data / prior = c / (1 - c)``, and :data:`CONTRACTION_MIN` needs ``m`` times that data.
    """
    target = CONTRACTION_MIN / (1 - CONTRACTION_MIN)
    return float(min(20.0, target * (1 - worst) / worst)) if worst > target / 20 else 20.0


def _share_advice(domains: list[str], spread: pd.DataFrame, worst: float) -> str:
    """Vary these domains' shares more widely, or train more runs: by how much."""
    from bimix_bayes.mixtures import MIN_SHARE_RATIO, wider_range

    more = _information_needed(worst)
    # The information on a slope in log-share grows with the square of the log-share's spread.
    factor = float(np.sqrt(more))
    parts, wide = [], []
    for d in domains:
        r = spread.loc[d]
        # At least twice the present ratio, so that the example is visibly wider.
        lo, hi = wider_range(float(r.low), float(r.high),
                             max(MIN_SHARE_RATIO, 2 * float(r.ratio), float(r.ratio) ** factor))
        if lo >= 0.99 * float(r.low) and hi <= 1.01 * float(r.high):
            wide.append(f"{d} ({r.low:.2g}-{r.high:.2g})")  # already past SUGGESTED_SHARES
        else:
            parts.append(f"{d} (now {r.low:.2g}-{r.high:.2g}; e.g. {lo:.2g}-{hi:.2g})")
    said = [f"{'they need' if len(domains) > 1 else 'it needs'} about {more:.1f}x the "
            "information these runs give"]
    if parts:
        said.append(f"train mixtures that vary the share of {' and '.join(parts)} more widely, "
                    f"or about {more:.1f}x as many runs")
    if wide:
        said.append(f"the share of {' and '.join(wide)} already varies about as widely as "
                    f"training allows: about {more:.1f}x as many runs (or repeats with other "
                    "seeds) pin it down")
    return ": ".join(said[:2]) + ("; " + said[2] if len(said) > 2 else "")


def design_advice(post: Any, table: pd.DataFrame | None = None, *,
                  suggest: str = "planner.suggest(post, n=4, step=S, rule='info')"
                  ) -> list[str]:
    """What the data did not inform, and what to train to fix it: one line per kind of advice.

    Parameters
    ----------
    post : Posterior
        A Bayesian fit.
    table : pandas.DataFrame, optional
        :func:`contraction` of ``post`` (computed when not given).
    suggest : str
        How the caller spells the planner call that proposes such runs (the CLI:
        ``bimix suggest FIT.nc --rule info ...``).

    Returns
    -------
    list of str
        Empty when every coefficient is informed (or for a point fit).

    Examples
    --------
    >>> design_advice(post)[0]                                                # doctest: +SKIP
    'alpha[docs] 0.21 barely informed by these runs (contraction < 0.5): train mixtures that ...'
    """
    from bimix_bayes.mixtures import share_spread

    table = contraction(post) if table is None else table
    if table is None or table["informed"].all():
        return []
    low = table[~table["informed"]]
    spread = share_spread(post.observations.mixtures())
    steps = post.observations.steps
    kinds = low["parameter"].map(lambda p: ADVICE.get(p, ("generic", None)))
    lines = []
    head = f"(contraction < {CONTRACTION_MIN:g}: the posterior is still close to the prior)"
    for kind in ("share", "small-share", "steps", "generic"):
        rows = low[[k[0] == kind for k in kinds]]
        if rows.empty:
            continue
        names = f"{_names(rows)} {'is' if len(rows) == 1 else 'are'} barely informed by these " \
                f"runs {head}"
        if kind == "share":
            dims = [ADVICE[p][1] for p in rows["parameter"]]
            domains = list(dict.fromkeys(
                str(v) for v, dim in zip(rows.to_dict("records"), dims, strict=True)
                for v in [v[dim]] if v in spread.index))
            text = _share_advice(domains, spread, float(rows["contraction"].min()))
            lines.append(f"{names}: {text}, e.g. `{suggest}`")
        elif kind == "small-share":
            smallest = spread["low"].reindex(list(dict.fromkeys(rows["domain"])))
            above = [f"{d} {v:.2g}" for d, v in smallest.items() if v >= SMALL_SHARE]
            below = [f"{d} {v:.2g}" for d, v in smallest.items() if v < SMALL_SHARE]
            said = []
            if above:
                said.append(f"the smallest shares trained ({', '.join(above)}) are far from "
                            "zero; if mixtures with little of these domains matter, train one "
                            f"with at most {SMALL_SHARE:g} of each")
            if below:
                said.append(f"shares down to {', '.join(below)} did not pin it either (the "
                            "loss barely changes there)")
            lines.append(f"{names}: eps sets the loss near zero share; " + "; ".join(said))
        elif kind == "steps":
            lines.append(f"{names}: evaluate more checkpoints over a longer run (steps now "
                         f"{steps[0]}-{steps[-1]}; e.g. up to {3 * steps[-1]})")
        else:
            lines.append(f"{names}: train more mixtures that differ more from each other, e.g. "
                         f"`{suggest}`")
    if post.diagnostics.get("trustworthy") is False and any(k[0] != "small-share" for k in kinds):
        # A weakly identified coefficient leaves the prior's funnel (a pooling scale against its
        # members) in the posterior; first-round designs diverge most (benchmarks/results/
        # target_accept.md), and the README tour's refit with 4 more runs passed every check.
        lines.append("the sampler's trouble above may come from these barely informed "
                     "coefficients (a weakly identified posterior keeps the prior's funnels): "
                     "runs that inform them are the lasting remedy, longer tuning at best a "
                     "partial one")
    return lines
