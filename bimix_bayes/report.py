"""A report to share: one self-contained HTML file about a fitted law and, optionally, a plan.

:func:`write_report` writes everything a colleague needs to judge a fit and the decision drawn
from it, in one file that opens offline in any browser (figures embedded as base64 PNG, styles
inline, no scripts): the data, the paper's coefficients with their uncertainty, the decision (the
mixture, its gain band, P(improvement) and, when the gain is not clearly positive, the words
"no confident improvement over the reference"), the law comparison when the posterior holds one,
and the diagnostics with what each check means in plain words. ``bimix report``, ``bimix demo``
and ``bimix loop`` write it.

:func:`paper_coefficients` (the paper's ``A, alpha, B, beta`` per domain, with posterior mean, sd
and interval) also backs the summary that ``bimix fit`` prints.

Examples
--------
>>> post = Posterior.load("fit.nc")                                        # doctest: +SKIP
>>> write_report(post, "report.html", plan=read_plan("plan.json"))          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bimix_bayes import diagnostics as diag
from bimix_bayes._io import atomic_path
from bimix_bayes.errors import BimixInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bimix_bayes.posterior import Posterior

UNITS = "nats per token"
#: The paper's coefficients reported per domain (``C = 1`` by convention, so it is not listed).
PAPER_COEFFICIENTS = ("A", "alpha", "B", "beta")
#: Keys a plan (the JSON ``bimix optimize`` writes) must hold to be reported.
PLAN_KEYS = ("step", "prob", "gain_mean", "gain_lower", "gain_upper", "prob_improvement")


# ------------------------------------------------------------------------------ numbers
def paper_coefficients(post: Posterior, prob: float = 0.9) -> pd.DataFrame:
    """The paper's ``A, alpha, B, beta`` per domain: posterior mean, sd and central interval.

    Each draw is converted by the law (:meth:`bimix_bayes.laws.Law.paper_coefficients`:
    convention ``C = 1``, steps in training steps), so the summaries are of the paper's
    coefficients themselves, not of the model's internal ``log_c`` and ``u``. A law without the
    paper's coefficients reports its own per-domain parameters.

    Parameters
    ----------
    post : Posterior
        The fitted law (a one-draw least-squares fit has sd 0 and a zero-width interval).
    prob : float
        Mass of the central interval.

    Returns
    -------
    pandas.DataFrame
        Index ``(domain, coefficient)``; columns ``mean``, ``sd``, ``lower``, ``upper``.

    Examples
    --------
    >>> paper_coefficients(post).loc[("web", "alpha")]                        # doctest: +SKIP
    """
    if not 0 < prob < 1:
        raise BimixInputError(f"prob must be in (0, 1), got {prob}")
    draws = post.samples()
    paper = draws.law.paper_coefficients(draws.params, post.s_ref)
    names = PAPER_COEFFICIENTS
    if paper is None:
        paper = {k: v for k, v in draws.params.items() if draws.law.parameters[k] == ("domain",)}
        names = tuple(paper)
    tail = (1 - prob) / 2
    rows = []
    for name in names:
        values = paper[name]  # (sample, domain)
        lower, upper = np.quantile(values, [tail, 1 - tail], axis=0)
        for i, domain in enumerate(post.domains):
            rows.append({"domain": domain, "coefficient": name, "mean": values[:, i].mean(),
                         "sd": values[:, i].std(ddof=1) if len(values) > 1 else 0.0,
                         "lower": lower[i], "upper": upper[i]})
    frame = pd.DataFrame(rows).set_index(["domain", "coefficient"])
    return frame.loc[post.domains]


def paper_table(coefficients: pd.DataFrame) -> pd.DataFrame:
    """:func:`paper_coefficients` as text, one row per domain: ``mean ± sd [lower, upper]``.

    Examples
    --------
    >>> frame = pd.DataFrame({"mean": [0.1], "sd": [0.01], "lower": [0.08], "upper": [0.12]},
    ...     index=pd.MultiIndex.from_tuples([("web", "alpha")], names=["domain", "coefficient"]))
    >>> paper_table(frame).loc["web", "alpha"]
    '0.1 ± 0.01 [0.08, 0.12]'
    """
    def cell(row: pd.Series) -> str:
        if row["sd"] == 0:
            return f"{row['mean']:.4g}"
        return f"{row['mean']:.4g} ± {row['sd']:.2g} [{row['lower']:.4g}, {row['upper']:.4g}]"

    text = coefficients.apply(cell, axis=1).unstack("coefficient")
    order = [c for c in PAPER_COEFFICIENTS if c in text.columns]
    domains = list(pd.unique(coefficients.index.get_level_values("domain")))
    return text.loc[domains, order]


def s_ref_note(post: Posterior) -> str:
    """One sentence saying what the posterior's ``s_ref`` is.

    Examples
    --------
    >>> s_ref_note(post)                                                      # doctest: +SKIP
    's_ref = 52.3 is the reference step: the geometric mean of the evaluated steps, ...'
    """
    return (f"s_ref = {post.s_ref:.4g} is the reference step: the geometric mean of the evaluated "
            "steps, where the model centres its step term (u is the log ratio of the reducible to "
            "the irreducible loss there); the paper's B above is converted back to plain training "
            "steps, with C = 1 by convention.")


def read_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the plan summary JSON that ``bimix optimize`` writes beside its plan CSV.

    Raises
    ------
    BimixInputError
        The file is missing, not JSON, or lacks a key of :data:`PLAN_KEYS`.
    """
    path = Path(path)
    if not path.is_file():
        raise BimixInputError("file not found", path=path)
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BimixInputError(f"not a plan JSON file from `bimix optimize` ({exc})",
                              path=path) from None
    if not isinstance(plan, dict):
        raise BimixInputError("not a plan JSON file from `bimix optimize` (expected an object)",
                              path=path)
    missing = [k for k in PLAN_KEYS if k not in plan]
    if missing:
        raise BimixInputError(f"the plan lacks {', '.join(missing)}; write it with `bimix "
                              "optimize`", path=path)
    return plan


def plan_verdict(plan: Mapping[str, Any]) -> str:
    """The plan's sentence about its gain (stored in the plan, or derived from its numbers)."""
    from bimix_bayes.optimizer import verdict

    if "verdict" in plan:
        return str(plan["verdict"])
    return verdict(float(plan["gain_lower"]), float(plan["gain_upper"]),
                   float(plan["prob_improvement"]), float(plan["prob"]))


def law_comparison(post: Posterior) -> pd.DataFrame | None:
    """The law comparison stored with the posterior, if any (attribute or group ``law_comparison``).

    The attribute holds JSON: records (a list of rows) or a mapping from law to its numbers.
    """
    tree = post.tree
    if "law_comparison" in tree.children:
        return tree["law_comparison"].to_dataset().to_dataframe()
    text = tree.attrs.get("law_comparison")
    if text is None:
        return None
    value = json.loads(text) if isinstance(text, str) else text
    if isinstance(value, list):
        return pd.DataFrame(value)
    if isinstance(value, dict):
        frame = pd.DataFrame(value)
        return frame.T if all(isinstance(v, dict) for v in value.values()) else frame
    return None


# ------------------------------------------------------------------------------ diagnostics
def diagnostic_checks(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each sampler check with its value, the bar it must pass, whether it does, and its meaning.

    Examples
    --------
    >>> rows = diagnostic_checks({"chains": 4, "draws": 1000, "n_divergent": 0, "max_rhat": 1.002,
    ...     "max_rhat_var": "alpha[web]", "min_ess_bulk": 2000, "min_ess_bulk_var": "u[code]",
    ...     "min_ess_tail": 1500, "min_ess_tail_var": "u[code]"})
    >>> [(r["check"], r["ok"]) for r in rows][:2]
    [('divergent transitions', True), ('R-hat', True)]
    """
    if "max_rhat" not in d:
        return []
    ess_min = diag.ESS_PER_CHAIN * d["chains"]
    rows = [
        {"check": "divergent transitions", "value": f"{d['n_divergent']}", "bar": "0",
         "ok": d["n_divergent"] == 0,
         "meaning": "Places where the sampler's numerical integrator broke down. Any divergence "
                    "means part of the posterior may be missed, so bands can be too narrow."},
        {"check": "R-hat", "value": f"{d['max_rhat']:.3f} ({d['max_rhat_var']})",
         "bar": f"<= {diag.RHAT_MAX}", "ok": d["max_rhat"] <= diag.RHAT_MAX,
         "meaning": "Compares the chains with each other: above the bar they have not yet agreed "
                    "on one answer, and longer runs are needed."},
        {"check": "bulk ESS", "value": f"{d['min_ess_bulk']:.0f} ({d['min_ess_bulk_var']})",
         "bar": f">= {ess_min}", "ok": d["min_ess_bulk"] >= ess_min,
         "meaning": "How many independent draws the correlated chains are worth for the centre of "
                    "each distribution (means, medians)."},
        {"check": "tail ESS", "value": f"{d['min_ess_tail']:.0f} ({d['min_ess_tail_var']})",
         "bar": f">= {ess_min}", "ok": d["min_ess_tail"] >= ess_min,
         "meaning": "The same for the tails, which set the interval bounds and the bands."},
    ]
    if "min_bfmi" in d:
        rows.append({"check": "E-BFMI", "value": f"{d['min_bfmi']:.2f}", "bar": f">= {diag.BFMI_MIN}",
                     "ok": d["min_bfmi"] >= diag.BFMI_MIN,
                     "meaning": "How freely the sampler moves between energy levels; low values "
                                "mean heavy tails or a funnel it explores poorly."})
    if "n_max_treedepth" in d:
        bar = 0.05 * d["chains"] * d["draws"]
        rows.append({"check": "maximum tree depth hit", "value": f"{d['n_max_treedepth']}",
                     "bar": f"<= {bar:.0f}", "ok": d["n_max_treedepth"] <= bar,
                     "meaning": "Draws whose trajectory hit the length limit: a sign of a badly "
                                "scaled posterior."})
    return rows


# ------------------------------------------------------------------------------ HTML
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1a1a1a; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
.meta { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.55rem; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
.verdict { padding: 0.7rem 1rem; border-radius: 6px; font-weight: 600; margin: 0.8rem 0; }
.verdict.good { background: #e5f5e5; border: 1px solid #7bbf7b; }
.verdict.bad { background: #fdf0e0; border: 1px solid #e0a050; }
.ok { color: #1b7a1b; font-weight: 600; }
.fail { color: #b03a00; font-weight: 600; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9rem; }
code { background: #f5f5f5; padding: 0 0.2rem; }
"""


def figure_png(fig: Figure) -> str:
    """A figure as a ``data:image/png;base64,...`` URI, for embedding in HTML."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(frame: pd.DataFrame, fmt: str = "{:.4g}", index: bool = True) -> str:
    """A DataFrame as an HTML table (numbers formatted with ``fmt``, text left-aligned)."""
    frame = frame.reset_index() if index else frame
    head = "".join(f'<th class="text">{_e(c)}</th>' if frame[c].dtype == object
                   else f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float | np.floating):
                cells.append(f"<td>{_e(fmt.format(value))}</td>")
            elif isinstance(value, int | np.integer):
                cells.append(f"<td>{value}</td>")
            else:
                cells.append(f'<td class="text">{_e(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _decision(plan: Mapping[str, Any]) -> str:
    pct = f"{100 * float(plan['prob']):.0f}%"
    words = plan_verdict(plan)
    good = bool(plan.get("confident", not words.startswith("no confident")))
    parts = [
        f'<div id="verdict" class="verdict {"good" if good else "bad"}">{_e(words)}</div>',
        "<table><tbody>",
        f'<tr><th class="text">judged at step</th><td id="plan-step">{float(plan["step"]):g}</td></tr>',
        f'<tr><th class="text">objective</th><td class="text">{_e(plan.get("objective", "?"))}</td></tr>',
        f'<tr><th class="text">expected gain ({UNITS})</th>'
        f'<td id="gain-mean">{float(plan["gain_mean"]):.4g}</td></tr>',
        f'<tr><th class="text">{pct} interval of the gain</th><td id="gain-band">'
        f'[<span id="gain-lower">{float(plan["gain_lower"]):.4g}</span>, '
        f'<span id="gain-upper">{float(plan["gain_upper"]):.4g}</span>]</td></tr>',
        f'<tr><th class="text">P(improvement)</th>'
        f'<td id="prob-improvement">{float(plan["prob_improvement"]):.3f}</td></tr>',
    ]
    if "expected_loss" in plan:
        parts.append(f'<tr><th class="text">expected average loss: plan / reference</th>'
                     f'<td>{float(plan["expected_loss"]):.4g} / '
                     f'{float(plan["reference_expected_loss"]):.4g}</td></tr>')
    parts.append("</tbody></table>")
    mixture, reference = plan.get("mixture"), plan.get("reference")
    if mixture and reference:
        frame = pd.DataFrame({"plan": pd.Series(mixture), "reference": pd.Series(reference)})
        parts.append("<p>The mixture to train, beside the reference it is compared with "
                     "(shares of the training tokens):</p>")
        parts.append(_table(frame.rename_axis("domain"), fmt="{:.3f}"))
    parts.append("<p>The gain is the reference's expected average loss minus the plan's, over "
                 "posterior draws; P(improvement) is the share of draws in which the plan is "
                 "better. A plan is called a confident improvement only when P(improvement) is "
                 f"at least 0.5 and the whole {pct} interval of the gain lies above zero.</p>")
    return "\n".join(parts)


def _diagnostics_section(post: Posterior, options: str | dict[str, str | None]) -> str:
    d = post.diagnostics
    if post.method == "leastsq" or post.n_samples == 1:
        return ("<p>A least-squares fit is a point estimate: there is no sampler to check, and "
                "its bands come from the residual noise alone, not from uncertainty about the "
                "coefficients, so they are narrower than the data justify.</p>")
    trust = d.get("trustworthy")
    verdict = {True: "trustworthy", False: "NOT trustworthy"}.get(trust, "unchecked")
    parts = [f'<p>Sampler <code>{_e(d.get("method", post.method))}</code>: the fit is '
             f'<span id="trust" class="{"ok" if trust else "fail"}">{verdict}</span>.</p>']
    if d.get("approximate"):
        parts.append("<p>An approximate method (no MCMC): the checks below do not apply; "
                     "compare with a NUTS fit before relying on its bands.</p>")
    rows = diagnostic_checks(d)
    if rows:
        body = "".join(
            f'<tr><td class="text">{_e(r["check"])}</td><td>{_e(r["value"])}</td>'
            f'<td>{_e(r["bar"])}</td><td class="{"ok" if r["ok"] else "fail"}">'
            f'{"pass" if r["ok"] else "FAIL"}</td><td class="text">{_e(r["meaning"])}</td></tr>'
            for r in rows)
        parts.append('<table id="diagnostics"><thead><tr><th class="text">check</th><th>value '
                     '(worst variable)</th><th>bar</th><th>result</th><th class="text">what it '
                     f"means</th></tr></thead><tbody>{body}</tbody></table>")
        parts.append(f"<p>{d['chains']} chains x {d['draws']} draws"
                     + (f", {d['seconds']:.1f} s" if "seconds" in d else "") + ".</p>")
    if "attempts" in d:
        tried = ", ".join(f"{a['n_divergent']} at {a['target_accept']}" for a in d["attempts"])
        parts.append(f"<p>Divergences by target acceptance: {_e(tried)}; the fit kept "
                     f"{_e(d.get('target_accept'))}.</p>")
    found = diag.remedied_problems(d, options)
    if found:
        parts.append("<p>What to do:</p><ul>" + "".join(f"<li>{_e(p)}</li>" for p in found)
                     + "</ul>")
    parts.append(_design_section(post))
    return "\n".join(parts)


def _design_section(post: Posterior) -> str:
    """How much the runs taught about each coefficient, and what to train where they did not."""
    table = diag.contraction(post)
    if table is None:
        return ""
    informed = int(table["informed"].sum())
    text = (f'<p id="contraction">Contraction (1 - posterior variance / prior variance): '
            f"{informed} of {len(table)} coefficients at least {diag.CONTRACTION_MIN:g}, i.e. "
            "informed by these runs rather than by the prior.</p>")
    advice = diag.design_advice(post, table, suggest="bimix suggest FIT.nc --rule info --n 4 "
                                f"--step {post.observations.steps[-1]} --out next.csv")
    if advice:
        text += ('<p>What the runs did not inform, and what to train:</p><ul id="design">'
                 + "".join(f"<li>{_e(line)}</li>" for line in advice) + "</ul>")
    return text


def report_html(
    post: Posterior,
    plan: Mapping[str, Any] | None = None,
    *,
    title: str = "bimix-bayes report",
    intro: str | None = None,
    vocab_size: int | None = None,
    prior: bool = True,
    sections: Sequence[tuple[str, pd.DataFrame | str]] = (),
    options: str | dict[str, str | None] = "fit",
    prob: float = 0.9,
) -> str:
    """The report as one self-contained HTML page (see the module docstring).

    Parameters
    ----------
    post : Posterior
        The fitted law.
    plan : mapping, optional
        A plan summary (:meth:`bimix_bayes.optimizer.OptimizationResult.summary`, or
        :func:`read_plan` of the JSON ``bimix optimize`` writes). Without it the report has no
        decision section.
    title, intro : str
        Heading, and an optional first paragraph (plain text).
    vocab_size : int, optional
        The tokenizer's vocabulary size: the loss curves then mark ``ln(vocab_size)``.
    prior : bool
        Draw the prior beside the posterior in the coefficient figure (a Bayesian fit only;
        sampling the prior takes a few seconds).
    sections : sequence of (str, DataFrame or str)
        Extra sections (heading, then a table or a paragraph of plain text), e.g. the next
        mixtures to train.
    options : str or dict
        How remedies are spelt (:data:`bimix_bayes.diagnostics.REMEDY_OPTIONS`): the command a
        reader would run to fix the fit.
    prob : float
        Mass of the coefficient intervals and figure bands.

    Returns
    -------
    str
    """
    from bimix_bayes import plots
    from bimix_bayes.model import prior_of

    obs = post.observations
    figures: list[tuple[str, Callable[[], Figure]]] = [
        ("Loss against step for the most distinct observed mixtures, with the band a new run's "
         "loss would fall in; dots are observed losses.",
         lambda: plots.plot_loss_curves(post, prob=prob, vocab_size=vocab_size)),
        ("Predicted against observed loss: points near the diagonal and about "
         f"{prob:.0%} of them inside their intervals mean the fit is calibrated.",
         lambda: plots.plot_predicted_vs_observed(post, prob=prob)),
        ("Residuals (observed / predicted - 1) against step and share: a trend shows where the "
         "law's form misses the data.", lambda: plots.plot_residuals(post)),
    ]
    prior_draws = prior_of(post) if prior and post.n_samples > 1 else None
    figures.append(("The model's coefficients per domain" + (
        ", posterior beside the prior (grey): the further they differ, the more the data taught."
        if prior_draws is not None else "."),
        lambda: plots.plot_coefficients(post, prob=prob, prior=prior_draws)))
    if plan is not None and plan.get("mixture") and plan.get("reference"):
        compare = pd.DataFrame([plan["reference"], plan["mixture"]],
                               index=pd.Index(["reference", "plan"], name="mixture"))
        # The plan file rounds its reference to 6 decimals: renormalise what a rounding explains.
        sums = compare.sum(axis=1)
        if ((sums - 1).abs() < 1e-4).all():
            compare = compare.div(sums, axis=0)
        compare = post.mixtures_frame(compare, source="<plan>")
        last = max(float(plan["step"]), obs.steps[-1])
        steps = sorted({int(round(s)) for s in np.geomspace(obs.steps[0], last, 40)})
        figures.append(("The planned mixture against the reference, up to the step it is "
                        "judged at.", lambda: plots.plot_loss_curves(
                            post, compare, steps=steps, prob=prob, vocab_size=vocab_size)))

    images = []
    for caption, draw in figures:
        fig = draw()
        images.append(f'<figure><img alt="{_e(caption)}" src="{figure_png(fig)}">'
                      f"<figcaption>{_e(caption)}</figcaption></figure>")

    coef = paper_table(paper_coefficients(post, prob=prob))
    pct = f"{100 * prob:.0f}%"
    version = getattr(post, "version", "?")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">bimix-bayes {_e(version)}; written {now}.</p>',
    ]
    if intro:
        body.append(f"<p>{_e(intro)}</p>")
    body += [
        "<h2>Data and fit</h2>",
        f'<p><span id="n-runs">{len(obs.runs)}</span> runs, {len(post.sources)} training '
        f"domains ({len(post.domains)} evaluated), {len(obs.steps)} evaluation steps from "
        f"{obs.steps[0]} to {obs.steps[-1]}; law <code>{_e(post.law)}</code> fitted by "
        f"<code>{_e(post.method)}</code> ({post.n_samples} draws). Losses are in {UNITS}.</p>",
    ]
    if plan is not None:
        body += ["<h2>Decision</h2>", _decision(plan)]
    body += [
        "<h2>The paper's coefficients</h2>",
        "<p><code>L = A / r^alpha * (B / s^beta + C)</code> per domain, with r the domain's "
        f"share and s the training step: posterior mean ± sd [{pct} interval].</p>",
        _table(coef.rename_axis("domain")),
        f"<p>{_e(s_ref_note(post))}</p>",
    ]
    comparison = law_comparison(post)
    if comparison is not None:
        body += ["<h2>Law comparison</h2>",
                 "<p>How the candidate laws compared on these data (stored with the fit):</p>",
                 _table(comparison)]
    body += ["<h2>Diagnostics</h2>", _diagnostics_section(post, options)]
    for heading, content in sections:
        body.append(f"<h2>{_e(heading)}</h2>")
        body.append(_table(content, fmt="{:.3f}") if isinstance(content, pd.DataFrame)
                    else f"<p>{_e(content)}</p>")
    body += ["<h2>Figures</h2>", *images]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(post: Posterior, path: str | os.PathLike[str],
                 plan: Mapping[str, Any] | None = None, **options: Any) -> Path:
    """Write :func:`report_html` atomically to ``path``; returns the path.

    Examples
    --------
    >>> write_report(post, "report.html", plan=result.summary())               # doctest: +SKIP
    PosixPath('report.html')
    """
    page = report_html(post, plan, **options)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)
