"""Softmax and LogSoftmax along an axis, and the softmax Jacobian for teaching and tests."""

from __future__ import annotations

import numpy as np

from ..layer import Layer
from ..validation import check_array


# The one numpy softmax / log-sum-exp of layerkit: layers, losses, metrics and models use these.
def _exp_shifted(x: np.ndarray, axis: int) -> tuple:
    """(m, x − m, e^{x − m}, s = Σ_j e^{x_j − m}) with m = max_j x_j along ``axis`` (kept as a
    size-1 axis): every exponent is ≤ 0, so nothing overflows. An infinite logit gives NaN
    (inf − inf), as in PyTorch, without numpy's warning."""
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        shifted = x - m
    e = np.exp(shifted)
    return m, shifted, e, np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = x − m − log Σ_j e^{x_j − m}, m = max_j x_j (log-sum-exp: no overflow)."""
    _, shifted, _, s = _exp_shifted(x, axis)
    return shifted - np.log(s)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = e^{x_i − m} / Σ_j e^{x_j − m}, m = max_j x_j (no overflow)."""
    _, _, e, s = _exp_shifted(x, axis)
    return e / s


def softmax_and_log(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(softmax(x), log_softmax(x)) from one exponential, bit-identical to the two calls."""
    _, shifted, e, s = _exp_shifted(x, axis)
    return e / s, shifted - np.log(s)


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log Σ_j e^{x_j} = m + log Σ_j e^{x_j − m}, m = max_j x_j, with ``axis`` removed."""
    m, _, _, s = _exp_shifted(x, axis)
    return np.squeeze(np.log(s) + m, axis=axis)


def softmax_jacobian(y: np.ndarray) -> np.ndarray:
    """Full Jacobian of the softmax from its output: J_ij = ∂y_i/∂x_j = y_i (δ_ij − y_j).

    Parameters
    ----------
    y : (..., K) softmax output (a probability vector on the last axis).

    Returns
    -------
    (..., K, K) array: ``diag(y) − y yᵀ`` for each vector.
    """
    y = np.asarray(y)
    if y.ndim < 1:
        raise ValueError(f"softmax_jacobian: expected y of shape (..., K), got {y.shape}")
    return np.einsum("...i,ij->...ij", y, np.eye(y.shape[-1], dtype=y.dtype)) \
        - y[..., :, None] * y[..., None, :]


class _AlongAxis(Layer):
    def __init__(self, axis: int = -1):
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}: axis must be an integer, got {axis!r}")
        self.axis = int(axis)

    def extra_repr(self) -> str:
        return "" if self.axis == -1 else f"axis={self.axis}"

    def _check(self, x):
        check_array(self, x, (...,))
        if x.ndim == 0 or not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{self!r}: axis {self.axis} is out of range for x of shape {x.shape}")
        if x.shape[self.axis] == 0:
            raise ValueError(f"{self!r}: expected a non-empty axis {self.axis} (a softmax over "
                             f"no values is undefined), got x of shape {x.shape}")


class Softmax(_AlongAxis):
    """y = softmax(x) along ``axis``: y_i = e^{x_i} / Σ_j e^{x_j}, computed with the max subtracted.

    Shape
    -----
    y has the shape and dtype of x.

    Notes
    -----
    The Jacobian is ∂y_i/∂x_j = y_i (δ_ij − y_j), so the vector-Jacobian product is
    ∂L/∂x_j = Σ_i δ_i y_i (δ_ij − y_j) = y_j (δ_j − Σ_i δ_i y_i), computed without forming J.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        y = softmax(x, self.axis)
        self._cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.saved()
        self.check_dy(dy, y.shape)
        dx = y * (dy - np.sum(dy * y, axis=self.axis, keepdims=True))
        return dx.astype(y.dtype, copy=False)


class LogSoftmax(_AlongAxis):
    """y = log softmax(x) along ``axis`` = x − log Σ_j e^{x_j} (log-sum-exp, no overflow).

    Shape
    -----
    y has the shape and dtype of x.

    Notes
    -----
    ∂y_i/∂x_j = δ_ij − p_j with p = softmax(x) = e^y, so ∂L/∂x_j = δ_j − p_j Σ_i δ_i.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        y = log_softmax(x, self.axis)
        self._cache = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        y = self.saved()
        self.check_dy(dy, y.shape)
        dx = dy - np.exp(y) * np.sum(dy, axis=self.axis, keepdims=True)
        return dx.astype(y.dtype, copy=False)
