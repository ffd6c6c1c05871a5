"""Token corpora of real text domains for the proxy-model trainer (torch-free).

:class:`Corpus` reads a built corpus (``manifest.json`` plus per-domain uint16 shards);
:func:`build_corpus` writes one from per-domain documents. See :mod:`bimix_bayes.corpus.reader` for
the on-disk format.

Examples
--------
>>> import tempfile
>>> corpus = Corpus.open(build_corpus({"a": ["x", "y"]}, tempfile.mkdtemp() + "/c"))
>>> corpus.domains, corpus.vocab_size
(['a'], 257)
"""

from bimix_bayes.corpus.build import build_corpus
from bimix_bayes.corpus.reader import Corpus

__all__ = ["Corpus", "build_corpus"]
