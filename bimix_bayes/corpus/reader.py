"""Reading a token corpus: the on-disk format shared by the builder, trainer and entropy proxies.

A corpus is a directory::

    DIR/manifest.json          format, tokenizer, dtype and per-domain counts and checksums
    DIR/tokenizer.json         the BPE tokenizer (absent for the byte-level tokenizer)
    DIR/NAME/train.bin         flat little-endian uint16 token ids; every document ends with ``eot``
    DIR/NAME/val.bin           the held-out documents of the domain, same layout

This module is torch-free and cheap to import: the CLI and the entropy proxies read corpora without
torch. :func:`bimix_bayes.corpus.build_corpus` writes what this module reads.

Examples
--------
>>> import tempfile
>>> from bimix_bayes.corpus import build_corpus
>>> path = build_corpus({"a": ["one doc", "two"], "b": ["x", "y", "z"]}, tempfile.mkdtemp() + "/c")
>>> corpus = Corpus.open(path)
>>> corpus.domains, corpus.eot
(['a', 'b'], 256)
>>> [corpus.decode(doc) for doc in corpus.documents("a")]
['one doc']
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bimix_bayes.corpus.tokenizer import TextTokenizer, load_tokenizer
from bimix_bayes.errors import BimixInputError

FORMAT = "bimix-corpus/1"
DTYPE = np.dtype("<u2")
SPLITS = ("train", "val")
MANIFEST = "manifest.json"
TOKENIZER_KINDS = ("byte", "bpe")
_COUNT_FIELDS = ("train_tokens", "val_tokens", "train_documents", "val_documents")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks so that large shards need no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Corpus:
    """A validated token corpus on disk.

    Open one with :meth:`open`; the constructor itself does not validate.

    Attributes
    ----------
    path : Path
        The corpus directory.
    manifest : dict
        The parsed ``manifest.json``.
    """

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: bool = True) -> Corpus:
        """Open and validate a corpus directory.

        Parameters
        ----------
        path : str or PathLike
            The directory holding ``manifest.json``.
        verify : bool, default True
            Also recompute every shard's sha256, compare it with the manifest and check that every
            token id is below the vocabulary size. This reads all shards (about 0.2 s for the
            78 MB default corpus), once per process: the result is cached by path, size and
            modification time. The trainer's run fingerprint uses the manifest's checksums, so
            they must be the files' own.

        Raises
        ------
        BimixInputError
            Naming the file and the problem: a missing directory, manifest or shard, a manifest that
            is not valid JSON or not in the ``bimix-corpus/1`` format, a shard whose size disagrees
            with its token count, or (with ``verify``) a checksum mismatch or a token id outside
            the vocabulary.

        Examples
        --------
        >>> Corpus.open("/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        bimix_bayes.errors.BimixInputError: /nonexistent: corpus directory not found; ...
        """
        root = Path(path)
        if not root.is_dir():
            raise BimixInputError(
                "corpus directory not found; build one with "
                "`bimix corpus build --embedded --out DIR`",
                path=root,
            )
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise BimixInputError("corpus manifest not found", path=manifest_path)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BimixInputError(
                f"corpus manifest is not valid JSON ({exc})", path=manifest_path
            ) from None
        _validate_manifest(manifest, manifest_path)
        corpus = cls(root, manifest)
        corpus._check_shards(verify=verify)
        return corpus

    # ------------------------------------------------------------------------------ properties
    @property
    def domains(self) -> list[str]:
        """Domain names, in manifest order."""
        return list(self.manifest["domains"])

    @property
    def tokenizer(self) -> dict[str, Any]:
        """The manifest's tokenizer entry: ``kind``, ``vocab_size``, ``eot`` and ``file``."""
        return dict(self.manifest["tokenizer"])

    @property
    def vocab_size(self) -> int:
        """Number of token ids (ids are ``0 .. vocab_size - 1``)."""
        return int(self.manifest["tokenizer"]["vocab_size"])

    @property
    def eot(self) -> int:
        """The end-of-text id that terminates every document."""
        return int(self.manifest["tokenizer"]["eot"])

    def info(self, domain: str) -> dict[str, Any]:
        """The manifest entry of one domain (counts, checksums, source, licence)."""
        self._check_domain(domain)
        return dict(self.manifest["domains"][domain])

    def shard_path(self, domain: str, split: str = "train") -> Path:
        """Path of a domain's ``train.bin`` or ``val.bin``."""
        self._check_domain(domain)
        if split not in SPLITS:
            raise BimixInputError(f"split must be one of {SPLITS}, got {split!r}")
        return self.path / domain / f"{split}.bin"

    # -------------------------------------------------------------------------------- reading
    def tokens(self, domain: str, split: str = "train") -> np.memmap:
        """All token ids of a domain's split, memory-mapped read-only (nothing is loaded).

        Examples
        --------
        >>> import tempfile
        >>> from bimix_bayes.corpus import build_corpus
        >>> c = Corpus.open(build_corpus({"a": ["ab", "c"]}, tempfile.mkdtemp() + "/c"))
        >>> c.tokens("a", "train").tolist()
        [97, 98, 256]
        """
        return np.memmap(self.shard_path(domain, split), dtype=DTYPE, mode="r")

    def documents(self, domain: str, split: str = "train") -> Iterator[np.ndarray]:
        """Yield a domain's documents as uint16 arrays, split at ``eot`` (which is left out)."""
        tokens = self.tokens(domain, split)
        start = 0
        for end in np.flatnonzero(tokens == self.eot):
            yield tokens[start:end]
            start = int(end) + 1

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """Turn token ids back into text with the corpus tokenizer (``eot`` ids are dropped)."""
        return self._text_tokenizer.decode(ids)

    @functools.cached_property
    def _text_tokenizer(self) -> TextTokenizer:
        # loaded once per Corpus: a BPE file takes milliseconds to parse
        return load_tokenizer(self.tokenizer, self.path)

    # ----------------------------------------------------------------------------- validation
    def verify(self) -> None:
        """Check every shard's checksum and token range (cached per process; see :meth:`open`).

        Raises
        ------
        BimixInputError
            Naming the shard that is missing, resized, modified or holds an id outside the
            vocabulary.
        """
        self._check_shards(verify=True)

    def _check_domain(self, domain: str) -> None:
        if domain not in self.manifest["domains"]:
            raise BimixInputError(
                f"unknown domain {domain!r}; the corpus has {self.domains}",
                path=self.path / MANIFEST,
            )

    def _check_shards(self, *, verify: bool) -> None:
        tok = self.manifest["tokenizer"]
        if tok["file"] is not None and not (self.path / tok["file"]).is_file():
            raise BimixInputError("tokenizer file listed in the manifest is missing",
                                  path=self.path / tok["file"])
        for name, entry in self.manifest["domains"].items():
            for split in SPLITS:
                shard = self.path / name / f"{split}.bin"
                if not shard.is_file():
                    raise BimixInputError("corpus shard is missing", path=shard)
                expected = entry[f"{split}_tokens"] * DTYPE.itemsize
                size = shard.stat().st_size
                if size != expected:
                    raise BimixInputError(
                        f"corpus shard has {size} bytes, the manifest says "
                        f"{entry[f'{split}_tokens']} tokens ({expected} bytes)",
                        path=shard,
                    )
                if verify:
                    _verify_shard(shard, entry["sha256"][split], self.vocab_size)


def _verify_shard(shard: Path, sha256: str, vocab_size: int) -> None:
    """Check a shard's checksum and token range, at most once per (path, size, mtime) and process."""
    stat = shard.stat()
    key = (str(shard.resolve()), stat.st_size, stat.st_mtime_ns, sha256, vocab_size)
    if key in _VERIFIED:
        return
    if sha256_file(shard) != sha256:
        raise BimixInputError(
            "corpus shard checksum does not match the manifest (corrupt or modified)", path=shard)
    tokens = np.memmap(shard, dtype=DTYPE, mode="r")
    top = int(tokens.max()) if len(tokens) else 0
    if top >= vocab_size:
        i = int(np.argmax(tokens >= vocab_size))
        raise BimixInputError(f"corpus shard holds token id {int(tokens[i])} at position {i}, "
                              f"outside the vocabulary of {vocab_size} ids", path=shard)
    _VERIFIED.add(key)


#: Shards already verified in this process (see :func:`_verify_shard`).
_VERIFIED: set[tuple[str, int, int, str, int]] = set()


def _validate_manifest(manifest: Any, path: Path) -> None:
    """Raise BimixInputError for the first way ``manifest`` departs from ``bimix-corpus/1``."""

    def fail(problem: str) -> BimixInputError:
        return BimixInputError(f"corpus manifest: {problem}", path=path)

    if not isinstance(manifest, dict):
        raise fail("expected a JSON object")
    if manifest.get("format") != FORMAT:
        raise fail(f"format must be {FORMAT!r}, got {manifest.get('format')!r}")
    if manifest.get("dtype") != "uint16":
        raise fail(f"dtype must be 'uint16', got {manifest.get('dtype')!r}")
    tok = manifest.get("tokenizer")
    if not isinstance(tok, dict):
        raise fail("'tokenizer' must be an object")
    if tok.get("kind") not in TOKENIZER_KINDS:
        raise fail(f"tokenizer kind must be one of {TOKENIZER_KINDS}, got {tok.get('kind')!r}")
    for key in ("vocab_size", "eot"):
        if not _is_int(tok.get(key)):
            raise fail(f"tokenizer {key} must be an integer, got {tok.get(key)!r}")
    if not 0 < tok["vocab_size"] <= 1 << 16 or not 0 <= tok["eot"] < tok["vocab_size"]:
        raise fail(f"need 0 <= eot < vocab_size <= 65536, got eot={tok['eot']}, "
                   f"vocab_size={tok['vocab_size']}")
    if not (tok.get("file") is None or isinstance(tok.get("file"), str)):
        raise fail("tokenizer file must be a file name or null")
    if tok["kind"] == "bpe" and tok.get("file") is None:
        raise fail("a bpe tokenizer needs its file")
    domains = manifest.get("domains")
    if not isinstance(domains, dict) or not domains:
        raise fail("'domains' must be a non-empty object")
    for name, entry in domains.items():
        if not name or "/" in name or name.startswith("."):
            raise fail(f"bad domain name {name!r}")
        if not isinstance(entry, dict):
            raise fail(f"domain {name!r} must be an object")
        for key in _COUNT_FIELDS:
            if not _is_int(entry.get(key)) or entry[key] <= 0:
                raise fail(f"domain {name!r}: {key} must be a positive integer, "
                           f"got {entry.get(key)!r}")
        sha = entry.get("sha256")
        if not isinstance(sha, dict) or not all(
            isinstance(sha.get(s), str) and len(sha[s]) == 64 for s in SPLITS
        ):
            raise fail(f"domain {name!r}: sha256 must hold hex digests for {SPLITS}")
        for key in ("source", "license"):
            if not isinstance(entry.get(key), str):
                raise fail(f"domain {name!r}: {key} must be a string")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
