"""Synthetic tasks: sequence-to-sequence on digit strings (reverse, sort, copy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..validation import one_of, positive_int


@dataclass(frozen=True)
class DigitTask:
    """A batch of a synthetic seq2seq task on digit strings; made by :func:`seq2seq_digits`.

    Token ids: ``PAD = 0``, ``BOS = 1`` (start), ``EOS = 2`` (end), digit ``d`` -> ``d + 3``;
    ``VOCAB_SIZE = 13``.

    Attributes
    ----------
    source : int64 ``(N, max_len + 1)``
        The digits, then ``EOS``, then ``PAD``.
    target : int64 ``(N, max_len + 2)``
        ``BOS``, the answer's digits, ``EOS``, then ``PAD``. For teacher forcing feed
        ``target[:, :-1]`` to the decoder and predict ``target[:, 1:]``.
    source_lengths : int64 ``(N,)``
        Digits + 1 (the ``EOS``), the ``lengths=`` for a recurrent encoder.
    target_lengths : int64 ``(N,)``
        Digits + 2 (``BOS`` and ``EOS``).
    """

    source: np.ndarray
    target: np.ndarray
    source_lengths: np.ndarray
    target_lengths: np.ndarray

    PAD: ClassVar[int] = 0
    BOS: ClassVar[int] = 1
    EOS: ClassVar[int] = 2
    DIGIT_OFFSET: ClassVar[int] = 3
    VOCAB_SIZE: ClassVar[int] = 13

    @classmethod
    def decode(cls, ids) -> str:
        """The digit string of one row of ids: digits up to the first ``EOS``; BOS/PAD skipped."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == cls.EOS:
                break
            if i >= cls.DIGIT_OFFSET:
                out.append(str(i - cls.DIGIT_OFFSET))
        return "".join(out)


def seq2seq_digits(n, *, task="reverse", min_len=1, max_len=8, seed=None) -> DigitTask:
    """Random digit strings and their transformation, for sequence-to-sequence models.

    Parameters
    ----------
    n : int
        Number of examples N.
    task : {"reverse", "sort", "copy"}
        The answer: the digits reversed, sorted ascending, or unchanged.
    min_len, max_len : int
        Each string's length is drawn uniformly from ``[min_len, max_len]``.
    seed : int, numpy Generator or None
        The same seed gives the same examples.

    Returns
    -------
    DigitTask
        ``source`` (N, max_len + 1), ``target`` (N, max_len + 2), lengths (N,); all int64.
    """
    who = "seq2seq_digits"
    n = positive_int(who, "n", n)
    one_of(who, "task", task, ("reverse", "sort", "copy"))
    min_len = positive_int(who, "min_len", min_len)
    max_len = positive_int(who, "max_len", max_len)
    if min_len > max_len:
        raise ValueError(f"{who}: expected min_len <= max_len, got min_len={min_len}, "
                         f"max_len={max_len}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    digits = rng.integers(0, 10, size=(n, max_len))
    source = np.full((n, max_len + 1), DigitTask.PAD, dtype=np.int64)
    target = np.full((n, max_len + 2), DigitTask.PAD, dtype=np.int64)
    target[:, 0] = DigitTask.BOS
    for i, m in enumerate(lengths.tolist()):
        s = digits[i, :m]
        answer = {"reverse": s[::-1], "sort": np.sort(s), "copy": s}[task]
        source[i, :m] = s + DigitTask.DIGIT_OFFSET
        source[i, m] = DigitTask.EOS
        target[i, 1:m + 1] = answer + DigitTask.DIGIT_OFFSET
        target[i, m + 1] = DigitTask.EOS
    return DigitTask(source, target, (lengths + 1).astype(np.int64),
                     (lengths + 2).astype(np.int64))
