"""Entropy proxies for data mixing: training-free first guesses at a mixture (BiMix, Ge et al., §5).

Each domain of a corpus gets four entropies, all in nats (natural logarithm):

``shannon``
    H(X) of the unigram token distribution of the domain's training stream.
``joint``
    H(X_t, X_t+1) of adjacent token pairs.
``conditional``
    H(X_t+1 | X_t) = H(X_t, X_t+1) - H(X_t), the next token given the previous one.
``von-neumann``
    -tr(rho log rho) of rho = K / tr(K), the trace-normalised linear kernel of passage embeddings:
    log of the "effective number" of distinct passages. The paper embeds documents with FastText,
    which cannot be downloaded here; we use an offline **hashed n-gram embedding** instead: the
    token unigrams and adjacent token bigrams of a passage, hashed (Fibonacci hashing) into
    ``dim`` buckets, weighted ``1 + log(count)`` and L2-normalised, so K is the cosine-similarity
    matrix. Passages are
    documents (split at ``eot``) cut into windows of at most ``window`` tokens, of which
    ``n_passages`` are drawn without replacement with a seeded generator.

The token-stream entropies count the stream the trainer sees, ``eot`` ids included, streaming over
the memory-mapped shard in chunks: memory is bounded by the chunk plus the pair table (dense
``V x V`` counts for small vocabularies, the observed pairs only for large ones).

A mixture follows by a softmax over the domains, ``r_i ∝ exp(H_i / T)``; temperature ``T = 1``
reproduces the paper, ``T -> inf`` gives the uniform mixture, ``T -> 0`` all weight on the most
diverse domain. (Entropies in bits are nats / log 2, so bits at ``T = 1`` equal nats at
``T = log 2``.) Optional per-domain bounds clip the softmax and renormalise the free domains, keeping
their ratios. The four entropy mixtures are the default initial design of the planner
(:func:`entropy_design`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> h = stream_entropies(rng.integers(0, 4, 100_000), vocab_size=4)
>>> round(h["shannon"], 3), round(float(np.log(4)), 3)
(1.386, 1.386)
>>> entropy_mixture(pd.Series({"code": 1.0, "web": 1.0})).tolist()
[0.5, 0.5]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.optimize
import scipy.sparse
import scipy.special
import threadpoolctl

from bimix_bayes.errors import BimixInputError

if TYPE_CHECKING:
    from bimix_bayes.corpus import Corpus

KINDS = ("shannon", "conditional", "joint", "von-neumann")
#: The units line of the entropy CSV (see :func:`bimix_bayes._io.write_csv`).
ENTROPY_UNITS = "entropy in nats; proportion is the softmax share of the training tokens"
#: Tokens per chunk when streaming a shard: 4M ids cost about 100 MB of int64 work arrays.
CHUNK_TOKENS = 1 << 22
#: Largest V*V kept as a dense pair table (32 MB of int64); larger vocabularies count observed pairs.
_DENSE_PAIRS = 1 << 22
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: Fibonacci hashing spreads codes

Bound = float | Mapping[str, float] | None


# --------------------------------------------------------------------------- token-stream entropies
def _entropy(counts: np.ndarray) -> float:
    """Plug-in entropy in nats of a vector of counts, ``log n - sum(c log c) / n``."""
    c = counts[counts > 0].astype(np.float64)
    n = c.sum()
    return float(np.log(n) - (c * np.log(c)).sum() / n)


@dataclass(frozen=True)
class NgramCounts:
    """Unigram and adjacent-pair counts of one token stream.

    Attributes
    ----------
    unigrams : ndarray (vocab_size,)
        Count of every token id.
    pairs : ndarray
        Counts of the distinct adjacent pairs seen (zeros may be included; order is irrelevant).
    last : int
        The stream's last token, the one position that starts no pair.
    """

    unigrams: np.ndarray
    pairs: np.ndarray
    last: int

    def shannon(self) -> float:
        """H(X): entropy of the unigram distribution."""
        return _entropy(self.unigrams)

    def joint(self) -> float:
        """H(X_t, X_t+1): entropy of the adjacent-pair distribution."""
        return _entropy(self.pairs)

    def conditional(self) -> float:
        """H(X_t+1 | X_t) = H(X_t, X_t+1) - H(X_t), with H(X_t) over the pairs' first tokens."""
        first = self.unigrams.copy()
        first[self.last] -= 1
        return self.joint() - _entropy(first)


def ngram_counts(chunks: Iterable[np.ndarray], vocab_size: int) -> NgramCounts:
    """Count unigrams and adjacent pairs over consecutive chunks of one token stream.

    The pair that straddles two chunks is counted, so any chunking gives the same counts.

    Parameters
    ----------
    chunks : iterable of integer arrays
        Consecutive pieces of the stream.
    vocab_size : int
        Token ids must lie in ``0 .. vocab_size - 1``.

    Raises
    ------
    BimixInputError
        A token id outside the vocabulary, or fewer than 2 tokens in all.

    Examples
    --------
    >>> c = ngram_counts([np.array([0, 1]), np.array([0, 1])], vocab_size=2)
    >>> c.unigrams.tolist(), sorted(c.pairs[c.pairs > 0].tolist())
    ([2, 2], [1, 2])
    """
    v = int(vocab_size)
    dense = v * v <= _DENSE_PAIRS
    unigrams = np.zeros(v, dtype=np.int64)
    table = np.zeros(v * v if dense else 0, dtype=np.int64)
    keys = np.empty(0, dtype=np.int64)
    prev: int | None = None
    for chunk in chunks:
        ids = np.asarray(chunk).astype(np.int64)
        if ids.size == 0:
            continue
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= v:
            raise BimixInputError(
                f"token id {hi if hi >= v else lo} is outside the vocabulary 0..{v - 1}")
        unigrams += np.bincount(ids, minlength=v)
        codes = ids[:-1] * v + ids[1:]
        if prev is not None:
            codes = np.concatenate(([prev * v + int(ids[0])], codes))
        prev = int(ids[-1])
        if dense:
            table += np.bincount(codes, minlength=v * v)
        else:
            # Merge this chunk's distinct pairs into the running (keys, table): memory grows with
            # the pairs actually seen, never with V^2.
            new, counts = np.unique(codes, return_counts=True)
            keys, inverse = np.unique(np.concatenate((keys, new)), return_inverse=True)
            table = np.bincount(inverse, weights=np.concatenate((table, counts)),
                                minlength=keys.size).astype(np.int64)
    if prev is None or unigrams.sum() < 2:
        raise BimixInputError("need a stream of at least 2 tokens for pair entropies")
    return NgramCounts(unigrams=unigrams, pairs=table, last=prev)


def stream_entropies(
    tokens: np.ndarray, vocab_size: int, *, chunk_tokens: int = CHUNK_TOKENS
) -> dict[str, float]:
    """Shannon, joint and conditional entropy (nats) of a token stream, read in chunks.

    Parameters
    ----------
    tokens : integer array
        The stream; a ``np.memmap`` is read chunk by chunk and never loaded whole.
    vocab_size : int
        Size of the token vocabulary.
    chunk_tokens : int
        Tokens per chunk (bounds memory; the result does not depend on it).

    Returns
    -------
    dict
        ``{"shannon": ..., "joint": ..., "conditional": ...}``.

    Examples
    --------
    >>> h = stream_entropies(np.tile([0, 1, 2], 1000), vocab_size=3)
    >>> round(h["conditional"], 12)
    0.0
    """
    if chunk_tokens < 1:
        raise BimixInputError(f"chunk_tokens must be positive, got {chunk_tokens}")
    chunks = (tokens[i:i + chunk_tokens] for i in range(0, len(tokens), chunk_tokens))
    counts = ngram_counts(chunks, vocab_size)
    return {"shannon": counts.shannon(), "joint": counts.joint(),
            "conditional": counts.conditional()}


# ------------------------------------------------------------------------- von Neumann entropy
def von_neumann_entropy(embeddings: np.ndarray | scipy.sparse.sparray) -> float:
    """Von Neumann entropy (nats) of the trace-normalised linear kernel of row embeddings.

    ``S = -sum(lambda log lambda)`` over the eigenvalues of ``rho = K / tr(K)``, ``K = E E^T``. The
    non-zero eigenvalues of ``E E^T`` and ``E^T E`` agree, so the smaller Gram matrix is decomposed
    (for sparse embeddings, after dropping the all-zero columns). With unit-norm rows, ``S`` ranges
    from 0 (all rows parallel) to ``log n`` (all orthogonal).

    Parameters
    ----------
    embeddings : array or sparse array (n, dim)
        One row per item.

    Examples
    --------
    >>> round(von_neumann_entropy(np.eye(3)), 12) == round(float(np.log(3)), 12)
    True
    """
    e: np.ndarray | scipy.sparse.sparray
    if scipy.sparse.issparse(embeddings):
        e = scipy.sparse.csc_array(embeddings, dtype=np.float64)
        e = e[:, np.flatnonzero(np.diff(e.indptr))]  # drop the hash buckets no item uses
        # A dense product wins while the used buckets are few (byte bigrams: ~4k for 1024 items,
        # 3x faster); a BPE vocabulary uses ~40k, where the sparse product is 10x faster.
        if e.shape[1] <= 8 * e.shape[0]:
            e = e.toarray()
    else:
        e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        raise BimixInputError(f"need a non-empty (items, dim) embedding matrix, got {e.shape}")
    # One BLAS thread: on a shared 2-core machine a threaded eigensolver for n ~ 1000 ran 5-20x
    # slower than a single thread (benchmarks/results/entropy_speed.md); alone it gains little.
    with threadpoolctl.threadpool_limits(1):
        gram = e @ e.T if e.shape[0] <= e.shape[1] else e.T @ e
        gram = gram.toarray() if scipy.sparse.issparse(gram) else gram
        eigenvalues = scipy.linalg.eigh(gram, eigvals_only=True, driver="evr")
    trace = eigenvalues.sum()
    if not trace > 0:
        raise BimixInputError("all embeddings are zero; the kernel has no trace to normalise")
    lam = np.clip(eigenvalues / trace, 0.0, None)  # round-off makes tiny eigenvalues negative
    return float(-scipy.special.xlogy(lam, lam).sum())


def sample_passages(
    tokens: np.ndarray, eot: int, *, n_passages: int = 1024, window: int = 512, seed: int = 0
) -> list[np.ndarray]:
    """Draw passages: documents (split at ``eot``) cut into windows, sampled without replacement.

    Windows, not whole documents, make domains comparable whatever their document lengths (a
    domain of six novels would otherwise have at most six items). Empty documents are skipped.

    Examples
    --------
    >>> [p.tolist() for p in sample_passages(np.array([1, 2, 3, 9, 4, 9]), eot=9, window=2)]
    [[1, 2], [3], [4]]
    """
    if n_passages < 1 or window < 1:
        raise BimixInputError(f"n_passages and window must be positive, got {n_passages}, {window}")
    ends = np.concatenate([i + np.flatnonzero(np.asarray(tokens[i:i + CHUNK_TOKENS]) == eot)
                           for i in range(0, len(tokens), CHUNK_TOKENS)] or [np.empty(0, int)])
    if ends.size == 0 or ends[-1] != len(tokens) - 1:
        ends = np.append(ends, len(tokens))  # a stream without a final eot still ends a document
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    per_doc = -(-lengths // window)  # ceil: windows per document, 0 for an empty document
    win_start = np.repeat(starts, per_doc) + window * (
        np.arange(per_doc.sum()) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc))
    win_end = np.minimum(win_start + window, np.repeat(ends, per_doc))
    if win_start.size == 0:
        raise BimixInputError("no non-empty documents to sample passages from")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(win_start.size, size=min(n_passages, win_start.size), replace=False))
    return [np.asarray(tokens[win_start[i]:win_end[i]]) for i in pick]


def hashed_embeddings(
    passages: Sequence[np.ndarray], vocab_size: int, *, dim: int = 1 << 16
) -> scipy.sparse.csr_array:
    """Embed passages as L2-normalised sublinear counts of hashed token unigrams and bigrams.

    Every unigram ``t`` and adjacent bigram ``(a, b)`` of a passage is hashed (Fibonacci hashing)
    into one of ``dim`` buckets; a bucket hit ``c`` times weighs ``1 + log c``. The sublinear weight
    keeps runs of one frequent n-gram (indentation, spaces) from making every passage look alike.

    Parameters
    ----------
    passages : sequence of integer arrays
        Non-empty token arrays.
    vocab_size : int
        Size of the token vocabulary (bigram codes are ``V + a * V + b``).
    dim : int
        Number of hash buckets, a power of two.

    Returns
    -------
    scipy.sparse.csr_array (len(passages), dim)

    Examples
    --------
    >>> e = hashed_embeddings([np.array([1, 2, 1, 2]), np.array([5])], vocab_size=8, dim=64)
    >>> np.round(e.multiply(e).sum(axis=1), 12).tolist()
    [1.0, 1.0]
    """
    if dim < 2 or dim & (dim - 1):
        raise BimixInputError(f"dim must be a power of two, got {dim}")
    sizes = np.array([len(p) for p in passages], dtype=np.int64)
    if sizes.size == 0 or (sizes == 0).any():
        raise BimixInputError("need at least one passage, and no empty ones")
    ids = np.concatenate([np.asarray(p) for p in passages]).astype(np.int64)
    row = np.repeat(np.arange(sizes.size), sizes)
    inside = row[:-1] == row[1:]  # adjacent pairs that do not straddle two passages
    v = np.int64(vocab_size)
    # unigram t -> t, bigram (a, b) -> V + a * V + b: one code space, disjoint by construction
    code = np.concatenate((ids, v + ids[:-1][inside] * v + ids[1:][inside])).astype(np.uint64)
    row = np.concatenate((row, row[:-1][inside]))
    col = ((code * _GOLDEN) >> np.uint64(65 - int(dim).bit_length())).astype(np.int64)
    key, count = np.unique(row * dim + col, return_counts=True)  # sorted by row, then column
    row, col = np.divmod(key, dim)
    weight = 1.0 + np.log(count)
    weight /= np.sqrt(np.bincount(row, weights=weight**2, minlength=sizes.size))[row]
    indptr = np.searchsorted(row, np.arange(sizes.size + 1))
    return scipy.sparse.csr_array((weight, col, indptr), shape=(sizes.size, dim))


# ------------------------------------------------------------------------------- mixtures
def entropy_mixture(
    entropies: pd.Series, temperature: float = 1.0, *, lower: Bound = None, upper: Bound = None
) -> pd.Series:
    """Mixture proportions from per-domain entropies: ``softmax(H / T)``, optionally bounded.

    With bounds, ``r_i = clip(c * softmax_i, lower_i, upper_i)`` with the one scale ``c`` that makes
    the proportions sum to 1: clipped domains sit at their bound, the free ones keep their softmax
    ratios.

    Parameters
    ----------
    entropies : Series
        Entropy per domain (index: domain).
    temperature : float, default 1.0
        Softmax temperature (1 reproduces the paper).
    lower, upper : float or mapping of domain to float, optional
        Bounds on the proportions, for all domains (a float) or some (a mapping; the others get 0
        and 1).

    Raises
    ------
    BimixInputError
        A non-positive temperature, non-finite entropies, unknown domains in the bounds, or bounds
        that no mixture can meet (``sum(lower) > 1``, ``sum(upper) < 1``, ``lower > upper``).

    Examples
    --------
    >>> h = pd.Series({"code": 2.0, "web": 3.0, "math": 1.0})
    >>> entropy_mixture(h, lower=0.2).round(4).tolist()
    [0.2152, 0.5848, 0.2]
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise BimixInputError(f"temperature must be a positive number, got {temperature}")
    h = entropies.astype(float)
    if h.empty or not np.isfinite(h.to_numpy()).all():
        raise BimixInputError("entropies must be finite numbers, one per domain")
    log_w = scipy.special.log_softmax(h.to_numpy() / temperature)
    lo = _bound_vector(lower, h.index, 0.0, "lower")
    hi = _bound_vector(upper, h.index, 1.0, "upper")
    if (lo > hi).any():
        i = int(np.argmax(lo > hi))
        raise BimixInputError(f"bounds of {h.index[i]!r}: lower {lo[i]} > upper {hi[i]}")
    if lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12:
        raise BimixInputError(f"bounds cannot be met: lower bounds sum to {lo.sum():.6g} and "
                              f"upper bounds to {hi.sum():.6g}; need lower <= 1 <= upper")

    def clipped(t: float) -> np.ndarray:  # proportions at scale c = exp(t), in logs: no underflow
        return np.clip(np.exp(np.minimum(t + log_w, 0.0)), lo, hi)  # hi <= 1 = exp(0)

    # sum(clipped(t)) - 1 rises from sum(lo) - 1 <= 0 (t -> -inf; log_w <= 0, so exp(-60 + log_w)
    # is below 1e-26) to sum(hi) - 1 >= 0 at t = -min(log_w), where every exp(t + log_w) >= 1.
    t_lo, t_hi = -60.0, float(-log_w.min())
    if clipped(t_lo).sum() >= 1.0:
        r = clipped(t_lo)
    else:
        r = clipped(scipy.optimize.brentq(lambda t: clipped(t).sum() - 1.0, t_lo, t_hi,
                                          xtol=1e-14))
    return pd.Series(r / r.sum(), index=h.index, name="proportion")


def _bound_vector(bound: Bound, domains: pd.Index, default: float, which: str) -> np.ndarray:
    if bound is None:
        values = np.full(len(domains), default)
    elif isinstance(bound, Mapping):
        unknown = [d for d in bound if d not in domains]
        if unknown:
            raise BimixInputError(f"{which} bound for unknown domain(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(map(str, domains))}")
        values = np.array([float(bound.get(d, default)) for d in domains])
    else:
        values = np.full(len(domains), float(bound))
    if not (np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
        raise BimixInputError(f"{which} bounds must lie in [0, 1], got {values.tolist()}")
    return values


# ---------------------------------------------------------------------------------- corpora
class EntropyProxies:
    """Entropy proxies of every domain of a corpus, and the mixtures they imply.

    Parameters
    ----------
    kinds : sequence of str, default all of :data:`KINDS`
        Which entropies to compute.
    temperature, lower, upper
        Passed to :func:`entropy_mixture`.
    split : {"train", "val"}, default "train"
        Which shards to read.
    n_passages, window, dim, seed
        The von Neumann entropy's passage sample and embedding (:func:`sample_passages`,
        :func:`hashed_embeddings`).
    chunk_tokens : int
        Streaming chunk size.

    Attributes
    ----------
    entropies_ : DataFrame (domain x kind)
        Entropies in nats.
    mixtures_ : DataFrame
        Wide mixtures, index ``mixture`` = ``"entropy-<kind>"``, one column per domain.

    Examples
    --------
    >>> import tempfile
    >>> from bimix_bayes.corpus import build_corpus
    >>> corpus = build_corpus({"a": ["abab", "abab"], "b": ["a quick fox", "jumps over"]},
    ...                       tempfile.mkdtemp() + "/c")
    >>> proxies = EntropyProxies(kinds=["shannon"]).fit(corpus)
    >>> proxies.mixtures_.round(3).to_dict("index")
    {'entropy-shannon': {'a': 0.212, 'b': 0.788}}
    """

    def __init__(
        self,
        kinds: Sequence[str] = KINDS,
        temperature: float = 1.0,
        *,
        lower: Bound = None,
        upper: Bound = None,
        split: str = "train",
        n_passages: int = 1024,
        window: int = 512,
        dim: int = 1 << 16,
        seed: int = 0,
        chunk_tokens: int = CHUNK_TOKENS,
    ) -> None:
        self.kinds = kinds
        self.temperature = temperature
        self.lower = lower
        self.upper = upper
        self.split = split
        self.n_passages = n_passages
        self.window = window
        self.dim = dim
        self.seed = seed
        self.chunk_tokens = chunk_tokens

    def fit(
        self, corpus: Corpus | str | os.PathLike[str], *, log: Callable[[str], None] | None = None
    ) -> EntropyProxies:
        """Compute the entropies of every domain of ``corpus`` (a :class:`Corpus` or its directory).

        ``log``, if given, is called with one progress line per domain.
        """
        from bimix_bayes.corpus import Corpus

        kinds = list(dict.fromkeys(self.kinds))
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise BimixInputError(f"unknown entropy kind(s) {bad}; choose from {', '.join(KINDS)}")
        if not isinstance(corpus, Corpus):
            corpus = Corpus.open(corpus)
        corpus.verify()  # a Corpus opened with verify=False, too (cached: cheap when done)
        # Check the cheap settings before reading any shard.
        if self.n_passages < 1 or self.window < 1 or self.chunk_tokens < 1:
            raise BimixInputError("n_passages, window and chunk_tokens must be positive, got "
                                  f"{self.n_passages}, {self.window}, {self.chunk_tokens}")
        if self.dim < 2 or self.dim & (self.dim - 1):
            raise BimixInputError(f"dim must be a power of two, got {self.dim}")
        entropy_mixture(pd.Series(0.0, index=corpus.domains), self.temperature,
                        lower=self.lower, upper=self.upper)
        rows = {}
        for domain in corpus.domains:
            tokens = corpus.tokens(domain, self.split)
            try:
                row = {}
                if set(kinds) & {"shannon", "joint", "conditional"}:
                    row.update(stream_entropies(tokens, corpus.vocab_size,
                                                chunk_tokens=self.chunk_tokens))
                if "von-neumann" in kinds:
                    passages = sample_passages(tokens, corpus.eot, n_passages=self.n_passages,
                                               window=self.window, seed=self.seed)
                    row["von-neumann"] = von_neumann_entropy(
                        hashed_embeddings(passages, corpus.vocab_size, dim=self.dim))
            except BimixInputError as exc:
                raise BimixInputError(exc.problem,
                                      path=corpus.shard_path(domain, self.split)) from None
            rows[domain] = {k: row[k] for k in kinds}
            if log is not None:
                log(f"{domain}: " + ", ".join(f"{k} {row[k]:.4f}" for k in kinds))
        self.entropies_ = pd.DataFrame.from_dict(rows, orient="index").rename_axis(
            index="domain", columns="kind")
        self.mixtures_ = pd.DataFrame(
            {f"entropy-{k}": entropy_mixture(self.entropies_[k], self.temperature,
                                             lower=self.lower, upper=self.upper)
             for k in kinds}).T.rename_axis(index="mixture", columns="domain")
        return self

    def to_frame(self) -> pd.DataFrame:
        """The tidy table ``domain,kind,entropy,proportion`` (one row per domain and kind)."""
        entropy = self.entropies_.stack().rename("entropy")
        proportion = self.mixtures_.rename(index=lambda m: m.removeprefix("entropy-")).T.stack()
        frame = pd.concat([entropy, proportion.rename("proportion")], axis=1).reset_index()
        frame.columns = ["domain", "kind", "entropy", "proportion"]
        order = {k: i for i, k in enumerate(self.entropies_.columns)}
        return frame.sort_values("kind", key=lambda s: s.map(order), kind="stable").reset_index(
            drop=True)


def entropy_design(
    corpus: Corpus | str | os.PathLike[str],
    temperature: float = 1.0,
    *,
    lower: Bound = None,
    upper: Bound = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The planner's default initial design: the four entropy mixtures of a corpus.

    Returns
    -------
    DataFrame
        Wide mixtures (index ``mixture`` = ``entropy-shannon``, ``entropy-conditional``,
        ``entropy-joint``, ``entropy-von-neumann``; one column per corpus domain), ready for
        :func:`bimix_bayes.mixtures.write_mixtures` and ``bimix train``.

    Examples
    --------
    >>> import tempfile
    >>> from bimix_bayes.corpus import build_corpus
    >>> corpus = build_corpus({"a": ["abab", "abab"], "b": ["a quick fox", "jumps over"]},
    ...                       tempfile.mkdtemp() + "/c")
    >>> entropy_design(corpus).index.tolist()
    ['entropy-shannon', 'entropy-conditional', 'entropy-joint', 'entropy-von-neumann']
    """
    proxies = EntropyProxies(KINDS, temperature, lower=lower, upper=upper, seed=seed)
    return proxies.fit(corpus).mixtures_
