"""GPT proxy models trained on data mixtures, producing the observations the Bayesian model fits.

torch is imported lazily: ``from bimix_bayes.trainer import Preset`` (and so ``bimix --help``, or
reading a preset) does not import it; the first use of :func:`train`, :class:`GPT` or
:class:`MixtureSampler` does (PEP 562 module ``__getattr__``).

- :class:`Preset` (:mod:`~bimix_bayes.trainer.preset`): a TOML model shape plus optimiser recipe,
  by name (``tiny``, the presets shipped in ``bimix_bayes/data/presets/``) or by path.
- :class:`GPT` (:mod:`~bimix_bayes.trainer.model`): the compact pre-norm transformer.
- :class:`MixtureSampler` (:mod:`~bimix_bayes.trainer.sampling`): stratified per-step domain quotas.
- :func:`train` (:mod:`~bimix_bayes.trainer.loop`): runs per mixture and seed, per-domain evaluation
  rows appended as they come, atomic checkpoints, resume after a crash, DDP under ``torchrun``;
  :func:`train_at_sizes` trains each mixture at the preset of its model size (a size ladder).

Examples
--------
>>> from bimix_bayes.trainer import Preset
>>> Preset.load("tiny").model.n_layer
2

Several GPUs (see :mod:`bimix_bayes.trainer.loop`)::

    torchrun --nproc_per_node=8 -m bimix_bayes.cli train --mixtures mix.csv \\
        --model paper-124m --steps 20000 --corpus corpus --out obs.csv \\
        --distribute data        # or: --distribute mixtures (one run per GPU)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bimix_bayes.trainer.preset import ModelConfig, Preset, TrainConfig

if TYPE_CHECKING:
    from bimix_bayes.trainer.loop import eval_schedule, lr_at, train, train_at_sizes
    from bimix_bayes.trainer.model import GPT
    from bimix_bayes.trainer.sampling import MixtureSampler

#: The names that need torch, and the module each lives in (imported on first access).
_LAZY = {"train": "loop", "train_at_sizes": "loop", "eval_schedule": "loop", "lr_at": "loop",
         "GPT": "model", "MixtureSampler": "sampling"}

__all__ = ["GPT", "MixtureSampler", "ModelConfig", "Preset", "TrainConfig", "eval_schedule",
           "lr_at", "train", "train_at_sizes"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
