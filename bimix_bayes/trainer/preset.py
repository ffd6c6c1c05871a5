"""Model presets: TOML files that fix a proxy model's shape and its optimiser, by name or by path.

The presets ship inside the package, in ``bimix_bayes/data/presets/`` (``models/`` in the repository
is a link to that folder): ``demo``, ``tiny`` and ``tiny-wide`` for CPU (``tiny`` -> ``tiny-wide``
is a two-size ladder), ``small``, ``paper-124m`` and ``paper-1b`` for GPUs. :meth:`Preset.load`
takes one of those names (``--model tiny`` on the command line) or the path of any TOML file, from
any directory.

A preset has a top-level ``name`` and two tables::

    name = "tiny"
    [model]                      # the network (vocab_size comes from the corpus)
    n_layer = 2
    n_head = 4
    n_embd = 128
    block_size = 128             # context length in tokens
    [train]                      # the optimisation recipe
    batch_size = 16              # sequences per optimiser step, over all devices
    micro_batch_size = 16        # sequences per forward pass on one device
    lr = 3e-3

Every key is optional except ``model.n_layer``, ``model.n_head``, ``model.n_embd`` and
``model.block_size``; the defaults are the fields of :class:`ModelConfig` and :class:`TrainConfig`.
Unknown keys are errors (a typo must not silently fall back to a default). This module is torch-free.

Examples
--------
>>> preset = Preset.from_dict({"name": "micro", "model": {"n_layer": 1, "n_head": 2, "n_embd": 32,
...                                                       "block_size": 16}})
>>> preset.model.head_dim, preset.train.schedule
(16, 'cosine')
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bimix_bayes.errors import BimixInputError

#: The folder of the presets shipped with the package.
PRESETS_DIR = Path(__file__).resolve().parent.parent / "data" / "presets"
POSITIONS = ("rotary", "learned")
SCHEDULES = ("cosine", "exponential")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the GPT (see :class:`bimix_bayes.trainer.model.GPT`).

    Attributes
    ----------
    n_layer, n_head, n_embd : int
        Transformer blocks, attention heads per block and the residual width.
    block_size : int
        Context length in tokens.
    positions : {"rotary", "learned"}
        Rotary embeddings on queries and keys, or a learned absolute position table (GPT-2).
    mlp_ratio : int
        Hidden width of the MLP as a multiple of ``n_embd``.
    dropout : float
        Dropout on attention and residual branches (0 for the short proxy runs).
    vocab_multiple : int
        The embedding table is padded to a multiple of this (tensor-core friendly shapes); the
        padded ids never occur as targets.
    """

    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    positions: str = "rotary"
    mlp_ratio: int = 4
    dropout: float = 0.0
    vocab_multiple: int = 64

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.n_embd // self.n_head

    @property
    def n_params(self) -> int:
        """The model size: parameters without the token and position tables.

        Per block: attention ``4 d^2``, MLP ``2 mlp_ratio d^2`` and two norm gains ``2 d``; plus
        the final norm. The trainer writes it as the observations' ``params``.

        Examples
        --------
        >>> ModelConfig(n_layer=2, n_head=4, n_embd=128, block_size=128).n_params
        393856
        """
        # Kaplan et al. (2020)'s non-embedding count, not Chinchilla's total: it is a property
        # of the shape alone (the embedding table depends on the corpus's vocabulary), so a
        # preset has one size before any corpus exists and a planner can price it; and at CPU
        # proxy sizes the tied table outweighs the blocks (tiny: 0.39M here, 0.52M more for
        # a 4k vocabulary), so a total count would mostly measure the tokenizer. Kaplan found
        # this count gives one power law across depths and widths. (Published sizes differ:
        # Pythia-style names such as 70M are totals, RegMix's "1M" is non-embedding.)
        d, blocks = self.n_embd, self.n_layer
        return blocks * ((4 + 2 * self.mlp_ratio) * d * d + 2 * d) + d


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe.

    Attributes
    ----------
    batch_size : int
        Sequences per optimiser step over all devices (the mixture quota is drawn per step).
    micro_batch_size : int
        Sequences per forward pass on one device; gradients accumulate over
        ``batch_size / (micro_batch_size * world_size)`` passes.
    lr, min_lr : float
        Peak and final learning rate.
    warmup_fraction : float
        Share of the steps spent in linear warm-up.
    schedule : {"cosine", "exponential"}
        Decay after warm-up: cosine to ``min_lr``, or geometric (the paper's exponential decay).
    weight_decay, beta1, beta2 : float
        AdamW settings; weight decay applies to matrices only.
    grad_clip : float
        Maximum global gradient norm (0 disables clipping).
    eval_sequences : int
        Held-out sequences per domain in each evaluation (fixed: the first ones of ``val.bin``).
    """

    batch_size: int = 16
    micro_batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_fraction: float = 0.05
    schedule: str = "cosine"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_sequences: int = 16


@dataclass(frozen=True)
class Preset:
    """A named model shape plus its training recipe.

    Build one with :meth:`load` (a TOML file) or :meth:`from_dict`; both validate.
    """

    name: str
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Preset:
        """Read and validate a TOML preset, given by name (see :func:`preset_names`) or path.

        A bare name without a ``.toml`` suffix or a folder (``tiny``) is a packaged preset; anything
        else is a path, relative to the working directory.

        Raises
        ------
        BimixInputError
            Naming the file: missing (listing the packaged names), not TOML, unknown keys or
            impossible shapes.

        Examples
        --------
        >>> Preset.load("tiny").model.n_layer
        2
        >>> Preset.load(PRESETS_DIR / "small.toml").name
        'small'
        """
        path = resolve_preset(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BimixInputError(f"not a valid TOML preset ({exc})", path=path) from None
        return cls.from_dict(data, source=str(path), default_name=path.stem)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "<preset>", default_name: str = "preset"
    ) -> Preset:
        """Validate a preset given as nested dicts (the parsed TOML)."""

        def fail(problem: str) -> BimixInputError:
            return BimixInputError(f"model preset: {problem}", path=source)

        unknown = set(data) - {"name", "model", "train"}
        if unknown:
            raise fail(f"unknown top-level key(s) {sorted(unknown)}; expected name, [model], "
                       "[train]")
        if "model" not in data:
            raise fail("missing [model] table")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            raise fail("name must be a non-empty string")
        model = _build(ModelConfig, data["model"], "model", fail)
        train = _build(TrainConfig, data.get("train", {}), "train", fail)
        preset = cls(name.strip(), model, train)
        preset._check(fail)
        return preset

    def to_dict(self) -> dict[str, Any]:
        """The preset as nested dicts (what :meth:`from_dict` reads; stored in checkpoints)."""
        return {"name": self.name, "model": dataclasses.asdict(self.model),
                "train": dataclasses.asdict(self.train)}

    def _check(self, fail: Any) -> None:
        m, t = self.model, self.train
        for key in ("n_layer", "n_head", "n_embd", "block_size", "mlp_ratio", "vocab_multiple"):
            if getattr(m, key) < 1:
                raise fail(f"model.{key} must be >= 1, got {getattr(m, key)}")
        if m.n_embd % m.n_head:
            raise fail(f"model.n_embd ({m.n_embd}) must be divisible by model.n_head "
                       f"({m.n_head})")
        if m.positions not in POSITIONS:
            raise fail(f"model.positions must be one of {POSITIONS}, got {m.positions!r}")
        if m.positions == "rotary" and m.head_dim % 2:
            raise fail(f"rotary positions need an even head width, got n_embd / n_head = "
                       f"{m.head_dim}")
        if not 0 <= m.dropout < 1:
            raise fail(f"model.dropout must be in [0, 1), got {m.dropout}")
        for key in ("batch_size", "micro_batch_size", "eval_sequences"):
            if getattr(t, key) < 1:
                raise fail(f"train.{key} must be >= 1, got {getattr(t, key)}")
        if t.batch_size % t.micro_batch_size:
            raise fail(f"train.batch_size ({t.batch_size}) must be a multiple of "
                       f"train.micro_batch_size ({t.micro_batch_size})")
        if not 0 < t.min_lr <= t.lr:
            raise fail(f"need 0 < train.min_lr <= train.lr, got min_lr={t.min_lr}, lr={t.lr}")
        if not 0 <= t.warmup_fraction < 1:
            raise fail(f"train.warmup_fraction must be in [0, 1), got {t.warmup_fraction}")
        if t.schedule not in SCHEDULES:
            raise fail(f"train.schedule must be one of {SCHEDULES}, got {t.schedule!r}")
        if not (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1):
            raise fail(f"train.beta1 and train.beta2 must be in [0, 1), got {t.beta1}, {t.beta2}")
        if t.weight_decay < 0 or t.grad_clip < 0:
            raise fail("train.weight_decay and train.grad_clip must be >= 0")


def preset_names() -> list[str]:
    """The names of the presets shipped with the package.

    Examples
    --------
    >>> "tiny" in preset_names()
    True
    """
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def resolve_preset(spec: str | os.PathLike[str]) -> Path:
    """The TOML file of a preset name or path (see :meth:`Preset.load`).

    Raises
    ------
    BimixInputError
        Neither a packaged name nor an existing file.
    """
    text = os.fspath(spec)
    path = Path(text)
    is_name = path.suffix != ".toml" and os.sep not in text and "/" not in text
    if is_name and not path.is_file():
        packaged = PRESETS_DIR / f"{text}.toml"
        if packaged.is_file():
            return packaged
        raise BimixInputError(f"unknown model preset {text!r}; the packaged presets are "
                              f"{', '.join(preset_names())}, or give the path of a TOML file")
    if not path.is_file():
        raise BimixInputError(f"model preset not found (packaged presets by name: "
                              f"{', '.join(preset_names())})", path=path)
    return path


#: How far (relative) a requested model size may be from a preset's and still name it: sizes
#: travel through CSV files and command lines as rounded numbers (``1.57e6``).
SIZE_MATCH_RTOL = 0.02


def load_ladder(specs: Sequence[str | os.PathLike[str]]) -> list[Preset]:
    """Presets of a model-size ladder (names or paths), smallest first.

    A study across sizes trains each run at the preset of its size; the sizes are the presets'
    :attr:`ModelConfig.n_params`, so they must differ by more than :data:`SIZE_MATCH_RTOL`.

    Raises
    ------
    BimixInputError
        An unknown preset, or two presets of (nearly) the same size.

    Examples
    --------
    >>> [p.name for p in load_ladder(["tiny-wide", "tiny"])]
    ['tiny', 'tiny-wide']
    """
    presets = sorted((Preset.load(s) for s in specs), key=lambda p: p.model.n_params)
    for small, large in zip(presets, presets[1:], strict=False):
        if large.model.n_params <= small.model.n_params * (1 + SIZE_MATCH_RTOL):
            raise BimixInputError(
                f"presets {small.name!r} and {large.name!r} have the same model size "
                f"({small.model.n_params} and {large.model.n_params} parameters); a size "
                "ladder needs presets of different sizes")
    return presets


def preset_for(presets: Sequence[Preset], params: float) -> Preset:
    """The preset of a ladder whose model size is ``params`` (within :data:`SIZE_MATCH_RTOL`).

    Raises
    ------
    BimixInputError
        No preset of that size (the message lists the ladder's sizes).

    Examples
    --------
    >>> preset_for(load_ladder(["tiny", "tiny-wide"]), 1.57e6).name
    'tiny-wide'
    """
    for preset in presets:
        if abs(preset.model.n_params - params) <= SIZE_MATCH_RTOL * preset.model.n_params:
            return preset
    sizes = ", ".join(f"{p.name} {p.model.n_params}" for p in presets)
    raise BimixInputError(f"no model preset of size {params:.6g} parameters; the presets' sizes "
                          f"are {sizes}")


def _build(kind: type, table: Any, section: str, fail: Any) -> Any:
    """Make a ``kind`` dataclass from a TOML table, checking keys and value types."""
    if not isinstance(table, dict):
        raise fail(f"[{section}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise fail(f"unknown key(s) {', '.join(f'{section}.{k}' for k in unknown)}; known: "
                   f"{', '.join(fields)}")
    missing = [k for k, f in fields.items() if k not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise fail(f"missing key(s) {', '.join(f'{section}.{k}' for k in missing)}")
    values = {}
    for key, value in table.items():
        # Annotations are strings under `from __future__ import annotations`.
        want = {"int": int, "float": float, "str": str}[fields[key].type]
        ok = (isinstance(value, want) and not isinstance(value, bool)) or (
            want is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise fail(f"{section}.{key} must be {fields[key].type}, got {value!r}")
        if want is float and not math.isfinite(value):
            # TOML accepts inf and nan; a run with lr = inf dies at its first step.
            raise fail(f"{section}.{key} must be a finite number, got {value!r}")
        values[key] = want(value)
    return kind(**values)
