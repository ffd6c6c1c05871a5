"""The token corpus: building, reading back, determinism, tokenizers and corrupt-corpus errors."""

from __future__ import annotations

import numpy as np
import pytest

from bimix_bayes.corpus import Corpus, build_corpus

DOCS = {
    "code": [f"def f{i}(x):\n    return x + {i}\n" for i in range(12)],
    "prose": [f"Chapter {i}. It is a truth universally acknowledged, é {i}." for i in range(7)],
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build_corpus(DOCS, tmp_path_factory.mktemp("c") / "corpus")


def test_reads_back_what_was_written(small):
    corpus = Corpus.open(small, verify=True)
    assert corpus.domains == ["code", "prose"]
    assert (corpus.vocab_size, corpus.eot) == (257, 256)
    for name, docs in DOCS.items():
        got = [corpus.decode(d) for s in ("train", "val") for d in corpus.documents(name, s)]
        assert sorted(got) == sorted(docs)
        info = corpus.info(name)
        assert info["train_documents"] + info["val_documents"] == len(docs)
        train = corpus.tokens(name, "train")
        assert isinstance(train, np.memmap) and train.dtype == np.uint16
        assert len(train) == info["train_tokens"] and train[-1] == corpus.eot


def test_documents_split_at_eot(small):
    corpus = Corpus.open(small)
    docs = list(corpus.documents("code", "val"))
    assert len(docs) == corpus.info("code")["val_documents"] == 2
    assert all(corpus.eot not in d for d in docs)
    assert corpus.decode(docs[-1]) == DOCS["code"][-1]  # the last document is always validation
