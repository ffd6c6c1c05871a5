"""The default text domains of the full corpus and how documents are extracted from each source.

Every source is an installed package read with the standard library, never at run time from the
network: Debian packages installed with apt-get, and PyPI wheels fetched (not installed) into a cache
directory and read as zip files. ``scripts/install-corpus-sources`` installs them all.

=========== =================================================================== ==============
domain      source                                                              licence
=========== =================================================================== ==============
code        CPython 3.11 standard library (Debian libpython3.11-stdlib), no tests PSF-2.0
prose       Jane Austen's six novels (Debian r-cran-janeaustenr, R lazy-load db) public domain
dialogue    chitchat-dataset 0.9.0 wheel (``dataset.json``)                     MIT
legal       licensedcode-data 32.1.0 wheel (``*.LICENSE`` licence texts)         various
math_formal Metamath ``set.mm`` (Debian metamath-databases), proofs stripped     CC0-1.0
math_latex  PARI/GP manuals ``*.tex`` (Debian pari-doc)                          GPL-2.0+
docs        Python 3.11 documentation sources (Debian python3.11-doc)            PSF-2.0
scripture   World English Bible (Debian sword-text-web, read with ``mod2imp``)  public domain
=========== =================================================================== ==============

Each extractor returns the documents of its domain in a fixed order; the parsers behind them take
bytes or text, so they can be tested on small inputs.

Examples
--------
>>> strip_metamath_proofs("th1 $p |- ph $= ( wi ax-1 ) ABC $.")
'th1 $p |- ph $= ? $.'
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bimix_bayes.corpus.build import build_corpus
from bimix_bayes.errors import BimixInputError

INSTALL_SCRIPT = "scripts/install-corpus-sources"
CHITCHAT_WHEEL = "chitchat_dataset-0.9.0-py3-none-any.whl"
LICENSEDCODE_WHEEL = "licensedcode_data-32.1.0-py3-none-any.whl"


def default_wheel_dir() -> Path:
    """Where the install script puts the source wheels: ``$BIMIX_CORPUS_WHEELS`` or a user cache."""
    env = os.environ.get("BIMIX_CORPUS_WHEELS")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bimix-bayes" / "wheels"


@dataclass(frozen=True)
class Locations:
    """Where the sources live: the system root of the Debian files and the wheel cache."""

    root: Path = Path("/")
    wheels: Path = field(default_factory=default_wheel_dir)

    def system(self, path: str) -> Path:
        """A Debian-installed path under :attr:`root`."""
        return self.root / path.lstrip("/")


@dataclass(frozen=True)
class Source:
    """One domain of the default corpus.

    Attributes
    ----------
    domain : str
        The domain name used in corpora and mixtures.
    description : str
        What the text is, for the manifest.
    license : str
        SPDX-like licence of the extracted text.
    package : str
        The Debian package (``deb:NAME``) or wheel (``wheel:FILE``) that holds it.
    needs : tuple of str
        Paths (system paths or wheel file names) that must exist; checked before any work.
    extract : callable
        ``extract(locations) -> list[str]``: the domain's documents.
    embeddable : bool
        Whether excerpts may be committed to the repository (permissive or public domain).
    """

    domain: str
    description: str
    license: str
    package: str
    needs: tuple[str, ...]
    extract: Callable[[Locations], list[str]]
    embeddable: bool

    def missing(self, loc: Locations) -> list[str]:
        """The required paths that are not there."""
        paths = [
            loc.system(p) if p.startswith("/") else loc.wheels / p for p in self.needs
        ]
        return [str(p) for p in paths if not p.exists()]


def deb_version(package: str, loc: Locations) -> str:
    """The installed version of a Debian package (``"unknown"`` if it cannot be told)."""
    query = shutil.which("dpkg-query")
    if query is None or loc.root != Path("/"):
        return "unknown"
    result = subprocess.run([query, "-W", "-f=${Version}", package], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() or "unknown"


# ----------------------------------------------------------------------------------- code (PSF)
_CODE_SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages",
                   "lib-dynload"}
# Generated or machine-specific files, not code anyone wrote: build configuration dumps and the
# 600 KB help-topic dictionary of pydoc.
_CODE_SKIP_FILES = re.compile(r"^(test_.*|_sysconfigdata_.*|topics)\.py$")


def python_stdlib_files(stdlib: Path) -> list[str]:
    """The ``*.py`` files of a CPython standard library, sorted by path, without tests."""
    docs = []
    for path in sorted(stdlib.rglob("*.py"), key=lambda p: p.relative_to(stdlib).as_posix()):
        parts = path.relative_to(stdlib).parts
        if set(parts[:-1]) & _CODE_SKIP_DIRS or parts[0].startswith("config-"):
            continue
        if _CODE_SKIP_FILES.match(parts[-1]):
            continue
        docs.append(path.read_bytes().decode("utf-8", errors="replace"))
    return docs


def _code(loc: Locations) -> list[str]:
    return python_stdlib_files(loc.system("/usr/lib/python3.11"))


# ------------------------------------------------------------------------ prose (public domain)
def read_rdata_strings(rdb: bytes) -> list[list[str]]:
    """The character vectors stored in an R lazy-load database (``Rdata.rdb``).

    The file is a sequence of blobs: a 4-byte big-endian uncompressed length, then a zlib stream
    holding one object in R's XDR serialisation. Only character vectors (``STRSXP``) without
    attributes are understood, which is what ``janeaustenr`` stores; R is not needed.
    """
    vectors = []
    pos = 0
    while pos < len(rdb):
        inflater = zlib.decompressobj()
        data = inflater.decompress(rdb[pos + 4 :])
        pos = len(rdb) - len(inflater.unused_data)
        if data[:2] != b"X\n":
            raise ValueError("not an XDR-serialised R object")
        version = struct.unpack(">i", data[2:6])[0]
        at = 14
        if version == 3:  # version 3 names the native encoding after the header
            at += 4 + struct.unpack(">i", data[14:18])[0]
        flags, length = struct.unpack(">2i", data[at : at + 8])
        at += 8
        if flags != 0x10:  # STRSXP with no attributes
            raise ValueError(f"unsupported R object (flags {flags:#x})")
        strings = []
        for _ in range(length):
            flags, size = struct.unpack(">2i", data[at : at + 8])
            at += 8
            if size == -1:  # NA_character_
                strings.append("")
                continue
            latin1 = flags & (1 << 14)  # LATIN1_MASK of the CHARSXP levels
            strings.append(data[at : at + size].decode("latin-1" if latin1 else "utf-8"))
            at += size
        vectors.append(strings)
    return vectors


_CHAPTER = re.compile(r"^\s*chapter\s+[0-9ivxlc]+\b", re.IGNORECASE)


def book_chapters(lines: Sequence[str]) -> list[str]:
    """Split a novel (one string per line) into chapters; the front matter is its own document.

    Examples
    --------
    >>> book_chapters(["EMMA", "", "CHAPTER I", "Emma Woodhouse", "CHAPTER II", "Mr. Weston"])
    ['EMMA\\n', 'CHAPTER I\\nEmma Woodhouse', 'CHAPTER II\\nMr. Weston']
    """
    chapters: list[list[str]] = [[]]
    for line in lines:
        if _CHAPTER.match(line):
            chapters.append([])
        chapters[-1].append(line)
    return [text for chunk in chapters if (text := "\n".join(chunk)).strip()]


def _prose(loc: Locations) -> list[str]:
    rdb = loc.system("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb").read_bytes()
    return [ch for book in read_rdata_strings(rdb) for ch in book_chapters(book)]


# ----------------------------------------------------------------------------- dialogue (MIT)
def chitchat_conversations(dataset: bytes) -> list[str]:
    """Conversations of the chitchat dataset as ``A: ...`` / ``B: ...`` lines, sorted by id.

    Examples
    --------
    >>> data = {"c1": {"messages": [[{"text": "hi", "sender": "x"}], [{"text": "yo", "sender": "y"}]]}}
    >>> chitchat_conversations(json.dumps(data).encode())
    ['A: hi\\nB: yo']
    """
    conversations = json.loads(dataset)
    docs = []
    for key in sorted(conversations):
        speakers: dict[str, str] = {}
        lines = []
        for turn in conversations[key]["messages"]:
            for message in turn:
                who = speakers.setdefault(message["sender"], chr(ord("A") + len(speakers) % 26))
                lines.append(f"{who}: {message['text'].strip()}")
        docs.append("\n".join(lines))
    return docs


def _dialogue(loc: Locations) -> list[str]:
    with zipfile.ZipFile(loc.wheels / CHITCHAT_WHEEL) as wheel:
        return chitchat_conversations(wheel.read("chitchat_dataset/dataset.json"))


# --------------------------------------------------------------------------- legal (various)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def licence_texts(wheel: zipfile.ZipFile) -> list[str]:
    """The licence texts of a licensedcode-data wheel, without their YAML front matter.

    Reads ``licensedcode/data/licenses/*.LICENSE`` in name order; licences that are metadata only
    come out empty (and the builder drops empty documents).
    """
    names = sorted(
        n for n in wheel.namelist()
        if n.startswith("licensedcode/data/licenses/") and n.endswith(".LICENSE")
    )
    return [_FRONT_MATTER.sub("", wheel.read(n).decode("utf-8", errors="replace"), count=1)
            for n in names]


def _legal(loc: Locations) -> list[str]:
    with zipfile.ZipFile(loc.wheels / LICENSEDCODE_WHEEL) as wheel:
        return licence_texts(wheel)


# ------------------------------------------------------------------------- math_formal (CC0)
_PROOF = re.compile(r"\$=.*?\$\.", re.DOTALL)
_MM_HEADER = re.compile(r"^\s*(####|#\*#\*|=-=-|-\.-\.)")


def strip_metamath_proofs(text: str) -> str:
    """Replace every proof (``$= ... $.``, mostly compressed letter strings) by ``$= ? $.``."""
    return _PROOF.sub("$= ? $.", text)


def metamath_sections(text: str) -> list[str]:
    r"""Split a Metamath database at its part, chapter, section and subsection header comments.

    A header with nothing but comments under it (a part directly followed by its first chapter)
    stays with the next section, so that every document holds statements.

    Examples
    --------
    >>> db = "$(\n####\nPart\n$)\n$(\n=-=-\nSec\n$)\nax $a |- ph $.\n$(\n=-=-\nTwo\n$)\nth $p ps $= ? $."
    >>> [doc.count("$(") for doc in metamath_sections(db)]
    [2, 1]
    """
    lines = text.split("\n")
    starts = [0] + [
        i for i in range(1, len(lines) - 1)
        if lines[i].strip() == "$(" and _MM_HEADER.match(lines[i + 1])
    ]
    docs: list[str] = []
    pending = ""
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        chunk = pending + "\n".join(lines[a:b])
        # statements end with "$."; a chunk without one is headers and prose only
        pending = "" if "$." in chunk else chunk + "\n"
        if not pending and chunk.strip():
            docs.append(chunk)
    if pending.strip():
        docs.append(pending.rstrip("\n"))
    return docs


def _math_formal(loc: Locations) -> list[str]:
    text = loc.system("/usr/share/metamath/databases/set.mm").read_text(encoding="utf-8")
    return metamath_sections(strip_metamath_proofs(text))


# -------------------------------------------------------------------------- math_latex (GPL)
_TEX_SECTION = re.compile(r"^\\(chapter|section|subsec)\b")
# TeX macro and configuration files of the manual: markup definitions rather than mathematics.
_TEX_SKIP = {"parimacro.tex", "pdfmacs.tex", "paricfg.tex"}


def tex_sections(text: str) -> list[str]:
    r"""Split TeX source before every ``\chapter``, ``\section`` and PARI ``\subsec`` line."""
    chunks: list[list[str]] = [[]]
    for line in text.split("\n"):
        if _TEX_SECTION.match(line):
            chunks.append([])
        chunks[-1].append(line)
    return [doc for chunk in chunks if (doc := "\n".join(chunk)).strip()]


def _math_latex(loc: Locations) -> list[str]:
    root = loc.system("/usr/share/pari/doc")
    return [
        doc for path in sorted(root.glob("*.tex")) if path.name not in _TEX_SKIP
        for doc in tex_sections(path.read_text(encoding="utf-8", errors="replace"))
    ]


# -------------------------------------------------------------------------------- docs (PSF)
def _docs(loc: Locations) -> list[str]:
    root = loc.system("/usr/share/doc/python3.11/html/_sources")
    paths = sorted(root.rglob("*.rst.txt"), key=lambda p: p.relative_to(root).as_posix())
    return [p.read_bytes().decode("utf-8", errors="replace") for p in paths]


# ------------------------------------------------------------------- scripture (public domain)
_IMP_KEY = re.compile(r"^\$\$\$(.+) (\d+):(\d+)$")
_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def sword_chapters(imp: str) -> list[str]:
    """Chapters of a SWORD bible exported by ``mod2imp``, as plain text with numbered verses.

    Footnotes and cross references are dropped with all other OSIS markup; chapter 0 of a book
    (its introduction) becomes a chapter without verse numbers.

    Examples
    --------
    >>> sword_chapters("$$$Jude 1:1\\n<w>Jude,</w><note>fn</note> a servant\\n$$$Jude 1:2\\nMercy")
    ['Jude 1\\n1 Jude, a servant\\n2 Mercy']
    """
    chapters: dict[tuple[str, str], list[str]] = {}
    key = None
    for line in imp.split("\n"):
        if line.startswith("$$$"):
            match = _IMP_KEY.match(line)
            key = (match.group(1), match.group(2), match.group(3)) if match else None
            continue
        if key is None:
            continue
        text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", _NOTE.sub("", line)))).strip()
        # removed tags leave spaces inside quotes and before punctuation
        text = re.sub(r"([“‘(]) | ([,.;:?!’”)])", r"\1\2", text)
        if not text:
            continue
        book, chapter, verse = key
        verses = chapters.setdefault((book, chapter), [f"{book} {chapter}"])
        verses.append(text if verse == "0" else f"{verse} {text}")
    return ["\n".join(v) for v in chapters.values() if len(v) > 1]


def _scripture(loc: Locations) -> list[str]:
    mod2imp = shutil.which("mod2imp")
    if mod2imp is None:
        raise BimixInputError(f"mod2imp not found; install libsword-utils (see {INSTALL_SCRIPT})")
    env = {**os.environ, "SWORD_PATH": str(loc.system("/usr/share/sword"))}
    result = subprocess.run([mod2imp, "engWEB2015eb"], capture_output=True, check=False, env=env)
    if result.returncode != 0 or not result.stdout:
        raise BimixInputError(f"mod2imp engWEB2015eb failed: {result.stderr.decode()[:200]}")
    return sword_chapters(result.stdout.decode("utf-8", errors="replace"))


# ------------------------------------------------------------------------------------ table
SOURCES: dict[str, Source] = {
    s.domain: s
    for s in [
        Source("code", "CPython 3.11 standard library sources (tests and generated files "
               "skipped), one document per module", "PSF-2.0", "deb:libpython3.11-stdlib",
               ("/usr/lib/python3.11/os.py", "/usr/lib/python3.11/json/decoder.py"), _code, True),
        Source("prose", "Jane Austen's six novels from the janeaustenr R package, one document "
               "per chapter", "public domain (texts); MIT (janeaustenr)",
               "deb:r-cran-janeaustenr",
               ("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",), _prose, True),
        Source("dialogue", "chitchat-dataset 0.9.0 (BYU PCC lab) conversations, one document "
               "per conversation", "MIT", f"wheel:{CHITCHAT_WHEEL}", (CHITCHAT_WHEEL,),
               _dialogue, True),
        Source("legal", "licensedcode-data 32.1.0 (ScanCode) licence texts, one document per "
               "licence", "various (each licence's own terms; ScanCode data CC-BY-4.0)",
               f"wheel:{LICENSEDCODE_WHEEL}", (LICENSEDCODE_WHEEL,), _legal, False),
        Source("math_formal", "Metamath set.mm with proofs replaced by '?', one document per "
               "section", "CC0-1.0", "deb:metamath-databases",
               ("/usr/share/metamath/databases/set.mm",), _math_formal, True),
        Source("math_latex", "PARI/GP manuals (TeX), one document per section", "GPL-2.0-or-later",
               "deb:pari-doc", ("/usr/share/pari/doc/usersch3.tex",), _math_latex, False),
        Source("docs", "Python 3.11 documentation reStructuredText sources, one document per "
               "page", "PSF-2.0", "deb:python3.11-doc",
               ("/usr/share/doc/python3.11/html/_sources/library/os.rst.txt",), _docs, True),
        Source("scripture", "World English Bible with deuterocanon (SWORD engWEB2015eb), "
               "footnotes removed, one document per chapter", "public domain",
               "deb:sword-text-web",
               ("/usr/share/sword/mods.d/engWEB2015eb.conf", "/usr/bin/mod2imp"), _scripture,
               True),
    ]
}


def extract_documents(
    domains: Iterable[str] | None = None,
    locations: Locations | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """Documents and provenance of the default domains, read from the installed sources.

    Parameters
    ----------
    domains : iterable of str, optional
        A subset of :data:`SOURCES` (default: all eight).
    locations : Locations, optional
        Where the sources are (default: the system and :func:`default_wheel_dir`).
    log : callable, optional
        Called with one line per domain, for progress.

    Returns
    -------
    documents : dict
        Domain -> documents.
    provenance : dict
        Domain -> ``{"source": ..., "license": ...}`` for the manifest.

    Raises
    ------
    BimixInputError
        Before reading anything, listing every missing source and the script that installs them.
    """
    loc = locations or Locations()
    names = list(SOURCES) if domains is None else list(domains)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise BimixInputError(f"unknown corpus domains {unknown}; choose from {list(SOURCES)}")
    missing = {n: SOURCES[n].missing(loc) for n in names}
    missing = {n: m for n, m in missing.items() if m}
    if missing:
        listed = "; ".join(f"{n} needs {SOURCES[n].package} ({', '.join(m)})"
                           for n, m in missing.items())
        raise BimixInputError(
            f"corpus sources are not installed: {listed}. Run {INSTALL_SCRIPT} (apt-get and "
            f"pip download; set BIMIX_CORPUS_WHEELS to choose the wheel directory), or build "
            f"the small offline corpus with `bimix corpus build --embedded`"
        )
    documents, provenance = {}, {}
    for name in names:
        source = SOURCES[name]
        if log:
            log(f"{name}: reading {source.package}")
        documents[name] = source.extract(loc)
        provenance[name] = source_entry(source, loc)
    return documents, provenance


def source_entry(source: Source, loc: Locations) -> dict[str, Any]:
    """The manifest's ``source`` and ``license`` of a domain, naming the package version."""
    kind, _, name = source.package.partition(":")
    package = f"Debian {name} {deb_version(name, loc)}" if kind == "deb" else f"PyPI wheel {name}"
    return {"source": f"{source.description} [{package}]", "license": source.license}


def build_full_corpus(
    out: str | os.PathLike[str],
    *,
    domains: Iterable[str] | None = None,
    locations: Locations | None = None,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> Path:
    """Build the default corpus (DESIGN §8, about 80 MB of text) from the installed sources.

    Parameters
    ----------
    out : str or PathLike
        The corpus directory to create.
    domains : iterable of str, optional
        A subset of the eight default domains.
    locations : Locations, optional
        Where the sources are installed.
    log : callable, optional
        Progress lines.
    **options
        Passed to :func:`~bimix_bayes.corpus.build_corpus`.

    Raises
    ------
    BimixInputError
        Before any work, when a source is not installed (naming it and the install script).
    """
    documents, provenance = extract_documents(domains, locations, log)
    return build_corpus(documents, out, provenance=provenance,
                        builder={"documents": "installed sources (bimix_bayes.corpus.sources)"},
                        log=log, **options)
