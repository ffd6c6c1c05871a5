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

Without observations there is no posterior: :func:`initial_design` gives the first mixtures (by
default the corpus's entropy design, :func:`bimix_bayes.entropy.entropy_design`).

Examples
--------
>>> nxt = suggest(post, n=4, step=5000, rule="thompson")                   # doctest: +SKIP
>>> write_mixtures(nxt, "next.csv")                                        # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
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

def suggest(
    post: Posterior,
    n: int,
    step: float,
    *,
    rule: Rule = "thompson",
    candidates: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
    constraints: Constraints | None = None,
    min_distance: float = 0.05,
    max_draws: int = 1000,
    pool_size: int = 256,
    fantasies: int = 32,
    seed: int = 0,
    params: float | None = None,
) -> pd.DataFrame:
    """The next ``n`` mixtures to train, as a batch.

    Parameters
    ----------
    post : Posterior
        Fitted law.
    n : int
        Batch size K.
    step : float
        Training step at which mixtures are judged.
    rule : {"thompson", "info"}
        Acquisition rule (module docstring).
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
        size).

    Returns
    -------
    pandas.DataFrame
        Index ``mixture`` (``next-1`` ... or the candidates' names), one column per training
        domain, then ``score``, ``expected_loss`` and ``loss_sd`` (posterior mean and sd of ``Lbar``
        at ``step``) and ``rule``; :func:`bimix_bayes.mixtures.read_mixtures` skips the last four.

    Raises
    ------
    BimixInputError
        Unknown rule, ``n < 1``, ``n`` above the number of candidates, candidates with unknown or
        missing domains, or a posterior without draws; all before any work.
    """
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
        if n > len(candidates):
            raise BimixInputError(f"asked for {n} mixtures but the candidate list holds only "
                                  f"{len(candidates)}")
    constraints = resolve_constraints(post, constraints)
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
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    log_l = surface.log_losses(pool)  # (sample, candidate, domain)
    lbar = np.exp(log_l) @ surface.weights  # (sample, candidate)
    best = lbar.min(axis=1)  # each draw's best loss in the pool
    draws, noise = surface.draws, surface.draws.noise
    # A fantasised run is a one-checkpoint curve: (..., step=1, domain) for the noise model.
    against_all = shaped(draws.noise_params, lead=2)  # every draw against each fantasy
    against_one = shaped(draws.noise_params, lead=1)  # every draw against one observation
    s = len(lbar)
    w = np.full(s, 1.0 / s)
    picked: list[int] = []
    scores: list[float] = []
    mean_lbar = lbar.mean(axis=0)
    for _ in range(n):
        regret_now = (w @ lbar).min() - w @ best
        # Fantasy j: draw a "true" world by its weight and simulate the new run's log-losses.
        truth = rng.choice(s, size=fantasies, p=w)
        deviation = draws.take(truth).noise_sample((fantasies, 1, log_l.shape[-1]), rng)[:, 0]
        gain = np.full(len(pool), -np.inf)
        for c in range(len(pool)):
            if c in picked or (picked and _tv(pool[picked], pool[c]).min() < min_distance):
                continue
            y = log_l[truth, c] + deviation  # (fantasy, domain)
            resid = (y[None] - log_l[:, None, c])[:, :, None, :]  # (sample, fantasy, 1, domain)
            loglik = noise.curve_log_likelihood(against_all, resid, 1.0).sum(-1)
            # Leave the true world out of the reweighting and judge the new recommendation in
            # it: an honest estimate of the regret after the run, which importance weights
            # collapsing onto the truth itself would make look like zero.
            loglik[truth, np.arange(fantasies)] = -np.inf
            post_w = w[:, None] * np.exp(loglik - loglik.max(axis=0))
            post_w /= post_w.sum(axis=0)
            recommended = (post_w.T @ lbar).argmin(axis=1)
            regret_after = lbar[truth, recommended] - best[truth]
            gain[c] = regret_now - regret_after.mean()
        # Near-ties in information go to the mixture expected to be best (Monte Carlo noise in
        # the fantasies makes smaller differences meaningless).
        near = gain >= gain.max() - 0.1 * abs(gain.max())
        pick = int(np.flatnonzero(near)[mean_lbar[near].argmin()])
        picked.append(pick)
        scores.append(float(gain[pick]))
        # Kriging believer: condition on the expected observation at the pick.
        y = w @ log_l[:, pick]
        loglik = noise.curve_log_likelihood(
            against_one, (y - log_l[:, pick])[:, None, :], 1.0).sum(-1)
        w = w * np.exp(loglik - loglik.max())
        w /= w.sum()
    return np.array(picked), np.array(scores)
