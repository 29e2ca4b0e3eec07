"""Embedding: a lookup table of learned vectors indexed by integer ids."""

from __future__ import annotations

import numbers

import numpy as np

from ..layer import Layer
from ..validation import allocation, check_array, float_dtype, initial_weight, positive_int


def _standard_normal(shape, *, rng=None, dtype=np.float32) -> np.ndarray:
    """N(0, 1), PyTorch's default for ``nn.Embedding`` (drawn in float64, then cast)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return rng.standard_normal(shape).astype(float_dtype(dtype, "Embedding"))


class Embedding(Layer):
    r"""Lookup table: row ``ids[...]`` of a learned matrix ``W``, ``y[..., :] = W[ids[...], :]``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        V (the number of rows, i.e. the vocabulary size) and E (the length of each vector).
    padding_idx : int, optional
        A row that starts at zero and never receives a gradient (PyTorch semantics), e.g. for the
        padding token of variable-length sequences. As in PyTorch, a negative value counts from the
        end (``-1`` means ``V - 1``) and is stored normalised; it must lie in ``[-V, V)``.
    dtype : float32 (default) or float64
        dtype of the weight, and therefore of the output.
    weight_init : callable, default N(0, 1)
        ``weight_init(shape, rng=..., dtype=...)``; PyTorch's default is the standard normal.
    seed : int or numpy Generator, optional
        Seed of the initializer.

    Shape
    -----
    ids : any shape S of an integer dtype, usually ``(N,)`` or ``(N, T)``; every id in ``[0, V)``.
    Negative ids are an error, not Python-style indexing from the end.
    y : S + (E,), in the weight's dtype (the ids carry no float dtype to follow).

    Notes
    -----
    y is linear in W: each output vector is a copy of one row. With δ = ∂L/∂y (shape S + (E,)),

    ∂L/∂W[v, :] = Σ_{positions p with ids[p] = v} δ[p, :]

    — a scatter-add, so an id used several times accumulates the sum of its δ rows; rows no id
    selected get zero. The ids are integers: there is no ∂L/∂ids, and ``backward`` returns
    ``None`` (the gradient checker then checks only ``weight``).

    ``padding_idx`` is frozen, not differentiated: its gradient row is set to zero even though y
    does depend on ``W[padding_idx]`` (PyTorch does the same). This is the one place where
    ``grads["weight"]`` is deliberately not ∂⟨y, δ⟩/∂W, and a finite-difference check on ids that
    contain ``padding_idx`` reports that row; check with ids that avoid it.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, padding_idx=None,
                 dtype=np.float32, weight_init=None, seed=None):
        super().__init__()
        name = type(self).__name__
        self.num_embeddings = positive_int(name, "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int(name, "embedding_dim", embedding_dim)
        self.padding_idx = None
        if padding_idx is not None:
            v = self.num_embeddings
            if (isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral)
                    or not -v <= padding_idx < v):
                raise ValueError(f"{self!r}: padding_idx must be an integer in [{-v}, {v}), "
                                 f"got {padding_idx!r}")
            self.padding_idx = int(padding_idx) % v
        dt = float_dtype(dtype, repr(self))
        rng = np.random.default_rng(seed)
        weight_init = weight_init or _standard_normal
        shape = allocation(repr(self), "weight", (self.num_embeddings, self.embedding_dim), dt)
        weight = initial_weight(repr(self), "weight", weight_init(shape, rng=rng, dtype=dt), shape, dt)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0
        self.add_param("weight", weight)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"

    def forward(self, ids: np.ndarray) -> np.ndarray:
        check_array(self, ids, (...,), name="ids", kind="int")
        v = self.num_embeddings
        if ids.size:
            bad = (ids < 0) | (ids >= v)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{self!r}: ids must be in [0, {v}), got {ids[where]} at "
                                 f"index {where}")
        ids = np.array(ids, dtype=np.intp)    # a private copy: the caller may reuse its buffer
        self._cache = ids
        return self.params["weight"].take(ids, axis=0)

    def backward(self, dy: np.ndarray) -> None:
        """Scatter-add ``dy`` into the rows of ``grads["weight"]`` that forward used.

        Returns ``None``: integer ids have no gradient.
        """
        ids = self.saved()
        self.check_dy(dy, ids.shape + (self.embedding_dim,))
        grad = self.grads["weight"]
        rows = ids.reshape(-1)
        dy2 = dy.reshape(-1, self.embedding_dim).astype(grad.dtype, copy=False)
        if self.padding_idx is not None:
            keep = rows != self.padding_idx
            rows, dy2 = rows[keep], dy2[keep]
        np.add.at(grad, rows, dy2)    # unbuffered: repeated ids accumulate
        return None
