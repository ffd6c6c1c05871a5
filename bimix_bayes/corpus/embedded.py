"""The small corpus slice committed in the package: building a corpus from it, and making it.

The slice (``bimix_bayes/data/corpus``) holds excerpts of the permissively licensed default domains
(about 60 KB of text each, gzip-compressed JSON lists of documents), ``slice.json`` naming their
sources and licences, and a ``NOTICE`` with the licence texts. It lets the demo and the tests train on
real text on a fresh clone, offline, with no apt or pip step. ``scripts/make-corpus-slice`` makes it
from the full sources with :func:`make_slice`.

Examples
--------
>>> import tempfile
>>> from bimix_bayes.corpus import Corpus
>>> corpus = Corpus.open(build_embedded_corpus(tempfile.mkdtemp() + "/corpus"))
>>> len(corpus.domains) >= 4
True
"""

from __future__ import annotations

import gzip
import json
import math
import os
import zipfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from bimix_bayes.corpus.build import build_corpus
from bimix_bayes.corpus.sources import (
    CHITCHAT_WHEEL,
    SOURCES,
    Locations,
    extract_documents,
)
from bimix_bayes.errors import BimixInputError

SLICE_INDEX = "slice.json"
# Licence files copied into NOTICE, per embeddable domain: system paths, or "WHEEL!MEMBER".
_LICENCE_FILES = {
    "code": "/usr/lib/python3.11/LICENSE.txt",
    "docs": "/usr/lib/python3.11/LICENSE.txt",
    "prose": "/usr/share/doc/r-cran-janeaustenr/copyright",
    "dialogue": f"{CHITCHAT_WHEEL}!chitchat_dataset-0.9.0.dist-info/LICENSE",
    "math_formal": "/usr/share/doc/metamath-databases/copyright",
    "scripture": "/usr/share/doc/sword-text-web/copyright",
}


def slice_dir() -> Path:
    """The directory of the committed slice inside the installed package."""
    return Path(str(resources.files("bimix_bayes") / "data" / "corpus"))


def embedded_documents(
    directory: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """Documents and provenance of the committed slice (or of a slice in ``directory``)."""
    root = Path(directory) if directory is not None else slice_dir()
    index_path = root / SLICE_INDEX
    if not index_path.is_file():
        raise BimixInputError("embedded corpus slice is missing; reinstall bimix-bayes",
                              path=index_path)
    index = json.loads(index_path.read_text(encoding="utf-8"))
    documents, provenance = {}, {}
    for name, entry in index["domains"].items():
        with gzip.open(root / entry["file"], "rt", encoding="utf-8") as fh:
            documents[name] = json.load(fh)
        provenance[name] = {"source": entry["source"], "license": entry["license"]}
    return documents, provenance


def build_embedded_corpus(out: str | os.PathLike[str], **options: Any) -> Path:
    """Build a corpus from the committed slice: offline, in seconds.

    Parameters
    ----------
    out : str or PathLike
        The corpus directory to create.
    **options
        Passed to :func:`~bimix_bayes.corpus.build_corpus` (``tokenizer``, ``vocab_size``,
        ``overwrite``, ``log``, ...).
    """
    documents, provenance = embedded_documents()
    return build_corpus(documents, out, provenance=provenance,
                        builder={"documents": "embedded slice (bimix_bayes/data/corpus)"},
                        **options)


def excerpt(docs: Sequence[str], budget: int = 60_000, max_doc: int = 3_000) -> list[str]:
    """Evenly spaced documents, each cut to ``max_doc`` UTF-8 bytes at a line end, about ``budget``.

    Examples
    --------
    >>> excerpt([f"line {i}" for i in range(100)], budget=30, max_doc=10)
    ['line 10', 'line 30', 'line 50', 'line 70', 'line 90']
    """
    cut = [_head(d, max_doc) for d in docs]
    # Skip near-empty documents (title pages, stubs) when there are enough substantial ones.
    sizes = [len(c.encode("utf-8")) for c in cut]
    big = [c for c, size in zip(cut, sizes, strict=True) if size >= max_doc // 3]
    pool = big if sum(len(c.encode("utf-8")) for c in big) >= budget else cut
    mean = sum(len(c.encode("utf-8")) for c in pool) / max(len(pool), 1)
    n = min(len(pool), max(1, math.ceil(budget / max(mean, 1))))
    picks = [pool[int((k + 0.5) * len(pool) / n)] for k in range(n)]
    return [p for p in picks if p.strip()]


def _head(text: str, limit: int) -> str:
    """The longest run of whole lines of ``text`` within ``limit`` UTF-8 bytes (one line at least)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    end = data.rfind(b"\n", 0, limit)
    head = data[:end] if end > 0 else data[:limit]
    return head.decode("utf-8", errors="ignore")


def make_slice(
    out: str | os.PathLike[str],
    *,
    locations: Locations | None = None,
    budget: int = 60_000,
    max_doc: int = 3_000,
    log: Callable[[str], None] | None = None,
) -> None:
    """Write the committed slice from the installed full sources (permissive domains only).

    Writes ``NAME.json.gz`` (deterministic gzip) per domain, ``slice.json`` and ``NOTICE``.
    """
    loc = locations or Locations()
    names = [n for n, s in SOURCES.items() if s.embeddable]
    documents, provenance = extract_documents(names, loc, log)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"budget_bytes": budget, "max_document_bytes": max_doc, "domains": {}}
    for name in names:
        docs = excerpt(documents[name], budget, max_doc)
        payload = json.dumps(docs, ensure_ascii=False, indent=0).encode("utf-8")
        # mtime=0 and no file name keep the gzip bytes identical from run to run
        with open(root / f"{name}.json.gz", "wb") as raw, gzip.GzipFile(
            fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=9
        ) as fh:
            fh.write(payload)
        index["domains"][name] = {
            "file": f"{name}.json.gz",
            "documents": len(docs),
            "bytes": sum(len(d.encode("utf-8")) for d in docs),
            "source": f"excerpts (evenly spaced documents, each cut to {max_doc} bytes) of: "
            + provenance[name]["source"],
            "license": provenance[name]["license"],
        }
        if log:
            log(f"{name}: {len(docs)} excerpts, {index['domains'][name]['bytes']:,} bytes")
    (root / SLICE_INDEX).write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    (root / "NOTICE").write_text(_notice(index["domains"], loc), encoding="utf-8")


def _notice(domains: dict[str, dict[str, Any]], loc: Locations) -> str:
    lines = [
        "The corpus slice in this directory holds short excerpts of the texts below, made by",
        "scripts/make-corpus-slice. Each keeps its own licence; the licence files follow.",
        "",
    ]
    for name, entry in domains.items():
        lines += [f"{name}.json.gz", f"    source:  {entry['source']}",
                  f"    licence: {entry['license']}", ""]
    done = set()
    for name in domains:
        path = _LICENCE_FILES[name]
        if path in done:
            continue
        done.add(path)
        lines += ["=" * 78, f"{path} (for {', '.join(n for n in domains if _LICENCE_FILES[n] == path)})",
                  "=" * 78, _read_licence(path, loc).rstrip(), ""]
    return "\n".join(lines) + "\n"


def _read_licence(path: str, loc: Locations) -> str:
    if "!" in path:
        wheel, member = path.split("!")
        with zipfile.ZipFile(loc.wheels / wheel) as zf:
            return zf.read(member).decode("utf-8")
    return loc.system(path).read_text(encoding="utf-8")
