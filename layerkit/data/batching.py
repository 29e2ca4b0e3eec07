"""Mini-batches of arrays, one-hot labels and truncated-BPTT windows of a token stream."""

from __future__ import annotations

import numpy as np

from ..validation import check_array, flag, float_dtype, generator, positive_int


class Batches:
    """Mini-batches of ``(x, y)``; made by :func:`batches`, which documents it."""

    def __init__(self, x, y, batch_size, *, shuffle=True, seed=None, drop_last=False):
        who = "batches"
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            bad, arr = ("x", x) if not isinstance(x, np.ndarray) else ("y", y)
            raise TypeError(f"{who}: expected {bad} to be a numpy array, got {type(arr).__name__}")
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"{who}: expected x and y with the same number of samples N on axis "
                             f"0, got shapes {x.shape} and {y.shape}")
        self.x, self.y = x, y
        self.batch_size = positive_int(who, "batch_size", batch_size)
        self.shuffle = flag(who, "shuffle", shuffle)
        self.drop_last = flag(who, "drop_last", drop_last)
        self.rng = generator(who, "seed", seed)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for k in range(len(self)):
            rows = order[k * self.batch_size:(k + 1) * self.batch_size]
            yield self.x[rows], self.y[rows]

    def __repr__(self) -> str:
        return (f"Batches(N={len(self.x)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")


def batches(x, y, batch_size, *, shuffle=True, seed=None, drop_last=False) -> Batches:
    """Mini-batches ``(x[rows], y[rows])`` over axis 0, reshuffled every epoch.

    Parameters
    ----------
    x, y : ndarray
        Inputs ``(N, ...)`` and targets ``(N, ...)`` with the same N; any dtypes.
    batch_size : int
        Rows per batch; the last batch is smaller unless ``drop_last``.
    shuffle : bool
        Visit the rows in a random order (a new permutation each time the object is iterated);
        otherwise in order 0..N-1.
    seed : int, numpy Generator or None
        Seeds the shuffling: the same seed gives the same sequence of epochs.
    drop_last : bool
        Skip the last, incomplete batch.

    Returns
    -------
    Batches
        Iterable (once per epoch) with ``len()`` = number of batches. Each item is a pair of
        copies, ``(B, ...)`` with x's and y's dtypes.

    Examples
    --------
    >>> data = batches(x_train, y_train, 64, seed=0)
    >>> for epoch in range(3):
    ...     for xb, yb in data:          # a new order each epoch
    ...         ...
    """
    return Batches(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)


def one_hot(labels, num_classes, dtype=np.float32) -> np.ndarray:
    """One-hot encode class ids: ``out[..., k] = 1`` where ``labels == k``, else 0.

    Parameters
    ----------
    labels : ndarray of int, any shape ``S``
        Class ids in ``[0, num_classes)``.
    num_classes : int
        Number of classes K.
    dtype : float32 or float64

    Returns
    -------
    ndarray of shape ``S + (K,)`` and the given dtype.

    Raises
    ------
    ValueError
        If a label lies outside ``[0, num_classes)``.
    """
    who = "one_hot"
    k = positive_int(who, "num_classes", num_classes)
    who = f"one_hot(num_classes={k})"
    dt = float_dtype(dtype, who)
    check_array(who, labels, (...,), name="labels", kind="int")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"{who}: expected labels in [0, {k}), got values from {labels.min()} "
                         f"to {labels.max()}")
    out = np.zeros(labels.shape + (k,), dtype=dt)
    np.put_along_axis(out, labels[..., None].astype(np.intp), 1, axis=-1)
    return out


class SequenceBatches:
    """Truncated-BPTT windows of one token stream; made by :func:`sequence_batches`."""

    def __init__(self, ids, batch_size, seq_len, *, drop_last=False):
        who = "sequence_batches"
        check_array(who, ids, ("L",), name="ids", kind="int")
        self.batch_size = positive_int(who, "batch_size", batch_size)
        self.seq_len = positive_int(who, "seq_len", seq_len)
        self.drop_last = flag(who, "drop_last", drop_last)
        b = self.batch_size
        self.stream_len = (ids.size - 1) // b
        if self.stream_len < 1 or (self.drop_last and self.stream_len < self.seq_len):
            need = b * (self.seq_len if self.drop_last else 1) + 1
            raise ValueError(f"{who}: expected ids of length >= {need} for batch_size={b}"
                             + (f", seq_len={self.seq_len}, drop_last=True" if self.drop_last
                                else "") + f", got {ids.size}")
        if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{who}: expected ids below 2**63 (they become int64), got "
                             f"{ids.max()}")
        s = self.stream_len
        self.inputs = ids[:b * s].astype(np.int64).reshape(b, s)
        self.targets = ids[1:b * s + 1].astype(np.int64).reshape(b, s)

    def __len__(self) -> int:
        s, t = self.stream_len, self.seq_len
        return s // t if self.drop_last else -(-s // t)

    def __iter__(self):
        t = self.seq_len
        for k in range(len(self)):
            window = slice(k * t, (k + 1) * t)
            yield (np.ascontiguousarray(self.inputs[:, window]),
                   np.ascontiguousarray(self.targets[:, window]))

    def __repr__(self) -> str:
        return (f"SequenceBatches(batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"stream_len={self.stream_len}, drop_last={self.drop_last})")


def sequence_batches(ids, batch_size, seq_len, *, drop_last=False) -> SequenceBatches:
    """Cut a token stream into ``(inputs, targets)`` windows for truncated BPTT.

    The stream is cut into ``batch_size`` contiguous pieces of ``S = (L - 1) // batch_size``
    tokens, one per batch row (the last ``L - 1 - batch_size * S`` tokens are unused). The
    windows walk along the pieces in order, ``seq_len`` steps at a time, so row ``r`` of a window
    continues row ``r`` of the previous one: carry the final hidden state over as the next
    ``h0``. Targets are the inputs shifted by one token: in window ``k``,
    ``inputs[r, t] = ids[r * S + k * seq_len + t]`` and
    ``targets[r, t] = ids[r * S + k * seq_len + t + 1]``.

    Parameters
    ----------
    ids : ndarray of int, shape ``(L,)``
        The encoded text, e.g. ``CharVocab.encode(text)``.
    batch_size : int
        Rows B (independent streams).
    seq_len : int
        Time steps T per window; the last window is shorter unless ``drop_last``.
    drop_last : bool
        Skip the last, shorter window.

    Returns
    -------
    SequenceBatches
        Iterable of ``(inputs, targets)``, both int64 of shape ``(B, T)``, in order; ``len()``
        is the number of windows. Iterating again gives the same windows.
    """
    return SequenceBatches(ids, batch_size, seq_len, drop_last=drop_last)
