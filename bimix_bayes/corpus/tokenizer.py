"""Offline tokenizers: byte-level (no files) and a BPE trained locally with ``tokenizers``.

Both map text to ids below 65536 (the corpus stores uint16) and reserve one end-of-text id ``eot``
that the corpus appends to every document. The byte-level tokenizer is the default: ids 0..255 are
the UTF-8 bytes and ``eot`` is 256. The BPE is a byte-level BPE (lossless on any text) whose
``<|endoftext|>`` special token is the ``eot``; it is trained on the corpus's own training split, so
nothing is downloaded.

Examples
--------
>>> tok = ByteTokenizer()
>>> tok.encode("hé")
[104, 195, 169]
>>> tok.decode([104, 195, 169, tok.eot])
'hé'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bimix_bayes.errors import BimixInputError

EOT_TEXT = "<|endoftext|>"
MAX_VOCAB = 1 << 16  # ids are stored as uint16


class TextTokenizer(Protocol):
    """What the corpus builder and reader need from a tokenizer."""

    eot: int
    vocab_size: int

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def manifest_entry(self) -> dict[str, Any]: ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, ``eot`` = 256, ``vocab_size`` = 257."""

    eot = 256
    vocab_size = 257

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no ``eot``)."""
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text as uint16 arrays (no ``eot``)."""
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.uint16) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; ``eot`` ids are dropped, broken UTF-8 becomes U+FFFD."""
        data = bytes(int(i) for i in ids if int(i) != self.eot)
        return data.decode("utf-8", errors="replace")

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's ``tokenizer`` object."""
        return {"kind": "byte", "vocab_size": self.vocab_size, "eot": self.eot, "file": None}


class BPETokenizer:
    """A byte-level BPE from the ``tokenizers`` library, with ``<|endoftext|>`` as ``eot``.

    Build one with :meth:`train` or :meth:`load`.

    Examples
    --------
    >>> tok = BPETokenizer.train(["the cat sat on the mat"] * 50, vocab_size=300)
    >>> tok.decode(tok.encode_batch(["the mat sat"])[0])
    'the mat sat'
    """

    FILE = "tokenizer.json"

    def __init__(self, tokenizer: Any) -> None:
        # Text that happens to contain "<|endoftext|>" must stay text: only the builder writes eot.
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer
        self.eot = int(tokenizer.token_to_id(EOT_TEXT))
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4096) -> BPETokenizer:
        """Train a byte-level BPE on ``texts``; the same texts in the same order give the same BPE.

        Parameters
        ----------
        texts : iterable of str
            Training documents.
        vocab_size : int, default 4096
            Total ids including the 256 byte symbols and ``eot``; at most 65536.
        """
        Tokenizer, decoders, models, pre_tokenizers, trainers = _tokenizers(
            "Tokenizer", "decoders", "models", "pre_tokenizers", "trainers"
        )
        if not 258 <= vocab_size <= MAX_VOCAB:
            raise BimixInputError(f"BPE vocab size must be in 258..{MAX_VOCAB}, got {vocab_size}")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT_TEXT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Load a tokenizer saved by :meth:`save`."""
        (Tokenizer,) = _tokenizers("Tokenizer")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust library raises a bare Exception on bad files
            raise BimixInputError(f"not a readable tokenizer file ({exc})", path=path) from None
        if tokenizer.token_to_id(EOT_TEXT) is None:
            raise BimixInputError(f"tokenizer has no {EOT_TEXT} token", path=path)
        return cls(tokenizer)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer as ``tokenizer.json`` text."""
        Path(path).write_text(self._tok.to_str(), encoding="utf-8")

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text as uint16 arrays (no ``eot``)."""
        encoded = self._tok.encode_batch_fast(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.uint16) for e in encoded]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; ``eot`` ids are dropped."""
        return self._tok.decode([int(i) for i in ids if int(i) != self.eot])

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's ``tokenizer`` object."""
        return {"kind": "bpe", "vocab_size": self.vocab_size, "eot": self.eot, "file": self.FILE}


def _tokenizers(*names: str) -> tuple[Any, ...]:
    """Attributes of the optional ``tokenizers`` package, or a clear error when it is missing."""
    try:
        import tokenizers
    except ImportError:
        raise BimixInputError(
            "the BPE tokenizer needs the 'tokenizers' package: pip install 'bimix-bayes[train]'"
        ) from None
    return tuple(getattr(tokenizers, n) for n in names)


def load_tokenizer(entry: dict[str, Any], root: str | os.PathLike[str]) -> TextTokenizer:
    """The tokenizer described by a manifest ``tokenizer`` entry of the corpus at ``root``."""
    if entry["kind"] == "byte":
        return ByteTokenizer()
    return BPETokenizer.load(Path(root) / entry["file"])
