"""Entropy proxies: exact answers on synthetic streams, mixtures, the corpus API and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bimix_bayes.corpus import Corpus, build_corpus
from bimix_bayes.entropy import (
    KINDS,
    EntropyProxies,
    entropy_design,
    entropy_mixture,
    hashed_embeddings,
    ngram_counts,
    sample_passages,
    stream_entropies,
    von_neumann_entropy,
)
from bimix_bayes.errors import BimixInputError
from bimix_bayes.mixtures import read_mixtures, validate_mixtures


def markov_stream(transition: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A stationary Markov chain: the first state from the stationary law, then the transitions."""
    rng = np.random.default_rng(seed)
    cumulative = transition.cumsum(axis=1)
    u = rng.random(n)
    x = np.empty(n, dtype=np.int64)
    x[0] = np.searchsorted(stationary(transition).cumsum(), u[0])
    for t in range(1, n):
        x[t] = min(np.searchsorted(cumulative[x[t - 1]], u[t]), len(transition) - 1)
    return x


def stationary(transition: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(transition.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


# ------------------------------------------------------------------- token-stream entropies
def test_uniform_stream_gives_log_v():
    v, n = 16, 400_000
    h = stream_entropies(np.random.default_rng(1).integers(0, v, n), vocab_size=v)
    # plug-in bias is -(V-1)/(2n) ~ 2e-5 and the sd ~ 1e-5 (V^2 = 256 pair cells: 3e-4)
    assert h["shannon"] == pytest.approx(np.log(v), abs=1e-3)
    assert h["joint"] == pytest.approx(2 * np.log(v), abs=2e-3)
    assert h["conditional"] == pytest.approx(np.log(v), abs=2e-3)


def test_deterministic_cycle_has_zero_conditional_entropy():
    h = stream_entropies(np.tile(np.arange(7), 3001), vocab_size=10)
    assert h["conditional"] == pytest.approx(0.0, abs=1e-12)
    assert h["shannon"] == pytest.approx(np.log(7), abs=1e-6)
    assert h["joint"] == pytest.approx(np.log(7), abs=1e-6)


def test_stationary_markov_chain_matches_analytic_entropies_and_chain_rule():
    rng = np.random.default_rng(2)
    transition = rng.dirichlet(np.full(5, 0.7), size=5)
    pi = stationary(transition)
    h_pi = -(pi * np.log(pi)).sum()
    h_cond = -(pi[:, None] * transition * np.log(transition)).sum()
    h = stream_entropies(markov_stream(transition, 200_000, seed=3), vocab_size=5)
    assert h["shannon"] == pytest.approx(h_pi, abs=0.01)
    assert h["conditional"] == pytest.approx(h_cond, abs=0.01)
    # joint = Shannon + conditional for a stationary stream, within sampling error
    assert h["joint"] == pytest.approx(h["shannon"] + h["conditional"], abs=1e-3)


@pytest.mark.parametrize("vocab_size", [300, 5000])  # dense pair table / observed pairs only
def test_chunked_streaming_equals_all_at_once(vocab_size):
    x = np.random.default_rng(4).integers(0, 300, 3000).astype(np.uint16)
    whole = stream_entropies(x, vocab_size, chunk_tokens=len(x))
    for chunk in (1, 7, 4096):
        assert stream_entropies(x, vocab_size, chunk_tokens=chunk) == whole


def test_dense_and_sparse_pair_counting_agree():
    x = np.random.default_rng(5).integers(0, 50, 20_000)
    dense, sparse = stream_entropies(x, 50), stream_entropies(x, 5000, chunk_tokens=999)
    assert sparse == pytest.approx(dense, rel=1e-12)


def test_streaming_reads_a_memmap(tmp_path):
    x = np.random.default_rng(6).integers(0, 257, 10_000).astype("<u2")
    x.tofile(tmp_path / "t.bin")
    mm = np.memmap(tmp_path / "t.bin", dtype="<u2", mode="r")
    assert stream_entropies(mm, 257, chunk_tokens=333) == stream_entropies(x, 257)


def test_ngram_counts_rejects_out_of_vocabulary_and_short_streams():
    with pytest.raises(BimixInputError, match="token id 9 is outside the vocabulary 0..3"):
        ngram_counts([np.array([0, 1]), np.array([9])], vocab_size=4)
    with pytest.raises(BimixInputError, match="at least 2 tokens"):
        ngram_counts([np.array([1])], vocab_size=4)


# ------------------------------------------------------------------------ von Neumann entropy
@pytest.mark.parametrize("k", [1, 2, 5, 40])
def test_orthogonal_equal_weight_embeddings_give_log_k(k):
    q, _ = np.linalg.qr(np.random.default_rng(k).normal(size=(64, k)))
    assert von_neumann_entropy(q.T) == pytest.approx(np.log(k), abs=1e-10)  # (k, 64): K side
    assert von_neumann_entropy(np.eye(k)) == pytest.approx(np.log(k), abs=1e-10)


def test_von_neumann_uses_either_gram_side():
    e = np.random.default_rng(7).normal(size=(30, 4))  # more items than dimensions: E^T E side
    lam = np.linalg.eigvalsh(e @ e.T)
    lam = np.clip(lam / lam.sum(), 1e-300, None)
    assert von_neumann_entropy(e) == pytest.approx(-(lam * np.log(lam)).sum(), abs=1e-9)


def test_sparse_and_dense_kernels_agree():
    rng = np.random.default_rng(9)
    passages = [rng.integers(0, 4096, 200) for _ in range(5)]  # ~2000 buckets > 8 x 5 items
    e = hashed_embeddings(passages, 4096)
    assert von_neumann_entropy(e) == pytest.approx(von_neumann_entropy(e.toarray()), abs=1e-10)


def test_orthogonal_documents_give_log_k_and_identical_ones_give_zero():
    k = 6
    docs = [np.full(50, 10 + i) for i in range(k)]  # disjoint tokens: orthogonal embeddings
    assert von_neumann_entropy(hashed_embeddings(docs, 257)) == pytest.approx(np.log(k), abs=1e-10)
    same = [np.array([1, 2, 3, 4] * 10)] * k
    assert von_neumann_entropy(hashed_embeddings(same, 257)) == pytest.approx(0.0, abs=1e-10)


def test_hashed_embeddings_are_unit_rows_and_ignore_cross_passage_pairs():
    e = hashed_embeddings([np.array([1, 2]), np.array([3])], vocab_size=8, dim=1 << 10)
    assert np.allclose(e.multiply(e).sum(axis=1), 1.0)
    assert e[[1]].nnz == 1  # the (2, 3) pair across the boundary is not a bigram of either
    with pytest.raises(BimixInputError, match="power of two"):
        hashed_embeddings([np.array([1])], 8, dim=1000)
    with pytest.raises(BimixInputError, match="no empty"):
        hashed_embeddings([np.array([], dtype=int)], 8)


def test_sample_passages_windows_documents_and_is_seeded():
    eot = 99
    tokens = np.concatenate([np.r_[np.arange(n), eot] for n in (3, 0, 10, 1)])
    all_windows = sample_passages(tokens, eot, n_passages=100, window=4)
    assert [len(p) for p in all_windows] == [3, 4, 4, 2, 1]  # the empty document is skipped
    assert all(eot not in p for p in all_windows)
    a = sample_passages(tokens, eot, n_passages=3, window=4, seed=1)
    b = sample_passages(tokens, eot, n_passages=3, window=4, seed=1)
    assert [p.tolist() for p in a] == [p.tolist() for p in b]
    assert len(a) == 3
    assert [p.tolist() for p in sample_passages(np.arange(5), eot, window=10)] == [[0, 1, 2, 3, 4]]
    with pytest.raises(BimixInputError, match="no non-empty documents"):
        sample_passages(np.array([eot, eot]), eot)


# -------------------------------------------------------------------------------- mixtures
def test_temperature_one_is_the_softmax_and_large_temperature_is_uniform():
    h = pd.Series({"a": 1.0, "b": 2.0, "c": 4.0})
    expected = np.exp(h) / np.exp(h).sum()
    assert np.allclose(entropy_mixture(h), expected, atol=1e-12)
    assert np.allclose(entropy_mixture(h, temperature=1e9), 1 / 3, atol=1e-8)
    cold = entropy_mixture(h, temperature=1e-3)
    assert cold["c"] == pytest.approx(1.0) and np.isfinite(cold).all()


def test_bounds_clip_and_keep_the_free_ratios():
    h = pd.Series({"a": 0.0, "b": 3.0, "c": 5.0})
    r = entropy_mixture(h, lower=0.1, upper={"c": 0.6})
    assert r.sum() == pytest.approx(1.0, abs=1e-12)
    assert r["c"] == pytest.approx(0.6, abs=1e-12)
    assert r["a"] == pytest.approx(0.1, abs=1e-12)  # share 0.4 / (1 + e^3) = 0.019 lifted to 0.1
    assert r["b"] == pytest.approx(0.3, abs=1e-12)
    free = entropy_mixture(pd.Series({"a": 1.0, "b": 2.0, "c": 3.0}), upper={"c": 0.5})
    assert free["b"] / free["a"] == pytest.approx(np.e) and free["c"] == pytest.approx(0.5)
    tight = entropy_mixture(h, lower={"a": 0.2, "b": 0.3, "c": 0.5})
    assert tight.tolist() == pytest.approx([0.2, 0.3, 0.5])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"temperature": 0.0}, "temperature must be a positive"),
    ({"lower": 0.5}, "bounds cannot be met"),
    ({"upper": 0.2}, "bounds cannot be met"),
    ({"lower": {"zz": 0.1}}, "unknown domain"),
    ({"lower": {"a": 0.5}, "upper": {"a": 0.4}}, "lower 0.5 > upper 0.4"),
    ({"upper": 1.5}, r"must lie in \[0, 1\]"),
])
def test_bad_mixture_settings_are_input_errors(kwargs, match):
    with pytest.raises(BimixInputError, match=match):
        entropy_mixture(pd.Series({"a": 1.0, "b": 2.0, "c": 3.0}), **kwargs)


# ------------------------------------------------------------------------------ corpora, CLI
@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    rng = np.random.default_rng(8)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
    return build_corpus({
        "repetitive": ["abcabcabc " * 20] * 12,
        "varied": [" ".join(rng.choice(words, 40)) for _ in range(12)],
        "code": [f"def f{i}(x):\n    return x * {i} + {i * i}\n" * 3 for i in range(12)],
    }, tmp_path_factory.mktemp("entropy") / "corpus")


def test_proxies_rank_domains_and_give_valid_mixtures(corpus_dir):
    proxies = EntropyProxies(n_passages=16, window=64).fit(corpus_dir)
    assert list(proxies.entropies_.columns) == list(KINDS)
    assert list(proxies.entropies_.index) == ["repetitive", "varied", "code"]
    assert (proxies.entropies_.idxmin() == "repetitive").all()
    mixtures = proxies.mixtures_
    assert list(mixtures.index) == [f"entropy-{k}" for k in KINDS]
    validate_mixtures(mixtures.reset_index(), domains=Corpus.open(corpus_dir).domains)
    tidy = proxies.to_frame()
    assert list(tidy.columns) == ["domain", "kind", "entropy", "proportion"]
    assert tidy.groupby("kind")["proportion"].sum().to_numpy() == pytest.approx(1.0)
    assert tidy["kind"].drop_duplicates().tolist() == list(KINDS)


def test_entropy_design_is_the_four_mixtures(corpus_dir):
    design = entropy_design(corpus_dir, temperature=2.0, lower=0.05)
    assert list(design.index) == [f"entropy-{k}" for k in KINDS]
    assert list(design.columns) == ["repetitive", "varied", "code"]
    assert (design >= 0.05 - 1e-12).all().all()
    assert np.allclose(design.sum(axis=1), 1.0)


def test_proxies_name_the_shard_of_a_corrupt_token(tmp_path, corpus_dir):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(corpus_dir, bad)
    shard = bad / "code" / "train.bin"
    data = np.fromfile(shard, dtype="<u2")
    data[3] = 300  # same size: the corpus checksum, verified on opening, notices
    data.tofile(shard)
    with pytest.raises(BimixInputError, match=r"code/train.bin: corpus shard checksum does not"):
        EntropyProxies(kinds=["shannon"]).fit(bad)
    with pytest.raises(BimixInputError, match="unknown entropy kind"):
        EntropyProxies(kinds=["renyi"]).fit(corpus_dir)


def test_cli_writes_tidy_csv_and_trainable_mixtures(corpus_dir, tmp_path, cli):
    out, mix = tmp_path / "e.csv", tmp_path / "mix.csv"
    done = cli("entropy", corpus_dir, "--out", out, "--mixture-out", mix, "--kind", "shannon",
               "--kind", "von-neumann", "--bounds", "varied=0.1:", "--passages", "16")
    assert done.code == 0, done.err
    assert out.read_text().startswith("# units: entropy in nats")
    tidy = pd.read_csv(out, comment="#")
    assert list(tidy.columns) == ["domain", "kind", "entropy", "proportion"]
    assert sorted(tidy["kind"].unique()) == ["shannon", "von-neumann"]
    assert len(tidy) == 6
    mixtures = read_mixtures(mix, domains=Corpus.open(corpus_dir).domains)
    assert list(mixtures.index) == ["entropy-shannon", "entropy-von-neumann"]
    assert "entropy-shannon" in done.out


@pytest.mark.parametrize(("args", "match"), [
    (["--kind", "renyi"], "unknown entropy kind"),
    (["--bounds", "*=0.6:"], "bounds cannot be met"),
    (["--bounds", "code"], "--bounds takes DOMAIN=VALUE"),
    (["--bounds", "code=0.5"], "--bounds takes DOMAIN=MIN:MAX"),
    (["--bounds", "nope=0.1:"], "unknown domain"),
    (["--split", "test"], "Invalid value for '--split': 'test' is not one of 'train', 'val'"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(corpus_dir, tmp_path, cli, args, match):
    out = tmp_path / "e.csv"
    cli("entropy", corpus_dir, "--out", out, *args).assert_user_error(match)
    assert not out.exists()


def test_cli_missing_corpus(tmp_path, cli):
    cli("entropy", tmp_path / "nowhere", "--out", tmp_path / "e.csv").assert_user_error(
        "corpus directory not found")
