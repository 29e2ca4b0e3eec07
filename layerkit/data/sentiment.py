"""Sentiment classification data: a synthetic task whose label depends on word order
(negation), and a reader for the IMDB review folder layout (aclImdb)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..validation import positive_int

__all__ = ["sentiment_sequences", "SentimentTask", "polarity_score", "load_imdb_reviews", "Reviews",
           "POSITIVE_WORDS", "NEGATIVE_WORDS", "NEUTRAL_WORDS", "NEGATIONS"]

POSITIVE_WORDS = ("good", "great", "excellent", "wonderful", "superb", "lovely", "brilliant",
                  "enjoyable", "delightful", "moving")
NEGATIVE_WORDS = ("bad", "awful", "terrible", "boring", "dull", "poor", "weak", "horrible",
                  "tedious", "clumsy")
NEUTRAL_WORDS = ("the", "a", "film", "movie", "plot", "actor", "scene", "story", "was", "is",
                 "and", "it", "this", "of", "with", "music", "ending", "cast", "script", "very",
                 "quite", "really", "seemed", "felt", "director", "camera", "dialogue", "pace",
                 "role", "show")
NEGATIONS = ("not", "never", "hardly")


@dataclass(frozen=True)
class SentimentTask:
    """Padded batches of the synthetic sentiment task (:func:`sentiment_sequences`).

    Token ids: ``PAD = 0``, then :data:`NEGATIONS`, :data:`POSITIVE_WORDS`,
    :data:`NEGATIVE_WORDS` and :data:`NEUTRAL_WORDS` in that order (``TOKENS``). Labels: 0
    negative, 1 positive.

    Attributes
    ----------
    ids : int64 (N, max_len)
        The words, then PAD.
    lengths : int64 (N,)
    labels : int64 (N,)
    """

    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    PAD: ClassVar[int] = 0
    TOKENS: ClassVar[tuple] = ("<pad>",) + NEGATIONS + POSITIVE_WORDS + NEGATIVE_WORDS \
        + NEUTRAL_WORDS
    VOCAB_SIZE: ClassVar[int] = len(TOKENS)

    @classmethod
    def decode(cls, ids) -> str:
        """The words of one row, PAD dropped."""
        return " ".join(cls.TOKENS[i] for i in np.asarray(ids).tolist() if i != cls.PAD)


_NEG0 = 1
_POS0 = _NEG0 + len(NEGATIONS)
_BAD0 = _POS0 + len(POSITIVE_WORDS)
_NEU0 = _BAD0 + len(NEGATIVE_WORDS)


def polarity_score(ids: np.ndarray) -> np.ndarray:
    """The rule's score of each row of ids (N, T): Σ over sentiment words of +1 (positive) or
    −1 (negative), each flipped when the word right before it is a negation."""
    pos = (ids >= _POS0) & (ids < _BAD0)
    neg = (ids >= _BAD0) & (ids < _NEU0)
    sign = pos.astype(np.int64) - neg.astype(np.int64)
    negated = np.zeros_like(sign, dtype=bool)
    negated[:, 1:] = (ids[:, :-1] >= _NEG0) & (ids[:, :-1] < _POS0)
    return np.where(negated, -sign, sign).sum(axis=1)


def sentiment_sequences(n: int, *, min_len: int = 6, max_len: int = 16,
                        seed=None) -> SentimentTask:
    """n synthetic reviews, half positive and half negative, of min_len..max_len words.

    The rule: each review has 1 to 3 sentiment words (positive or negative, equally likely),
    each preceded by a negation word with probability 0.4; the other positions are neutral
    words. A sentiment word counts +1 if positive, −1 if negative, with the sign flipped when
    the word just before it is a negation ("not good" −1, "never boring" +1). The label is
    positive when the sum is > 0, negative when < 0; drafts summing to 0 are drawn again, and
    the batch is balanced by drawing until n/2 of each are found (odd n: one more negative).
    A bag of words does not see which word a negation precedes, so it cannot get every review
    right; a recurrent model reading in order can.

    Returns
    -------
    SentimentTask
        ``ids`` int64 (n, max_len), ``lengths`` (n,), ``labels`` (n,) in {0, 1}, in random order.
    """
    who = "sentiment_sequences"
    n = positive_int(who, "n", n)
    min_len, max_len = positive_int(who, "min_len", min_len), positive_int(who, "max_len",
                                                                           max_len)
    if not 6 <= min_len <= max_len:
        raise ValueError(f"{who}: expected 6 <= min_len <= max_len (room for 3 negated "
                         f"sentiment words), got min_len={min_len}, max_len={max_len}")
    rng = np.random.default_rng(seed)
    want = {1: n // 2, 0: n - n // 2}
    rows, labels = [], []
    while want[0] or want[1]:
        length = int(rng.integers(min_len, max_len + 1))
        words = list(_NEU0 + rng.integers(0, len(NEUTRAL_WORDS), length))
        slots = rng.choice(length // 2, size=int(rng.integers(1, 4)), replace=False)
        for s in slots:                            # positions 2s (negation) and 2s + 1 (word)
            good = rng.random() < 0.5
            base, count = (_POS0, len(POSITIVE_WORDS)) if good else (_BAD0, len(NEGATIVE_WORDS))
            words[2 * s + 1] = base + int(rng.integers(count))
            if rng.random() < 0.4:
                words[2 * s] = _NEG0 + int(rng.integers(len(NEGATIONS)))
        score = int(polarity_score(np.array([words]))[0])
        label = 1 if score > 0 else 0
        if score == 0 or not want[label]:
            continue
        want[label] -= 1
        rows.append(words)
        labels.append(label)
    order = rng.permutation(n)
    ids = np.zeros((n, max_len), dtype=np.int64)
    lengths = np.array([len(rows[i]) for i in order], dtype=np.int64)
    for r, i in enumerate(order):
        ids[r, :len(rows[i])] = rows[i]
    return SentimentTask(ids, lengths, np.array(labels, dtype=np.int64)[order])


@dataclass(frozen=True)
class Reviews:
    """Labelled reviews: ``texts`` (str), ``labels`` (1 positive, 0 negative), ``ratings``
    (the 1-10 stars in the file name) and the file ``ids``, in sorted file order."""

    texts: list
    labels: np.ndarray
    ratings: np.ndarray
    ids: list


def load_imdb_reviews(folder, split: str = "train") -> Reviews:
    """Reviews in the layout of the Large Movie Review Dataset (Maas et al. 2011, aclImdb):
    ``folder/<split>/pos/*.txt`` and ``folder/<split>/neg/*.txt``, one review a file, named
    ``<id>_<rating>.txt``; UTF-8, ``<br />`` line breaks replaced by a space.

    Reads the files of ``split`` ("train" or "test"); negatives first, then positives, each
    sorted by id. Raises FileNotFoundError if a ``pos`` or ``neg`` folder is missing and
    ValueError for a file name not of that form.
    """
    who = "load_imdb_reviews"
    if split not in ("train", "test"):
        raise ValueError(f"{who}: split must be 'train' or 'test', got {split!r}")
    texts, labels, ratings, ids = [], [], [], []
    for label, sub in ((0, "neg"), (1, "pos")):
        where = Path(folder) / split / sub
        if not where.is_dir():
            raise FileNotFoundError(f"{who}: expected the folder {where} (aclImdb layout: "
                                    f"<folder>/{split}/pos and <folder>/{split}/neg)")
        named = []
        for path in where.glob("*.txt"):
            stem, _, stars = path.stem.partition("_")
            if not (stem.isdigit() and stars.isdigit()):
                raise ValueError(f"{who}: expected files named <id>_<rating>.txt, got {path}")
            named.append((int(stem), int(stars), path))
        for review_id, stars, path in sorted(named):
            texts.append(path.read_text(encoding="utf-8").replace("<br />", " "))
            labels.append(label)
            ratings.append(stars)
            ids.append(f"{sub}/{review_id}")
    return Reviews(texts, np.array(labels, dtype=np.int64), np.array(ratings, dtype=np.int64),
                   ids)
