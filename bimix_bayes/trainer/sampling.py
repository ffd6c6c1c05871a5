"""Stratified mixture sampling: which domain each training sequence of a step comes from, and where.

Each optimiser step draws ``batch_size`` sequences. The number per domain is the step's quota
``batch_size * p`` plus the deficit carried from earlier steps, rounded by largest remainder, so the
cumulative count of every domain stays within one sequence of its exact share at every step (a
proportion of 0.01 with 16 sequences per step gets one sequence every ~6 steps, not a coin flip).
Window starts are uniform within each domain's training tokens, drawn from a generator seeded by
``(seed, step)``: the batch at step ``t`` depends only on the seed, the step and the carried deficit,
which :meth:`MixtureSampler.state_dict` saves for resuming. The module is torch-free.

Examples
--------
>>> import numpy as np
>>> sampler = MixtureSampler([0.7, 0.25, 0.05], batch_size=8, seed=0)
>>> counts = np.sum([sampler.next_quota() for _ in range(10)], axis=0)
>>> counts.tolist(), (80 * np.array([0.7, 0.25, 0.05])).tolist()
([56, 20, 4], [56.0, 20.0, 4.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class MixtureSampler:
    """Per-step domain quotas and window positions for one training run.

    Parameters
    ----------
    proportions : sequence of float
        The mixture, one proportion per domain (non-negative, summing to 1).
    batch_size : int
        Sequences per step over all devices.
    seed : int
        Seeds the window positions (with the step number).
    """

    def __init__(self, proportions: Sequence[float], batch_size: int, seed: int) -> None:
        self.proportions = np.asarray(proportions, dtype=float)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.step = 0
        self.deficit = np.zeros(len(self.proportions))

    def next_quota(self) -> np.ndarray:
        """Sequences per domain for the next step (sums to ``batch_size``); advances the state."""
        target = self.batch_size * self.proportions + self.deficit
        quota = np.floor(np.maximum(target, 0.0)).astype(np.int64)
        spare = self.batch_size - int(quota.sum())
        if spare > 0:
            # Largest remainder among the domains in the mixture; ties go to the earlier domain.
            remainder = np.where(self.proportions > 0, target - quota, -np.inf)
            quota[np.argsort(-remainder, kind="stable")[:spare]] += 1
        self.deficit = target - quota
        self.step += 1
        return quota

    def next_batch(self, tokens: Sequence[np.ndarray], block_size: int) -> np.ndarray:
        """The next step's windows: an int64 array ``(batch_size, block_size + 1)``.

        Rows are grouped by domain in domain order; each row holds inputs ``[:-1]`` and targets
        ``[1:]``. ``tokens`` holds each domain's training tokens (memory maps are fine).
        """
        step = self.step
        quota = self.next_quota()
        rng = np.random.default_rng([self.seed, step])
        rows = []
        for n, toks in zip(quota, tokens, strict=True):
            if n:
                starts = rng.integers(0, len(toks) - block_size, size=n)
                rows.extend(np.asarray(toks[s:s + block_size + 1], dtype=np.int64) for s in starts)
        return np.stack(rows)

    def state_dict(self) -> dict[str, Any]:
        """The position in the data stream (plain Python values, safe for ``torch.load``)."""
        return {"step": self.step, "deficit": self.deficit.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.step = int(state["step"])
        self.deficit = np.asarray(state["deficit"], dtype=float)
