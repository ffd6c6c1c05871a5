"""The held-out split of the least-squares and Bayesian mixinglaws benchmarks (one definition).

The Data Mixing Laws 3-domain Pile runs (Github, Books3, Pile-CC) at 70M (3 mixtures) and 160M
(6 mixtures), 500 to 60000 steps, and the 2-domain runs (Github, Pile-CC) at 70M and 160M (5
mixtures each, 10000 to 30000 steps). Each fold holds one mixture out (leave-one-mixture-out) and fits
the others on their checkpoints up to ``MAX_FIT_STEP``; it then predicts the held-out mixture at
every checkpoint and the fitted mixtures' checkpoints after ``MAX_FIT_STEP`` (extrapolation in
steps). Checkpoints before ``MIN_STEP`` (learning-rate warm-up) are left out of everything.

:func:`has_data` is the data check the benchmarks on these data share.

Usage from another benchmark in this folder::

    from mixinglaws_split import folds
    for setting, heldout, split in folds(Path("/work/shared/data/mixinglaws")):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bimix_bayes.loaders import load_mixinglaws
from bimix_bayes.metrics import Split, heldout_split
from bimix_bayes.observations import Observations

SETTINGS = {"3Mix-70M": "3Mix/70M.txt", "3Mix-160M": "3Mix/160M.txt",
            "2Mix-70M": "2Mix/70M.txt", "2Mix-160M": "2Mix/160M.txt"}
MIN_STEP = 1000
MAX_FIT_STEP = 30000


def load_setting(data_dir: Path, setting: str) -> Observations:
    """One setting's observations from checkpoint ``MIN_STEP`` on."""
    obs = load_mixinglaws(data_dir / "data" / SETTINGS[setting])
    f = obs.frame
    keep = f["step"].isna() | (f["step"] >= MIN_STEP)
    return Observations.from_frame(f[keep], source=obs.source)


def folds(data_dir: Path) -> Iterator[tuple[str, str, Split]]:
    """``(setting, held-out run, split)`` for every setting and every held-out mixture."""
    for setting in SETTINGS:
        obs = load_setting(data_dir, setting)
        for run in obs.runs:
            yield setting, run, heldout_split(obs, [run], max_fit_step=MAX_FIT_STEP)


def has_data(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds the mixinglaws runs; says so on stdout when it does not."""
    if (data_dir / "data" / "3Mix").is_dir():
        return True
    print(f"{data_dir}: no mixinglaws data (expected data/3Mix/); nothing to benchmark")
    return False

