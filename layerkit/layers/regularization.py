"""Regularization layers: Dropout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array, number_in


class _DropoutCache(NamedTuple):
    """What Dropout.backward needs."""

    scale: np.ndarray       # m / (1 − p) (x's shape), or ones of shape (1, ...) in evaluation
    x_shape: tuple


class Dropout(Layer):
    """Inverted dropout: in training, y = x ⊙ m / (1 − p) with m_i ~ Bernoulli(1 − p); in
    evaluation, y = x.

    The scaling by 1/(1 − p) during training keeps E[y] = x, so nothing changes at test time.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of zeroing an element.
    seed : int or numpy Generator, optional
        Seed of the layer's own generator ``self.rng``. A gradient check freezes the randomness by
        restoring ``self.rng``'s state before each forward.

    Shape
    -----
    y has the shape and dtype of x.

    Notes
    -----
    ∂L/∂x = δ ⊙ m / (1 − p) with the mask of the last forward (δ itself in evaluation mode).
    """

    def __init__(self, p: float = 0.5, *, seed=None):
        super().__init__()
        self.p = number_in("Dropout", "p", p, 0.0, 1.0, high_open=True)
        self.rng = np.random.default_rng(seed)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, (...,))
        if self.training and self.p > 0:
            keep = self.rng.random(x.shape) >= self.p
            scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        else:
            scale = np.ones((1,) * x.ndim, dtype=x.dtype)
        self._cache = _DropoutCache(scale, x.shape)
        return x * scale

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.x_shape)
        return (dy * cache.scale).astype(cache.scale.dtype, copy=False)


# -- batch normalization ------------------------------------------------------------------------
