"""GPT proxy models trained on data mixtures, producing the observations the Bayesian model fits.

Importing this subpackage imports torch; nothing outside it does at module level.

- :class:`Preset` (:mod:`~bimix_bayes.trainer.preset`): a TOML model shape plus optimiser recipe
  (``models/*.toml``).
- :class:`GPT` (:mod:`~bimix_bayes.trainer.model`): the compact pre-norm transformer.
- :class:`MixtureSampler` (:mod:`~bimix_bayes.trainer.sampling`): stratified per-step domain quotas.
- :func:`train` (:mod:`~bimix_bayes.trainer.loop`): runs per mixture and seed, per-domain evaluation
  rows appended as they come, atomic checkpoints, resume after a crash, DDP under ``torchrun``.

Examples
--------
>>> from bimix_bayes.trainer import Preset
>>> Preset.load("models/tiny.toml").name  # doctest: +SKIP
'tiny'

Several GPUs (see :mod:`bimix_bayes.trainer.loop`)::

    torchrun --nproc_per_node=8 -m bimix_bayes.cli train --mixtures mix.csv \\
        --model models/paper-124m.toml --steps 20000 --corpus corpus --out obs.csv \\
        --distribute data        # or: --distribute mixtures (one run per GPU)
"""

from bimix_bayes.trainer.loop import eval_schedule, lr_at, train
from bimix_bayes.trainer.model import GPT
from bimix_bayes.trainer.preset import ModelConfig, Preset, TrainConfig
from bimix_bayes.trainer.sampling import MixtureSampler

__all__ = ["GPT", "MixtureSampler", "ModelConfig", "Preset", "TrainConfig", "eval_schedule",
           "lr_at", "train"]
