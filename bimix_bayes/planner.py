"""Next-experiment planning: which K mixtures to train next, chosen from posterior draws.

Two acquisition rules, both judged on the target-weighted average loss ``Lbar`` at one step (see
:mod:`bimix_bayes.optimizer`):

``thompson`` (batch Thompson sampling)
    Each posterior draw has its own optimal mixture. Visiting draws in random order, a draw's
    optimum joins the batch if it lies at least ``min_distance`` (total variation) from the mixtures
    already chosen; the distance halves until the batch is full. From a candidate list, each draw
    picks its best candidate instead. Score: the share of draws whose optimum is nearest to the
    suggestion (with candidates: the probability that the candidate is the best one).
``info`` (value of information by reweighting draws)
    For each candidate, fantasise the observation a new run would give under a draw of the
    posterior (the mean curve plus the fitted noise model's run offset and residual, sampled and
    scored by :mod:`bimix_bayes.noise`), reweight all draws by its likelihood (importance
    sampling) and measure how much the *expected regret of the recommendation* falls:
    ``E[Lbar(recommended) - min Lbar]`` before minus after. Score: that expected fall in nats. The
    batch is greedy: after each pick, the draws are reweighted by the expected observation there
    ("kriging believer") and the rest are rescored.

Across model sizes (a fit to runs at two or more sizes, ``params_choices``), a candidate is a
(mixture, size) pair and the ``info`` rule becomes cost-aware: the fantasised run is simulated and
weighed with the draws at *its* size, the regret it removes is measured with the draws at the
*target* size (the draws index the same posterior samples at every size, so one weight vector
serves all sizes), and the score is that fall per unit of compute (6 x params x tokens). The batch
is greedy within a compute budget.

Without observations there is no posterior: :func:`initial_design` gives the first mixtures (by
default the corpus's entropy design, :func:`bimix_bayes.entropy.entropy_design`).

Examples
--------
>>> nxt = suggest(post, n=4, step=5000, rule="thompson")                   # doctest: +SKIP
>>> write_mixtures(nxt, "next.csv")                                        # doctest: +SKIP
>>> nxt = suggest(post, n=8, step=5000, params_choices=[1e7, 3e7, 1e8],
...               budget=2e18, tokens_per_step=1e6, params=1e9)           # doctest: +SKIP
>>> nxt[["params", "cost", "score"]]                                      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bimix_bayes.constraints import Constraints, resolve_constraints
from bimix_bayes.draws import shaped
from bimix_bayes.errors import BimixInputError
from bimix_bayes.surface import LossSurface

if TYPE_CHECKING:
    from bimix_bayes.posterior import Posterior

RULES = ("thompson", "info")
Rule = Literal["thompson", "info"]


def check_rule(rule: str) -> None:
    """Raise :class:`BimixInputError` unless ``rule`` is one of :data:`RULES`."""
    if rule not in RULES:
        raise BimixInputError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")


#: Most mixtures one call suggests (a batch of training runs; minutes of search beyond that).
MAX_BATCH = 256
#: Training FLOPs per parameter and token (forward and backward pass, Kaplan et al. 2020).
FLOPS_PER_PARAM_TOKEN = 6.0

def suggest(
    post: Posterior,
    n: int,
    step: float,
    *,
    rule: Rule | None = None,
    candidates: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
    constraints: Constraints | None = None,
    min_distance: float = 0.05,
    max_draws: int = 1000,
    pool_size: int = 256,
    fantasies: int = 32,
    seed: int = 0,
    params: float | None = None,
    params_choices: Sequence[float] | None = None,
    budget: float | None = None,
    tokens_per_step: float | None = None,
) -> pd.DataFrame:
    """The next ``n`` mixtures to train, as a batch (with ``params_choices``: at which sizes).

    Parameters
    ----------
    post : Posterior
        Fitted law.
    n : int
        Batch size K (with a ``budget``: at most K runs).
    step : float
        Training step at which mixtures are judged; with ``params_choices`` also the length of
        every suggested run.
    rule : {"thompson", "info"}, optional
        Acquisition rule (module docstring); default ``thompson``, and ``info`` (the only rule
        that weighs cost) with ``params_choices``.
    candidates : DataFrame, optional
        Wide mixtures (index ``mixture``) to choose from; default the continuous feasible set.
    weights : mapping, optional
        Target weight per evaluated domain; default uniform.
    constraints : Constraints, optional
        Bounds and data limits for the continuous search (candidates are taken as given).
    min_distance : float
        Smallest total-variation distance between two suggestions from the continuous set.
    max_draws : int
        Posterior draws used (a seeded random subset beyond this).
    pool_size : int
        Size of the generated candidate pool of the ``info`` rule on the continuous set; from a
        longer candidate list, the ``info`` rule scores this many (the lowest 10% quantiles of
        ``Lbar``).
    fantasies : int
        Fantasised observations per candidate for the ``info`` rule.
    seed : int
        Seeds draw subsets, draw order, pools and fantasies.
    params : float, optional
        Model size the decision is for, with a fit across sizes (default its largest fitted
        size): the target size.
    params_choices : sequence of float, optional
        Model sizes (parameters) a run may be trained at, for a fit across sizes: each candidate
        is then a (mixture, size) pair, scored by the ``info`` rule's fall in the expected regret
        at the target size per unit of compute (module docstring). Sizes outside the fitted ones
        extrapolate the law's size slopes.
    budget : float, optional
        Compute budget of the batch in FLOPs (with ``params_choices``): greedy, each pick the
        best-scoring run that still fits, until ``n`` runs or none fits.
    tokens_per_step : float, optional
        Training tokens per step, the same at every size (a ladder trained on one token budget
        per run, as RegMix and mixinglaws do); default the median ``tokens / step`` of the fit's
        ``tokens`` column. A run's cost is ``6 * params * tokens_per_step * step`` FLOPs (the
        forward and backward pass; attention and embedding FLOPs are left out).

    Returns
    -------
    pandas.DataFrame
        Index ``mixture`` (``next-1`` ... or the candidates' names), one column per training
        domain, then ``score``, ``expected_loss`` and ``loss_sd`` (posterior mean and sd of ``Lbar``
        at ``step``) and ``rule``; with ``params_choices`` also ``params`` (the size to train
        at) and ``cost`` (FLOPs), ``expected_loss`` and ``loss_sd`` are at the run's own size
        and ``score`` is in nats of target-size regret per run at the smallest choice's cost
        (a candidate listed at two sizes gets ``@SIZE`` after its name).
        :func:`bimix_bayes.mixtures.read_mixtures` skips these annotation columns
        (:data:`bimix_bayes.mixtures.ANNOTATIONS`).

    Raises
    ------
    BimixInputError
        Unknown rule, ``n < 1``, ``n`` above the number of candidates, candidates with unknown or
        missing domains, or a posterior without draws; with sizes: a ``budget`` without
        ``params_choices``, a size that is not a positive number, a fit at one size, the
        ``thompson`` rule, no ``tokens_per_step`` to cost runs with, or a budget below the
        cheapest run; all before any work.
    """
    if budget is not None and params_choices is None:
        raise BimixInputError("a compute budget needs the model sizes to spend it on "
                              "(params_choices; bimix suggest --params-choices)")
    rule = rule if rule is not None else "info" if params_choices is not None else "thompson"
    check_rule(rule)
    if int(n) != n or n < 1:
        raise BimixInputError(f"the batch size must be a positive integer, got {n}")
    if n > MAX_BATCH:
        raise BimixInputError(f"the batch size is at most {MAX_BATCH} mixtures (each is a training "
                              f"run; the search grows with the batch), got {n}")
    if not 0 <= min_distance <= 1:
        raise BimixInputError("min_distance is a total-variation distance in [0, 1], got "
                              f"{min_distance}")
    if candidates is not None:
        candidates = post.mixtures_frame(candidates, source="<candidates>")
        # Across sizes, each listed mixture may be trained once at each size.
        if n > len(candidates) * len(params_choices or [None]):
            raise BimixInputError(f"asked for {n} mixtures but the candidate list holds only "
                                  f"{len(candidates)}")
    constraints = resolve_constraints(post, constraints)
    if params_choices is not None:
        return _suggest_sizes(post, n, step, rule, candidates, weights, constraints,
                              min_distance, max_draws, pool_size, fantasies, seed, params,
                              params_choices, budget, tokens_per_step)
    surface = LossSurface(post, step, weights, max_draws=max_draws, seed=seed, params=params)
    if rule == "info" and surface.n_draws < 2:
        raise BimixInputError("the info rule weighs posterior draws against each other; this "
                              f"posterior ({post.method}) has one draw: use rule='thompson' or a "
                              "Bayesian fit")
    rng = np.random.default_rng(seed)

    if candidates is not None:
        pool = candidates.to_numpy()
        if rule == "thompson":
            picked, score = _thompson_candidates(surface, pool, n, rng)
        else:
            # The info rule's cost is quadratic in the candidates: score the pool_size that could
            # plausibly be best (lowest optimistic, 10% quantile of Lbar), and at least n.
            keep = np.argsort(np.quantile(surface.average(pool), 0.1, axis=0))
            keep = keep[:max(pool_size, n)]
            picked, score = _info(surface, pool[keep], n, fantasies, 0.0, rng)
            picked = keep[picked]
        chosen, names = pool[picked], [str(c) for c in candidates.index[picked]]
    else:
        if rule == "thompson":
            chosen, score = _thompson_continuous(surface, constraints, n, min_distance, rng)
        else:
            pool = _pool(surface, constraints, pool_size, rng)
            picked, score = _info(surface, pool, n, fantasies, min_distance, rng)
            chosen = pool[picked]
        names = [f"next-{i + 1}" for i in range(n)]
    lbar = surface.average(chosen)  # (sample, n)
    out = pd.DataFrame(chosen, columns=surface.sources, index=pd.Index(names, name="mixture"))
    out["score"] = score
    out["expected_loss"] = lbar.mean(axis=0)
    out["loss_sd"] = lbar.std(axis=0)
    out["rule"] = rule
    return out


def run_cost(params: float, step: float, tokens_per_step: float) -> float:
    """FLOPs of training a model of ``params`` parameters for ``step`` steps:
    ``6 * params * tokens_per_step * step`` (see :func:`suggest`).

    Examples
    --------
    >>> f"{run_cost(1e8, 1000, 1e6):.1e}"
    '6.0e+17'
    """
    return FLOPS_PER_PARAM_TOKEN * float(params) * float(tokens_per_step) * float(step)


def _tokens_per_step(post: Posterior, tokens_per_step: float | None) -> float:
    """``tokens_per_step`` as given, or the median ``tokens / step`` of the fit's runs."""
    if tokens_per_step is None:
        frame = post.observations.frame
        if "tokens" not in frame.columns:
            raise BimixInputError("give tokens_per_step (the training tokens per step) to cost "
                                  "runs: the fitted observations have no tokens column")
        ratio = pd.to_numeric(frame["tokens"], errors="coerce") / frame["step"]
        tokens_per_step = float(ratio.median())
    if not (np.isfinite(tokens_per_step) and tokens_per_step > 0):
        raise BimixInputError("tokens per step must be a positive number, got "
                              f"{tokens_per_step}")
    return float(tokens_per_step)


def _suggest_sizes(post: Posterior, n: int, step: float, rule: str,
                   candidates: pd.DataFrame | None, weights: Mapping[str, float] | None,
                   constraints: Constraints, min_distance: float, max_draws: int,
                   pool_size: int, fantasies: int, seed: int, params: float | None,
                   params_choices: Sequence[float], budget: float | None,
                   tokens_per_step: float | None) -> pd.DataFrame:
    """:func:`suggest` across model sizes: (mixture, size) pairs by value of information about
    the target-size optimum per unit of compute."""
    sizes = []
    for value in params_choices:
        try:
            size = float(value)
        except (TypeError, ValueError):
            size = float("nan")
        if not (np.isfinite(size) and size > 0):
            raise BimixInputError(f"a model size to choose must be a positive number of "
                                  f"parameters, got {value!r}")
        sizes.append(size)
    sizes = sorted(set(sizes))  # cheapest first: near-ties in value go to the cheaper run
    if not sizes:
        raise BimixInputError("params_choices is empty: give the model sizes runs may use")
    if not post.has_size_axis:
        seen = (f"runs of one model size ({post.sizes[0]:.3g} parameters)" if post.sizes
                else "runs without a model size (no params column)")
        raise BimixInputError(f"this fit saw {seen}: planning across sizes needs a fit to runs "
                              "at two or more sizes")
    if rule != "info":
        raise BimixInputError("planning across sizes weighs information against cost: use "
                              "rule='info' (the default with params_choices)")
    target = post.target_params(params)
    tokens = _tokens_per_step(post, tokens_per_step)
    costs = np.array([run_cost(size, step, tokens) for size in sizes])
    if budget is not None and not (np.isfinite(budget) and budget >= costs[0]):
        raise BimixInputError(f"the budget ({budget:.3g} FLOPs) is smaller than the cheapest run "
                              f"({costs[0]:.3g} FLOPs: 6 x {sizes[0]:.3g} params x "
                              f"{tokens * step:.3g} tokens)")
    surface = LossSurface(post, step, weights, max_draws=max_draws, seed=seed, params=target)
    if surface.n_draws < 2:
        raise BimixInputError("the info rule weighs posterior draws against each other; this "
                              f"posterior ({post.method}) has one draw: use a Bayesian fit")
    # Same max_draws and seed: the same subset of draws at every size (Draws.subset).
    runs = [LossSurface(post, step, weights, max_draws=max_draws, seed=seed, params=size)
            for size in sizes]
    rng = np.random.default_rng(seed)
    if candidates is not None:
        pool = candidates.to_numpy()
        keep = np.argsort(np.quantile(surface.average(pool), 0.1, axis=0))[:max(pool_size, n)]
        picked, at, score = _info(surface, pool[keep], n, fantasies, 0.0, rng, runs=runs,
                                  costs=costs, budget=budget)
        picked = keep[picked]
        names = [str(c) for c in candidates.index[picked]]
        twice = {m for m in names if names.count(m) > 1}
        names = [f"{m}@{sizes[k]:.3g}" if m in twice else m
                 for m, k in zip(names, at, strict=True)]
    else:
        pool = _pool(surface, constraints, pool_size, rng)
        picked, at, score = _info(surface, pool, n, fantasies, min_distance, rng, runs=runs,
                                  costs=costs, budget=budget)
        names = [f"next-{i + 1}" for i in range(len(picked))]
    chosen = pool[picked]
    # What each run is expected to report: Lbar at its own size.
    lbar = np.stack([runs[k].average(chosen[i]) for i, k in enumerate(at)], axis=1)
    out = pd.DataFrame(chosen, columns=surface.sources, index=pd.Index(names, name="mixture"))
    out["score"] = score
    out["expected_loss"] = lbar.mean(axis=0)
    out["loss_sd"] = lbar.std(axis=0)
    out["rule"] = rule
    out["params"] = np.array(sizes)[at]
    out["cost"] = costs[at]
    return out


def initial_design(corpus: Any, *, design: Callable[[Any], pd.DataFrame] | None = None
                   ) -> pd.DataFrame:
    """Mixtures to train first, when there are no observations to fit (cold start).

    Parameters
    ----------
    corpus : Corpus or path
        The training corpus.
    design : callable, optional
        ``design(corpus) -> wide mixtures``; default
        :func:`bimix_bayes.entropy.entropy_design` (the four entropy mixtures).
    """
    if design is None:
        from bimix_bayes.entropy import entropy_design as design
    if isinstance(corpus, str | os.PathLike) and not os.path.isdir(corpus):
        raise BimixInputError("corpus directory not found", path=corpus)
    return design(corpus)


# ------------------------------------------------------------------------------------- thompson
def _tv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distance between mixtures (broadcasting)."""
    return 0.5 * np.abs(a - b).sum(axis=-1)


def _thompson_continuous(surface: LossSurface, constraints: Constraints, n: int,
                         min_distance: float, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
    optima, _ = surface.draw_optima(constraints)
    order = rng.permutation(len(optima))
    chosen: list[np.ndarray] = []
    distance = min_distance
    while len(chosen) < n and distance > 1e-6:
        for s in order:
            if len(chosen) == n:
                break
            if not chosen or _tv(np.array(chosen), optima[s]).min() >= distance:
                chosen.append(optima[s])
        distance /= 2
    # Draws that agree on one optimum (a point fit): fill the batch with the feasible points
    # farthest from everything chosen, so the batch still explores.
    spare = constraints.sample(512, rng)
    while len(chosen) < n:
        chosen.append(spare[_tv(spare[:, None], np.array(chosen)[None]).min(axis=1).argmax()])
    chosen_arr = np.array(chosen)
    nearest = _tv(optima[:, None], chosen_arr[None]).argmin(axis=1)
    return chosen_arr, np.bincount(nearest, minlength=n) / len(optima)


def _thompson_candidates(surface: LossSurface, pool: np.ndarray, n: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lbar = surface.average(pool)  # (sample, candidate)
    best = lbar.argmin(axis=1)
    p_best = np.bincount(best, minlength=len(pool)) / len(best)
    picked = list(dict.fromkeys(best[rng.permutation(len(best))]))[:n]
    # Fewer distinct winners than n: the likeliest runners-up, then the lowest expected loss.
    for i in np.lexsort((lbar.mean(axis=0), -p_best)):
        if len(picked) == n:
            break
        if i not in picked:
            picked.append(i)
    return np.array(picked), p_best[picked]


# ----------------------------------------------------------------------------------------- info
def _pool(surface: LossSurface, constraints: Constraints, size: int, rng: np.random.Generator
          ) -> np.ndarray:
    """Candidates on the continuous set: half per-draw optima, half spread over the set."""
    optima, _ = surface.draw_optima(constraints)
    half = min(size // 2, len(optima))
    picks = optima[rng.choice(len(optima), size=half, replace=False)]
    return np.concatenate([picks, constraints.project(optima.mean(axis=0))[None],
                           constraints.sample(size - half, rng)])


def _info(surface: LossSurface, pool: np.ndarray, n: int, fantasies: int, min_distance: float,
          rng: np.random.Generator, *, runs: Sequence[LossSurface] | None = None,
          costs: np.ndarray | None = None, budget: float | None = None
          ) -> tuple[np.ndarray, ...]:
    """The greedy ``info`` batch over ``pool`` (module docstring).

    Regret is measured with ``surface`` (the target). With ``runs`` (the surfaces at each size a
    run may use, the same draws in the same order) and their ``costs``, a candidate is a
    (mixture, size) pair whose fantasy is simulated and weighed at its size, scored by the fall
    in regret per cost relative to the cheapest, and picked while it fits ``budget``; then the
    picked mixtures' indices, their sizes' indices and the scores come back, else the indices and
    the scores.
    """
    sized = runs is not None
    runs = [surface] if runs is None else list(runs)
    unit = np.ones(1) if costs is None else np.asarray(costs, float) / np.min(costs)
    log_l = surface.log_losses(pool)  # (sample, candidate, domain)
    lbar = np.exp(log_l) @ surface.weights  # (sample, candidate)
    best = lbar.min(axis=1)  # each draw's best loss in the pool
    # Each size's mean curves; a fantasy at a size is simulated and weighed with these.
    log_runs = [log_l if run is surface else run.log_losses(pool) for run in runs]
    draws, noise = surface.draws, surface.draws.noise
    # A fantasised run is a one-checkpoint curve: (..., step=1, domain) for the noise model.
    against_all = shaped(draws.noise_params, lead=2)  # every draw against each fantasy
    against_one = shaped(draws.noise_params, lead=1)  # every draw against one observation
    s = len(lbar)
    w = np.full(s, 1.0 / s)
    picked: list[int] = []  # candidate j = size index * len(pool) + mixture index
    scores: list[float] = []
    spent = 0.0
    mean_lbar = np.tile(lbar.mean(axis=0), len(runs))
    size_of = np.repeat(np.arange(len(runs)), len(pool))
    for _ in range(n):
        regret_now = (w @ lbar).min() - w @ best
        # Fantasy j: draw a "true" world by its weight and simulate the new run's log-losses.
        truth = rng.choice(s, size=fantasies, p=w)
        deviation = draws.take(truth).noise_sample((fantasies, 1, log_l.shape[-1]), rng)[:, 0]
        gain = np.full(len(runs) * len(pool), -np.inf)
        for k, log_k in enumerate(log_runs):
            same = [j % len(pool) for j in picked if j // len(pool) == k]
            if budget is not None and spent + costs[k] > budget * (1 + 1e-12):
                continue
            for c in range(len(pool)):
                if c in same or (same and _tv(pool[same], pool[c]).min() < min_distance):
                    continue
                y = log_k[truth, c] + deviation  # (fantasy, domain)
                resid = (y[None] - log_k[:, None, c])[:, :, None, :]  # (sample, fantasy, 1, dom.)
                loglik = noise.curve_log_likelihood(against_all, resid, 1.0).sum(-1)
                # Leave the true world out of the reweighting and judge the new recommendation
                # in it: an honest estimate of the regret after the run, which importance
                # weights collapsing onto the truth itself would make look like zero.
                loglik[truth, np.arange(fantasies)] = -np.inf
                post_w = w[:, None] * np.exp(loglik - loglik.max(axis=0))
                post_w /= post_w.sum(axis=0)
                recommended = (post_w.T @ lbar).argmin(axis=1)
                regret_after = lbar[truth, recommended] - best[truth]
                gain[k * len(pool) + c] = regret_now - regret_after.mean()
        if budget is not None and not np.isfinite(gain).any():
            break  # no run fits what is left of the budget
        # Value per unit of compute (relative to the cheapest size). A fall in regret is never
        # negative in expectation: a negative estimate is Monte Carlo noise, and divided by a
        # larger cost it would look better, so across sizes it counts as no value.
        value = gain if costs is None else np.where(
            np.isfinite(gain), np.maximum(gain, 0.0), -np.inf) / unit[size_of]
        # Near-ties in information go to the mixture expected to be best (Monte Carlo noise in
        # the fantasies makes smaller differences meaningless), then to the cheaper size.
        near = value >= value.max() - 0.1 * abs(value.max())
        pick = int(np.flatnonzero(near)[mean_lbar[near].argmin()])
        picked.append(pick)
        scores.append(float(value[pick]))
        k, c = divmod(pick, len(pool))
        if costs is not None:
            spent += costs[k]
        # Kriging believer: condition on the expected observation at the pick.
        y = w @ log_runs[k][:, c]
        loglik = noise.curve_log_likelihood(
            against_one, (y - log_runs[k][:, c])[:, None, :], 1.0).sum(-1)
        w = w * np.exp(loglik - loglik.max())
        w /= w.sum()
    mixtures, at = np.array(picked, dtype=int) % len(pool), np.array(picked, dtype=int) // len(pool)
    if sized:
        return mixtures, at, np.array(scores)
    return mixtures, np.array(scores)
