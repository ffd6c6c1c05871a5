"""Writing a token corpus from per-domain documents, in the format that ``reader`` reads.

The builder splits each domain's documents into training and validation documents, tokenises them,
writes ``NAME/train.bin`` and ``NAME/val.bin`` with an ``eot`` after every document, and records
counts, tokenizer and sha256 checksums in ``manifest.json``. Everything is deterministic (no
timestamps, no absolute paths, a fixed split): the same documents give byte-identical files. The
corpus is built in a temporary directory beside the target and renamed into place, so a killed build
leaves nothing half-written.

Examples
--------
>>> import tempfile
>>> out = build_corpus({"a": ["alpha", "beta", "gamma"]}, tempfile.mkdtemp() + "/corpus")
>>> from bimix_bayes.corpus import Corpus
>>> Corpus.open(out).info("a")["val_documents"]
1
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bimix_bayes.corpus.reader import DTYPE, FORMAT, MANIFEST, SPLITS
from bimix_bayes.corpus.tokenizer import BPETokenizer, ByteTokenizer, TextTokenizer
from bimix_bayes.errors import BimixInputError

DOMAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_BATCH = 256  # documents per tokenizer call: large enough for the BPE's threads, small for memory


def split_documents(docs: Sequence[str], val_every: int = 10) -> dict[str, list[str]]:
    """Split documents into ``train`` and ``val``: every ``val_every``-th one, counted from the end.

    Interleaving (rather than holding out the last 10 %) keeps the validation documents
    representative when a source is ordered (CPython modules alphabetically, novels in order), and
    counting from the end puts the last document in validation even for tiny domains.

    Examples
    --------
    >>> split_documents(list("abcdefghijk"), val_every=5)
    {'train': ['b', 'c', 'd', 'e', 'g', 'h', 'i', 'j'], 'val': ['a', 'f', 'k']}
    """
    n = len(docs)
    is_val = [(n - 1 - i) % val_every == 0 for i in range(n)]
    return {
        "train": [d for d, v in zip(docs, is_val, strict=True) if not v],
        "val": [d for d, v in zip(docs, is_val, strict=True) if v],
    }


def build_corpus(
    domains: Mapping[str, Sequence[str]],
    out: str | os.PathLike[str],
    *,
    tokenizer: str = "byte",
    vocab_size: int = 4096,
    val_every: int = 10,
    provenance: Mapping[str, Mapping[str, str]] | None = None,
    builder: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Tokenise per-domain documents and write a ``bimix-corpus/1`` directory atomically.

    Parameters
    ----------
    domains : mapping of str to sequence of str
        Documents of each domain, in a fixed order. Empty documents are dropped; each domain
        needs at least two non-empty ones (one for training, one for validation).
    out : str or PathLike
        The corpus directory to create.
    tokenizer : {"byte", "bpe"}, default "byte"
        Byte-level ids, or a byte-level BPE trained here on the training documents of all domains.
    vocab_size : int, default 4096
        BPE vocabulary size (ignored for ``"byte"``).
    val_every : int, default 10
        Every ``val_every``-th document (from the end) is held out for validation.
    provenance : mapping, optional
        Per domain, ``{"source": ..., "license": ...}`` for the manifest.
    builder : mapping, optional
        Extra facts about how the documents were made, stored in the manifest's ``builder``.
    overwrite : bool, default False
        Replace an existing non-empty ``out``; without it such an ``out`` is an error.
    log : callable, optional
        Called with one line per step, for progress.

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    say = log or (lambda _msg: None)
    if tokenizer not in ("byte", "bpe"):
        raise BimixInputError(f"tokenizer must be 'byte' or 'bpe', got {tokenizer!r}")
    if val_every < 2:
        raise BimixInputError(f"val_every must be at least 2, got {val_every}")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise BimixInputError("output already exists; choose a new directory or replace it "
                              "(--force, or overwrite=True)",
                              path=out)
    if not domains:
        raise BimixInputError("no domains to build")
    splits: dict[str, dict[str, list[str]]] = {}
    for name, docs in domains.items():
        if not DOMAIN_NAME.match(name):
            raise BimixInputError(f"bad domain name {name!r}: use letters, digits, '_', '-', '.'")
        kept = [d for d in docs if d.strip()]
        if len(kept) < 2:
            raise BimixInputError(f"domain {name!r} needs at least 2 non-empty documents, "
                                  f"got {len(kept)}")
        splits[name] = split_documents(kept, val_every)

    tok: TextTokenizer
    if tokenizer == "bpe":
        say(f"training a byte-level BPE with {vocab_size} ids on the training documents")
        tok = BPETokenizer.train(
            (d for parts in splits.values() for d in parts["train"]), vocab_size=vocab_size
        )
    else:
        tok = ByteTokenizer()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the corpus gets a normal directory mode
    try:
        entries = {}
        for name, parts in splits.items():
            (tmp / name).mkdir()
            entry: dict[str, Any] = {}
            sha: dict[str, str] = {}
            for split in SPLITS:
                count, sha[split] = _write_shard(tmp / name / f"{split}.bin", parts[split], tok)
                entry[f"{split}_tokens"] = count
                entry[f"{split}_documents"] = len(parts[split])
            meta = (provenance or {}).get(name, {})
            entry.update(sha256=sha, source=meta.get("source", "unknown"),
                         license=meta.get("license", "unknown"))
            entries[name] = entry
            say(f"{name}: {entry['train_documents']} + {entry['val_documents']} documents, "
                f"{entry['train_tokens']:,} + {entry['val_tokens']:,} tokens (train + val)")
        if isinstance(tok, BPETokenizer):
            tok.save(tmp / BPETokenizer.FILE)
        manifest = {
            "format": FORMAT,
            "tokenizer": tok.manifest_entry(),
            "dtype": "uint16",
            "domains": entries,
            "builder": {
                "split": f"every {val_every}th document from the end is validation",
                "val_every": val_every,
                **({"bpe_vocab_size": vocab_size} if tokenizer == "bpe" else {}),
                **(builder or {}),
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        _move_into_place(tmp, out, overwrite=overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_shard(path: Path, docs: Sequence[str], tok: TextTokenizer) -> tuple[int, str]:
    """Write ``docs`` as ids with ``eot`` after each; return the token count and sha256."""
    digest = hashlib.sha256()
    count = 0
    eot = DTYPE.type(tok.eot).tobytes()
    with open(path, "wb") as fh:
        for start in range(0, len(docs), _BATCH):
            for ids in tok.encode_batch(docs[start : start + _BATCH]):
                data = ids.astype(DTYPE, copy=False).tobytes() + eot
                fh.write(data)
                digest.update(data)
                count += ids.size + 1
    return count, digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _move_into_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    """Rename the finished ``tmp`` to ``out``; an old ``out`` is moved aside first, then deleted."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():
        if not overwrite:  # appeared while we were building
            raise BimixInputError("output appeared during the build; not replacing it", path=out)
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
