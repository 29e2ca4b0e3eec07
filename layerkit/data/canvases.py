"""Multi-digit MNIST canvases: 1–4 real digits side by side, with a caption and a per-pixel
label map, for captioning and segmentation alike."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..validation import float_dtype, number_in, one_of, positive_int
from .images import load_mnist5k
from .synthetic import DigitTask

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class DigitCanvases:
    """Canvases of MNIST digits made by :func:`digit_canvases`.

    Token ids (as :class:`~layerkit.data.DigitTask`): ``PAD = 0``, ``BOS = 1``, ``EOS = 2``,
    the word of digit d -> ``d + 3``; ``VOCAB`` lists the words by id, ``VOCAB_SIZE = 13``.
    Label-map classes: 0 background, ``1 + d`` on the strokes of digit d; ``NUM_CLASSES = 11``.

    Attributes
    ----------
    images : float ``(N, 1, 28, 28·M)``
        Pixel values in [0, 1]; M = ``max_digits``.
    captions : int64 ``(N, M + 2)``
        ``BOS``, one word per digit left to right, ``EOS``, then ``PAD``. For teacher forcing
        feed ``captions[:, :-1]`` and predict ``captions[:, 1:]``.
    caption_lengths : int64 ``(N,)``
        Digits + 2 (``BOS`` and ``EOS``).
    labels : int64 ``(N, 28, 28·M)``
        The label map (see :func:`digit_canvases` for the rule).
    digits : int64 ``(N, M)``
        The digit classes left to right, −1 after the last.
    sources : int64 ``(N, M)``
        Each digit's row in the split's MNIST-5k images (``x_train`` or ``x_test``), −1 after
        the last.
    columns : int64 ``(N, M)``
        The first canvas column of each digit's 28 × 28 cell, −1 after the last.
    """

    images: np.ndarray
    captions: np.ndarray
    caption_lengths: np.ndarray
    labels: np.ndarray
    digits: np.ndarray
    sources: np.ndarray
    columns: np.ndarray

    PAD: ClassVar[int] = DigitTask.PAD
    BOS: ClassVar[int] = DigitTask.BOS
    EOS: ClassVar[int] = DigitTask.EOS
    VOCAB: ClassVar[tuple] = ("<pad>", "<bos>", "<eos>") + DIGIT_WORDS
    VOCAB_SIZE: ClassVar[int] = DigitTask.VOCAB_SIZE
    NUM_CLASSES: ClassVar[int] = 11

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def decode(cls, ids) -> str:
        """The words of a caption's ids, BOS and PAD left out, up to the first EOS:
        ``[1, 10, 5, 12, 2, 0] -> "seven two nine"``."""
        return " ".join(DIGIT_WORDS[int(d)] for d in DigitTask.decode(ids))

    def text(self, i: int) -> str:
        """The caption of canvas ``i`` as words."""
        return self.decode(self.captions[i])


def _key(text: str) -> int:
    """K(text): the first 8 bytes, big-endian, of BLAKE2b(text) with digest size 8."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def digit_canvases(n: int, *, split: str = "train", min_digits: int = 1, max_digits: int = 4,
                   threshold: float = 0.5, seed: int = 0, dtype=np.float32) -> DigitCanvases:
    """N canvases of 1–4 MNIST-5k digits side by side, their captions and label maps.

    Parameters
    ----------
    n : int
        Number of canvases N.
    split : {"train", "test"}
        Draw the digits from :func:`load_mnist5k`'s 4,000 training images or from its 1,000
        test images only, so test canvases hold no digit a model trained on train canvases saw.
    min_digits, max_digits : int
        The number of digits per canvas, 1 <= min_digits <= max_digits; the canvas is
        28 × (28 · max_digits) pixels (28 × 112 for the default 4).
    threshold : float in (0, 1]
        A pixel belongs to a digit's stroke when its value (in [0, 1], compared in float64
        whatever ``dtype``) is >= threshold.
    seed : int >= 0
        Another seed gives other canvases; the same seed always the same ones.
    dtype : float32 or float64

    Returns
    -------
    DigitCanvases

    Notes
    -----
    The rule uses no random number generator. With K(s) = int.from_bytes(BLAKE2b(s, digest
    size 8), "big"), salt = f"layerkit/canvases/0/{split}/{seed}", P the number of images in the
    split (4,000 or 1,000) and M = max_digits, canvas i (0-based)

    - has k = min_digits + K(f"{salt}:{i}") mod (max_digits − min_digits + 1) digits;
    - its t-th digit (t = 0 … k − 1, left to right) is the split's image number
      K(f"{salt}:{i}:{t}") mod P (drawn independently: the same image may recur);
    - the k cells of 28 × 28 pixels stand side by side from column
      c = K(f"{salt}:{i}:offset") mod (28 · (M − k) + 1), cell t at columns c + 28t … c + 28t + 27;
      every other pixel is 0;
    - its caption is BOS, the words of the k digit classes left to right, EOS, then PAD;
    - label[y, x] = 1 + d where (y, x) lies in the cell of a digit of class d and the pixel is
      >= ``threshold``, else 0 (cells never overlap, so each pixel has one label).
    """
    who = "digit_canvases"
    n = positive_int(who, "n", n)
    one_of(who, "split", split, ("train", "test"))
    min_digits = positive_int(who, "min_digits", min_digits)
    max_digits = positive_int(who, "max_digits", max_digits)
    if min_digits > max_digits:
        raise ValueError(f"{who}: expected min_digits <= max_digits, got min_digits="
                         f"{min_digits}, max_digits={max_digits}")
    threshold = number_in(who, "threshold", threshold, 0.0, 1.0, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{who}: seed must be a non-negative integer, got {seed!r}")
    dt = float_dtype(dtype, who)
    x_train, y_train, x_test, y_test = load_mnist5k(dtype=np.float64)  # labels: dtype-free
    pool, classes = (x_train, y_train) if split == "train" else (x_test, y_test)
    P, M = len(pool), max_digits
    images = np.zeros((n, 1, 28, 28 * M), dtype=dt)
    labels = np.zeros((n, 28, 28 * M), dtype=np.int64)
    captions = np.full((n, M + 2), DigitCanvases.PAD, dtype=np.int64)
    digits, sources, columns = (np.full((n, M), -1, dtype=np.int64) for _ in range(3))
    lengths = np.zeros(n, dtype=np.int64)
    salt = f"layerkit/canvases/0/{split}/{int(seed)}"
    for i in range(n):
        k = min_digits + _key(f"{salt}:{i}") % (max_digits - min_digits + 1)
        start = _key(f"{salt}:{i}:offset") % (28 * (M - k) + 1)
        captions[i, 0] = DigitCanvases.BOS
        for t in range(k):
            row = _key(f"{salt}:{i}:{t}") % P
            d = int(classes[row])
            c = start + 28 * t
            cell = pool[row, 0]
            images[i, 0, :, c:c + 28] = cell
            labels[i, :, c:c + 28] = np.where(cell >= threshold, 1 + d, 0)
            digits[i, t], sources[i, t], columns[i, t] = d, row, c
            captions[i, 1 + t] = d + DigitTask.DIGIT_OFFSET
        captions[i, k + 1] = DigitCanvases.EOS
        lengths[i] = k + 2
    return DigitCanvases(images, captions, lengths, labels, digits, sources, columns)
