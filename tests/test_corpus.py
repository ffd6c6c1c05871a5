"""The token corpus: building, reading back, determinism, tokenizers, sources and corrupt corpora."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from bimix_bayes.corpus import Corpus, build_corpus, build_embedded_corpus, build_full_corpus
from bimix_bayes.corpus.embedded import embedded_documents, slice_dir
from bimix_bayes.corpus.sources import (
    SOURCES,
    Locations,
    licence_texts,
    read_rdata_strings,
)
from bimix_bayes.errors import BimixInputError

DOCS = {
    "code": [f"def f{i}(x):\n    return x + {i}\n" for i in range(12)],
    "prose": [f"Chapter {i}. It is a truth universally acknowledged, é {i}." for i in range(7)],
}


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build_corpus(DOCS, tmp_path_factory.mktemp("c") / "corpus")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return build_embedded_corpus(tmp_path_factory.mktemp("e") / "corpus")


@pytest.fixture
def copy_of(small, tmp_path):
    """A fresh copy of the small corpus that a test may damage."""
    import shutil

    return Path(shutil.copytree(small, tmp_path / "copy"))


# ------------------------------------------------------------------------------ reading back
def test_reads_back_what_was_written(small):
    corpus = Corpus.open(small, verify=True)
    assert corpus.domains == ["code", "prose"]
    assert (corpus.vocab_size, corpus.eot) == (257, 256)
    assert corpus.tokenizer == {"kind": "byte", "vocab_size": 257, "eot": 256, "file": None}
    for name, docs in DOCS.items():
        got = [corpus.decode(d) for s in ("train", "val") for d in corpus.documents(name, s)]
        assert sorted(got) == sorted(docs)
        info = corpus.info(name)
        assert info["train_documents"] + info["val_documents"] == len(docs)
        train = corpus.tokens(name, "train")
        assert isinstance(train, np.memmap) and train.dtype == np.uint16
        assert len(train) == info["train_tokens"] and train[-1] == corpus.eot
        raw = np.fromfile(small / name / "train.bin", dtype="<u2")
        np.testing.assert_array_equal(train, raw)


def test_documents_split_at_eot(small):
    corpus = Corpus.open(small)
    docs = list(corpus.documents("code", "val"))
    assert len(docs) == corpus.info("code")["val_documents"] == 2
    assert all(corpus.eot not in d for d in docs)
    assert corpus.decode(docs[-1]) == DOCS["code"][-1]  # the last document is always validation
    ends = np.flatnonzero(corpus.tokens("code", "val") == corpus.eot)
    assert [len(d) for d in docs] == list(np.diff(np.r_[-1, ends]) - 1)


def test_corpus_directory_gets_the_usual_mode(small):
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(small.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's private 0700


def test_split_is_every_tenth_document_from_the_end(tmp_path):
    docs = [f"doc {i}" for i in range(25)]
    corpus = Corpus.open(build_corpus({"a": docs}, tmp_path / "c"))
    val = [corpus.decode(d) for d in corpus.documents("a", "val")]
    assert val == ["doc 4", "doc 14", "doc 24"]


def test_unknown_domain_and_split(small):
    corpus = Corpus.open(small)
    with pytest.raises(BimixInputError, match="unknown domain 'math'"):
        corpus.tokens("math")
    with pytest.raises(BimixInputError, match="split must be one of"):
        corpus.tokens("code", "test")


# ------------------------------------------------------------------------------ embedded slice
def test_embedded_build_has_the_permissive_domains(embedded):
    corpus = Corpus.open(embedded, verify=True)
    assert len(corpus.domains) >= 4
    assert not {"math_latex", "legal"} & set(corpus.domains)  # GPL / mixed licences stay out
    for name in corpus.domains:
        info = corpus.info(name)
        assert info["train_tokens"] > 30_000 and info["val_tokens"] > 3_000
        assert info["license"] != "unknown" and "excerpts" in info["source"]


def test_embedded_build_is_byte_identical(embedded, tmp_path):
    again = build_embedded_corpus(tmp_path / "again")
    assert tree_digest(again) == tree_digest(embedded)


def test_slice_has_a_notice_for_every_domain():
    notice = (slice_dir() / "NOTICE").read_text(encoding="utf-8")
    documents, provenance = embedded_documents()
    for name, entry in provenance.items():
        assert f"{name}.json.gz" in notice and entry["license"] in notice
        assert SOURCES[name].embeddable
    assert "Python Software Foundation" in notice and "MIT License" in notice


def test_cli_builds_the_embedded_corpus(tmp_path, cli):
    done = cli("corpus", "build", "--embedded", "--out", tmp_path / "c")
    assert done.code == 0, done.err
    assert "domains" in done.out
    # exists: a one-line error, exit 2
    cli("corpus", "build", "--embedded", "--out", tmp_path / "c").assert_user_error(
        "already exists")


# ---------------------------------------------------------------------------------------- BPE
@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    docs = {
        "code": DOCS["code"] + ["x = '<|endoftext|>'  # literal text, not a separator\n"],
        "prose": DOCS["prose"],
    }
    root = tmp_path_factory.mktemp("bpe")
    return docs, [build_corpus(docs, root / n, tokenizer="bpe", vocab_size=300) for n in "ab"]


def test_bpe_round_trips_text(bpe):
    docs, (path, _) = bpe
    corpus = Corpus.open(path, verify=True)
    assert corpus.tokenizer["kind"] == "bpe" and corpus.vocab_size == 300
    assert (path / "tokenizer.json").is_file()
    for name, texts in docs.items():
        got = [corpus.decode(d) for s in ("train", "val") for d in corpus.documents(name, s)]
        assert sorted(got) == sorted(texts)
    assert corpus.info("code")["val_documents"] == 2  # the literal "<|endoftext|>" split nothing


def test_bpe_build_is_byte_identical(bpe):
    _, (a, b) = bpe
    assert tree_digest(a) == tree_digest(b)


def test_bpe_vocab_size_is_checked(tmp_path):
    with pytest.raises(BimixInputError, match="vocab size"):
        build_corpus(DOCS, tmp_path / "c", tokenizer="bpe", vocab_size=70_000)


# ----------------------------------------------------------------------------- bad corpora
def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(BimixInputError, match="corpus directory not found"):
        Corpus.open(tmp_path / "nope")
    with pytest.raises(BimixInputError, match="manifest.json: corpus manifest not found"):
        Corpus.open(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: "{not json", "not valid JSON"),
        (lambda m: {**m, "format": "other/2"}, "format must be 'bimix-corpus/1'"),
        (lambda m: {**m, "domains": {}}, "'domains' must be a non-empty object"),
        (lambda m: {**m, "tokenizer": {**m["tokenizer"], "eot": 999}}, "eot < vocab_size"),
        (lambda m: {**m, "domains": {"code": {**m["domains"]["code"], "val_tokens": "9"}}},
         "val_tokens must be a positive integer"),
    ],
)
def test_corrupt_manifest(copy_of, edit, message):
    path = copy_of / "manifest.json"
    edited = edit(json.loads(path.read_text()))
    path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    with pytest.raises(BimixInputError, match=message) as err:
        Corpus.open(copy_of)
    assert str(path) in str(err.value)


def test_missing_shard(copy_of):
    (copy_of / "prose" / "val.bin").unlink()
    with pytest.raises(BimixInputError, match=r"prose/val.bin: corpus shard is missing"):
        Corpus.open(copy_of)


def test_truncated_shard(copy_of):
    shard = copy_of / "code" / "train.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(BimixInputError, match=r"code/train.bin: corpus shard has \d+ bytes"):
        Corpus.open(copy_of)


def test_checksum_mismatch_is_refused_on_open(copy_of):
    Corpus.open(copy_of)  # verified and cached; the change below must still be seen
    shard = copy_of / "code" / "train.bin"
    data = bytearray(shard.read_bytes())
    data[0] ^= 1
    shard.write_bytes(bytes(data))
    Corpus.open(copy_of, verify=False)  # sizes agree: only verify reads the bytes
    with pytest.raises(BimixInputError, match="code/train.bin: corpus shard checksum does not"):
        Corpus.open(copy_of)


def test_token_id_outside_the_vocabulary_is_refused_on_open(copy_of):
    import hashlib
    import json

    shard = copy_of / "code" / "val.bin"
    data = bytearray(shard.read_bytes())
    data[0:2] = (60000).to_bytes(2, "little")  # byte-level vocabulary: 257 ids
    shard.write_bytes(bytes(data))
    manifest = json.loads((copy_of / "manifest.json").read_text())
    manifest["domains"]["code"]["sha256"]["val"] = hashlib.sha256(bytes(data)).hexdigest()
    (copy_of / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BimixInputError, match=r"code/val.bin: corpus shard holds token id 60000 "
                                              r"at position 0, outside the vocabulary of 257"):
        Corpus.open(copy_of)


# --------------------------------------------------------------------------------- building
def test_bad_build_input(tmp_path):
    with pytest.raises(BimixInputError, match="at least 2 non-empty documents"):
        build_corpus({"a": ["only one", "   "]}, tmp_path / "c")
    with pytest.raises(BimixInputError, match="bad domain name"):
        build_corpus({"../up": ["x", "y"]}, tmp_path / "c")
    with pytest.raises(BimixInputError, match="tokenizer must be"):
        build_corpus(DOCS, tmp_path / "c", tokenizer="tiktoken")
    assert not (tmp_path / "c").exists()


def test_existing_output_needs_overwrite(small, tmp_path):
    out = build_corpus({"a": ["x", "y"]}, tmp_path / "c")
    with pytest.raises(BimixInputError, match="already exists"):
        build_corpus(DOCS, out)
    build_corpus(DOCS, out, overwrite=True)
    assert tree_digest(out) == tree_digest(small)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # nothing left beside it


class _Unencodable(str):
    """A document that fails while being tokenised, to interrupt a build half-way."""

    def encode(self, *args, **kwargs):
        raise RuntimeError("killed mid-build")


def test_failed_build_leaves_nothing(tmp_path):
    docs = {"a": ["x", "y"], "b": ["z", _Unencodable("boom")]}
    with pytest.raises(RuntimeError, match="killed mid-build"):
        build_corpus(docs, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- sources
def _rdata_blob(lines: list[str]) -> bytes:
    """One R lazy-load blob holding a character vector, serialised as R writes it (version 3)."""
    body = b"X\n" + struct.pack(">3i", 3, 0x040201, 0x030500) + struct.pack(">i", 5) + b"UTF-8"
    body += struct.pack(">2i", 0x10, len(lines))
    for line in lines:
        data = line.encode("utf-8")
        body += struct.pack(">2i", 0x00008009, len(data)) + data
    return struct.pack(">I", len(body)) + zlib.compress(body)


def test_read_rdata_strings():
    rdb = _rdata_blob(["EMMA", "", "CHAPTER I", "Emma Woodhouse, handsome"]) + _rdata_blob(["ü"])
    assert read_rdata_strings(rdb) == [["EMMA", "", "CHAPTER I", "Emma Woodhouse, handsome"], ["ü"]]


def test_licence_texts_drop_front_matter():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("licensedcode/data/licenses/b.LICENSE", "---\nkey: b\n---\nB licence text\n")
        zf.writestr("licensedcode/data/licenses/a.LICENSE", "---\nkey: a\n---\nA text\n")
        zf.writestr("licensedcode/data/rules/a.RULE", "not a licence")
    with zipfile.ZipFile(buf) as zf:
        assert licence_texts(zf) == ["A text\n", "B licence text\n"]


def test_missing_sources_name_the_install_script(tmp_path):
    with pytest.raises(BimixInputError, match="install-corpus-sources") as err:
        build_full_corpus(tmp_path / "c", locations=Locations(root=tmp_path, wheels=tmp_path))
    assert "r-cran-janeaustenr" in str(err.value) and "chitchat" in str(err.value)
    assert not (tmp_path / "c").exists()


def test_full_build_from_installed_sources(tmp_path):
    names = ["prose", "math_latex"]
    if any(SOURCES[n].missing(Locations()) for n in names):
        pytest.skip("corpus sources not installed (scripts/install-corpus-sources)")
    corpus = Corpus.open(build_full_corpus(tmp_path / "c", domains=names), verify=True)
    assert corpus.domains == names
    assert corpus.info("prose")["train_documents"] > 200  # chapters of six novels
    first = corpus.decode(next(corpus.documents("prose")))
    assert first.startswith("EMMA")
