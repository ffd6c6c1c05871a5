"""Token corpora of real text domains for the proxy-model trainer (torch-free).

:class:`Corpus` reads a built corpus (``manifest.json`` plus per-domain uint16 shards);
:func:`build_corpus` writes one from per-domain documents; :func:`build_embedded_corpus` builds one
offline from the slice committed in the package, and :func:`build_full_corpus` the eight default
domains from installed Debian packages and wheels. See :mod:`bimix_bayes.corpus.reader` for the
on-disk format.

Examples
--------
>>> import tempfile
>>> corpus = Corpus.open(build_corpus({"a": ["x", "y"]}, tempfile.mkdtemp() + "/c"))
>>> corpus.domains, corpus.vocab_size
(['a'], 257)
"""

from bimix_bayes.corpus.build import build_corpus
from bimix_bayes.corpus.embedded import build_embedded_corpus
from bimix_bayes.corpus.reader import Corpus
from bimix_bayes.corpus.sources import build_full_corpus

__all__ = ["Corpus", "build_corpus", "build_embedded_corpus", "build_full_corpus"]
