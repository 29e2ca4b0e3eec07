"""Power-average pooling LPPool1D/2D: y = (Σ_window x^p)^(1/p), PyTorch's definition; p = 2 is
the lectures' L2-norm pooling.

The input (N, C, *spatial) is viewed as N·C planes of 3 spatial axes (singleton leading axes
for 1-D and 2-D) and handed to :mod:`layerkit.kernels.lppool`.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ..geometry import window
from ..kernels.lppool import lppool_backward_input, lppool_forward
from ..layer import Layer
from ..validation import check_array, flag

_SYMBOLS = {1: ("L",), 2: ("H", "W")}

_DOC = r"""{n}-D power-average pooling over (N, C, {sp}): y = (Σ_window x^p)^(1/p), per channel.

    With stride S and window taps j (K_1 … K_n per axis, no padding),

        y[n, c, o] = (Σ_j x[n, c, o·S + j]^p)^(1/p)

    PyTorch's ``lp_pool{n}d``: p = 2 is L2-norm pooling, p = 1 sum pooling, p → ∞ tends to max
    pooling (of |x|). Computed as m · (Σ_j (x_j / m)^p)^(1/p) with m = max_j |x_j| (no overflow).

    Parameters
    ----------
    p : float >= 1
        The power (``norm_type`` in PyTorch). For a non-integer p, x must be >= 0 (x^p is not
        real otherwise: ``ValueError``). For an odd integer p > 1 a negative x is allowed, but a
        window whose Σ x^p is negative has no real root: ``ValueError`` (PyTorch gives NaN).
    kernel_size : int or tuple of {n} ints
        K per spatial axis.
    stride : int or tuple of {n} ints, default None
        S; None means S = K.
    ceil_mode : bool, default False
        False: windows that do not fit are dropped (floor). True: one more window per axis where
        the last one hangs over the end (it must start inside the input) and sums only its taps
        inside the input. PyTorch instead rescales such a window's sum by K / (taps inside), so
        the two differ there; with full windows they agree.

    Shape
    -----
    x : (N, C, {sp}) with each spatial size W >= K.
    y : (N, C, {osp}), per axis W_out = ⌊(W − K) / S⌋ + 1, or with ``ceil_mode``
    ⌈(W − K) / S⌉ + 1 (less 1 if that last window would start at or past W).

    Notes
    -----
    With S_o = Σ_j x_j^p = y_o^p, ∂y_o/∂x_i = x_i^(p−1) S_o^(1/p − 1) = (x_i / y_o)^(p−1), so

        ∂L/∂x[n, c, i] = Σ_{{o : i ∈ window(o)}} δ[n, c, o] · (x[n, c, i] / y[n, c, o])^(p−1)

    (for p = 2: δ·x/y; for p = 1: δ). Where a window is all zeros (S_o = 0, e.g. after a ReLU)
    y is not differentiable for p > 1; its gradient is taken as 0 there, which is a
    subgradient of the norm at 0 (and what PyTorch returns). The cache is a copy of x and y.
    """


class _LPPoolCache(NamedTuple):
    """What LPPool's backward needs: the input (a copy) and the output, as (B, D, H, W) planes."""

    x_shape: tuple
    x3: np.ndarray
    y3: np.ndarray


def _show(t: tuple):
    return t[0] if len(set(t)) == 1 else t


def _to3(t: tuple) -> tuple:
    return (1,) * (3 - len(t)) + tuple(t)


class LPPoolND(Layer):
    """Base of LPPool1D/2D (see :class:`LPPool2D` for the math); subclasses set ``ndim``."""

    ndim = 0

    def __init__(self, p, kernel_size, *, stride=None, ceil_mode: bool = False):
        super().__init__()
        name = type(self).__name__
        if (isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p)
                or p < 1):
            raise ValueError(f"{name}: p must be a finite number >= 1, got {p!r}")
        self.p = float(p)
        self.window = window(name, self.ndim, kernel_size,
                             kernel_size if stride is None else stride, 0, 1)
        self.kernel_size, self.stride = self.window.kernel, self.window.stride
        self.ceil_mode = flag(name, "ceil_mode", ceil_mode)

    def extra_repr(self) -> str:
        p = int(self.p) if self.p.is_integer() else self.p
        parts = [f"p={p}", f"kernel_size={_show(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={_show(self.stride)}")
        if self.ceil_mode:
            parts.append("ceil_mode=True")
        return ", ".join(parts)

    def output_shape(self, spatial: tuple) -> tuple:
        """The output's spatial shape (see Shape); raises ValueError if a window is larger than
        the input."""
        out = self.window.output_shape(self, spatial)
        if not self.ceil_mode:
            return out
        ceil = []
        for size, k, s, o in zip(spatial, self.kernel_size, self.stride, out):
            o = -(-(size - k) // s) + 1
            ceil.append(o - 1 if (o - 1) * s >= size else o)
        return tuple(ceil)

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, ("N", "C") + _SYMBOLS[self.ndim])
        if not self.p.is_integer() and x.size and x.min() < 0:
            raise ValueError(f"{who}: x must be >= 0 for a non-integer p (x^p is not real for "
                             f"x < 0), got a minimum of {x.min()}")
        out = self.output_shape(x.shape[2:])
        x3 = np.array(x, order="C").reshape((x.shape[0] * x.shape[1],) + _to3(x.shape[2:]))
        y3 = np.empty((x3.shape[0],) + _to3(out), dtype=x.dtype)
        negative = np.zeros(x3.shape[0], dtype=np.int64)
        lppool_forward(x3, y3, negative, *_to3(self.kernel_size), *_to3(self.stride), self.p)
        if negative.any():
            raise ValueError(f"{who}: {int(negative.sum())} window(s) have a negative sum of "
                             f"x^p, whose 1/p-th power is not real (p = {self.p:g}, negative x)")
        self._cache = _LPPoolCache(x.shape, x3, y3)
        return y3.reshape(x.shape[:2] + out)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.x_shape[:2] + cache.y3.shape[4 - self.ndim:])
        dy3 = np.ascontiguousarray(dy, dtype=cache.x3.dtype).reshape(cache.y3.shape)
        dx = np.zeros_like(cache.x3)
        lppool_backward_input(cache.x3, cache.y3, dy3, dx, *_to3(self.kernel_size),
                              *_to3(self.stride), self.p)
        return dx.reshape(cache.x_shape)


class LPPool1D(LPPoolND):
    ndim = 1


class LPPool2D(LPPoolND):
    ndim = 2


_NAMES = {1: dict(sp="L", osp="L_out"), 2: dict(sp="H, W", osp="H_out, W_out")}
for _cls in (LPPool1D, LPPool2D):
    _cls.__doc__ = _DOC.format(n=_cls.ndim, **_NAMES[_cls.ndim])
del _cls
