"""Elementwise activations: ReLU, LeakyReLU, Sigmoid, Tanh.

Each is y = f(x) elementwise, any shape, dtype kept; backward is ∂L/∂x = δ ⊙ f'(x), with f'
written in terms of the output y forward cached (a fresh array: changing x after forward does
not change the gradient; for ReLU and LeakyReLU, y > 0 exactly where x > 0, since the slope
is ≥ 0).
"""

from __future__ import annotations

import numpy as np

from ..kernels.activations import relu_backward, relu_forward
from ..layer import Layer
from ..validation import check_array, number_in


class _Elementwise(Layer):
    """y = f(x) elementwise; subclasses give ``_f`` (returns y and the cache: y, with f' written
    in terms of it) and ``_df`` (f' from that cache)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, (...,))
        y, self._cache = self._f(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.shape)
        return (dy * self._df(cache)).astype(cache.dtype, copy=False)


class ReLU(_Elementwise):
    """Rectified linear unit: y = max(x, 0).

    Notes
    -----
    ∂L/∂x = δ ⊙ [x > 0] = δ ⊙ [y > 0] (computed from the cached y). At x = 0 the subderivative
    0 is used.
    """

    def _f(self, x):
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        relu_forward(x.reshape(-1), y.reshape(-1))
        return y, y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.saved()
        self.check_dy(dy, y.shape)
        dx = np.empty_like(y)
        relu_backward(y.reshape(-1), np.ascontiguousarray(dy, dtype=y.dtype).reshape(-1),
                      dx.reshape(-1))
        return dx


class LeakyReLU(_Elementwise):
    """y = x for x > 0, ``negative_slope`` · x otherwise.

    Notes
    -----
    ∂L/∂x = δ ⊙ (1 if x > 0 else negative_slope), with x > 0 read as y > 0 (the cached output);
    at x = 0 the slope ``negative_slope`` is used.

    Parameters
    ----------
    negative_slope : float in [0, ∞), finite
    """

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = number_in("LeakyReLU", "negative_slope", negative_slope, 0.0, np.inf,
                                        high_open=True)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def _f(self, x):
        y = np.where(x > 0, x, x * x.dtype.type(self.negative_slope))
        return y, y

    def _df(self, y):
        return np.where(y > 0, 1.0, self.negative_slope)


# The one numpy-side sigmoid of layerkit (layers and losses); kernels use kernels/sigmoid_tanh.
def sigmoid_and_exp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(σ(x), e) with e = exp(−|x|) ∈ (0, 1]: σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for
    x < 0, without overflow for any |x|. e is returned for callers that need it too
    (BCEWithLogits: log(1 + e^{−|z|}))."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e), e


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function 1/(1 + e^{−x}), evaluated without overflow for any |x|
    (see :func:`sigmoid_and_exp`)."""
    return sigmoid_and_exp(x)[0]


class Sigmoid(_Elementwise):
    """Logistic sigmoid: y = 1 / (1 + e^{−x}), stable for large |x|.

    Notes
    -----
    ∂L/∂x = δ ⊙ y (1 − y), computed from the cached output y.
    """

    def _f(self, x):
        y = sigmoid(x).astype(x.dtype, copy=False)
        return y, y

    def _df(self, y):
        return y * (1 - y)


class Tanh(_Elementwise):
    """Hyperbolic tangent: y = tanh(x).

    Notes
    -----
    ∂L/∂x = δ ⊙ (1 − y²), computed from the cached output y.
    """

    def _f(self, x):
        y = np.tanh(x)
        return y, y

    def _df(self, y):
        return 1 - y * y
