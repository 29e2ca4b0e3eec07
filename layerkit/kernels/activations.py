"""Elementwise activation kernels, on flat (1-D, C-contiguous) views.

ReLU only: numpy's ``np.maximum(x, 0)`` checks every element for NaN and ran at ~0.8 ns per
float32 element here, ``dy * (x > 0)`` makes a boolean array first; these loops vectorise to a
compare-and-select (LeNet's first ReLU: 0.24 → 0.05 ms forward, 0.14 → 0.08 ms backward).
"""

from __future__ import annotations

from .config import jit


@jit()
def relu_forward(x, y):
    """y = max(x, 0); NaN stays NaN (``v <= 0`` is false for NaN)."""
    for i in range(x.shape[0]):
        v = x[i]
        y[i] = 0.0 if v <= 0.0 else v


@jit()
def relu_backward(x, dy, dx):
    """dx = dy where x > 0, else 0 (the subderivative 0 at x = 0 and for NaN x)."""
    for i in range(x.shape[0]):
        dx[i] = dy[i] if x[i] > 0.0 else 0.0
