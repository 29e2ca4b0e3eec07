"""Softmax and LogSoftmax along an axis, and the softmax Jacobian for teaching and tests."""

from __future__ import annotations

import numpy as np

from ..layer import Layer
from ..validation import check_array


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = x − m − log Σ_j e^{x_j − m}, m = max_j x_j (log-sum-exp: no overflow)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = e^{x_i − m} / Σ_j e^{x_j − m}, m = max_j x_j (no overflow)."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


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
        check_array(repr(self), x, (...,))
        if x.ndim == 0 or not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{self!r}: axis {self.axis} is out of range for x of shape {x.shape}")


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
        return (y * (dy - np.sum(dy * y, axis=self.axis, keepdims=True))).astype(y.dtype, copy=False)


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
        return (dy - np.exp(y) * np.sum(dy, axis=self.axis, keepdims=True)).astype(y.dtype, copy=False)
