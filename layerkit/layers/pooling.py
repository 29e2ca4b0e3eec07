"""Pooling layers: MaxPool1D/2D/3D, AvgPool1D/2D/3D, GlobalAvgPool.

One N-d implementation: the input (N, C, *spatial) is viewed as N·C planes of 3 spatial axes
(1-D and 2-D inputs get singleton leading axes) and handed to the kernels of
:mod:`layerkit.kernels.pooling`. Window geometry comes from :mod:`layerkit.geometry`.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import numpy as np

from ..geometry import Window, window
from ..kernels.pooling import (avgpool_backward_input, avgpool_forward, maxpool2x2_backward_input,
                               maxpool2x2_forward, maxpool_backward_input, maxpool_forward)
from ..layer import Layer
from ..validation import allocation, check_array, positive_int, window_within_limits

_SYMBOLS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_NAMES = {1: dict(sp="L", osp="L_out", k="K"),
          2: dict(sp="H, W", osp="H_out, W_out", k="K_h, K_w"),
          3: dict(sp="D, H, W", osp="D_out, H_out, W_out", k="K_d, K_h, K_w")}

_COMMON_PARAMS = r"""kernel_size : int or tuple of {n} ints
        K per spatial axis (non-square windows such as (1, 2) are fine).
    stride : int or tuple of {n} ints, default None
        S, the step between neighbouring windows; None means S = K (non-overlapping windows).
    padding : int or tuple of {n} ints, default 0
        P added on both sides of each spatial axis; at most ⌊K/2⌋ per axis (as in PyTorch)."""

_SHAPE = r"""Shape
    -----
    x : (N, C, {sp}).
    y : (N, C, {osp}), per spatial axis of size W

        W_out = ⌊(W − K + 2P) / S⌋ + 1{dil}

    (floor: trailing rows or columns that no full window reaches are ignored). A window larger
    than the padded input raises ``ValueError``."""

_MAX_DOC = r"""{n}-D max pooling over (N, C, {sp}): the largest value in each window, per channel.

    With x_pad the input padded with −∞ (padding is never selected), stride S, dilation d and
    window taps j,

        y[n, c, p] = max_j x_pad[n, c, p·S + j·d],        a[n, c, p] = argmax_j (the same)

    Ties: the *first* maximum in row-major window order wins (and receives the gradient).

    Parameters
    ----------
    """ + _COMMON_PARAMS + r"""
    dilation : int or tuple of {n} ints, default 1
        d, the spacing between window taps (1 = a dense window).
    return_indices : bool, default False
        If True, ``forward`` returns ``(y, indices)``: int64 indices of y's shape holding the
        flat position of each maximum in its *unpadded* input plane (row-major over {sp}),
        exactly PyTorch's ``return_indices`` (so a MaxUnpool can invert it). ``backward`` still
        takes just ``dy``.

    """ + _SHAPE + r"""

    Notes
    -----
    max is piecewise linear; away from ties its derivative is 1 at the argmax and 0 elsewhere,
    so the upstream gradient δ = ∂L/∂y is routed to the argmax (at a tie this is one valid
    subderivative, the first maximum's):

        ∂L/∂x[n, c, i] = Σ_{{p : a[n, c, p] = i}} δ[n, c, p]

    (a sum because overlapping windows, S < K, can share a maximum). The cache is the argmax.
    """

_AVG_DOC = r"""{n}-D average pooling over (N, C, {sp}): the mean of each window, per channel.

    With x_pad the input padded with zeros, stride S and window taps j (|window| = {kprod}),

        y[n, c, p] = (1 / |window|) Σ_j x_pad[n, c, p·S + j]

    Padding counts as zeros and the divisor is always the full window size
    (PyTorch's default ``count_include_pad=True``).

    Parameters
    ----------
    """ + _COMMON_PARAMS + r"""

    """ + _SHAPE + r"""

    Notes
    -----
    y is linear in x: every window spreads its δ = ∂L/∂y evenly over its taps,

        ∂L/∂x[n, c, i] = Σ_{{p : i ∈ window(p)}} δ[n, c, p] / |window|

    (padded taps receive nothing). Nothing but the input shape is cached.
    """


def _show(t: tuple):
    """An n-tuple as the user would most likely have written it: 2 for (2, 2)."""
    return t[0] if len(set(t)) == 1 else t


def _to3(t: tuple, fill: int) -> tuple:
    """Pad an n-tuple (n <= 3) on the left to 3 entries (singleton leading spatial axes)."""
    return (fill,) * (3 - len(t)) + tuple(t)


@functools.lru_cache(maxsize=256)
def _empty_window(spatial: tuple, win: Window):
    """(axis, position) of a window with no in-range tap, or None.

    Only dilation can produce one when P <= K/2: its taps may all skip over the input.
    """
    out = win.output_shape("", spatial)
    for ax, (size, n_out, k, s, d, lo) in enumerate(
            zip(spatial, out, win.kernel, win.stride, win.dilation, win.pad_lo)):
        pos = np.arange(n_out)[:, None] * s - lo + np.arange(k)[None, :] * d
        hit = ((pos >= 0) & (pos < size)).any(axis=1)
        if not hit.all():
            return ax, int(np.argmin(hit))
    return None


class _PoolCache(NamedTuple):
    """What a pooling layer's backward needs from forward: the same fields in every layer here."""

    x_shape: tuple                  # the input's shape (N, C, *spatial)
    dtype: np.dtype                 # the input's dtype, which ∂L/∂x takes
    out_spatial: tuple = ()         # the output's spatial shape (() where x_shape gives it)
    indices: np.ndarray | None = None   # max layers: where each value came from or went
    codes_2x2: bool = False         # MaxPool's 2 × 2 fast path: indices are its uint8 codes


class _PoolND(Layer):
    """Shared machinery of MaxPoolND and AvgPoolND; subclasses set ``ndim`` (1, 2 or 3)."""

    ndim = 0
    _dilation_ok = False

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        name = type(self).__name__
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an integer >= 0 or a tuple of {self.ndim} "
                             f"such integers, got {padding!r}")
        win = window(name, self.ndim, kernel_size, kernel_size if stride is None else stride,
                     padding, dilation)
        window_within_limits(name, win)
        self.window = win
        self.kernel_size = win.kernel
        self.stride = win.stride
        self.padding = win.pad_lo
        self.dilation = win.dilation
        half = tuple(k // 2 for k in win.kernel)
        if any(p > h for p, h in zip(self.padding, half)):
            raise ValueError(f"{self!r}: padding must be at most half the kernel size per axis "
                             f"(P <= ⌊K/2⌋ = {_show(half)}), got padding {_show(self.padding)}")

    def extra_repr(self) -> str:
        parts = [f"kernel_size={_show(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={_show(self.stride)}")
        if any(self.padding):
            parts.append(f"padding={_show(self.padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={_show(self.dilation)}")
        return ", ".join(parts)

    def _prepare(self, x):
        """Validate x; return (x as contiguous (B, D, H, W), output spatial shape)."""
        check_array(self, x, ("N", "C") + _SYMBOLS[self.ndim])
        spatial = x.shape[2:]
        if min(spatial) < 1:
            raise ValueError(f"{self!r}: expected non-empty spatial axes, got x of shape "
                             f"{tuple(x.shape)}")
        out = self.window.output_shape(self, spatial)
        x3 = np.ascontiguousarray(x).reshape((x.shape[0] * x.shape[1],) + _to3(spatial, 1))
        return x3, out

    def _geometry(self) -> tuple:
        """kd, kh, kw, sd, sh, sw, (dd, dh, dw,) pd, ph, pw for the kernels."""
        g = _to3(self.kernel_size, 1) + _to3(self.stride, 1)
        if self._dilation_ok:
            g += _to3(self.dilation, 1)
        return g + _to3(self.padding, 0)

    def _dy(self, dy, x_shape, out, dtype):
        """Validate dy; return it as a contiguous (B, Do, Ho, Wo) array of x's dtype."""
        self.check_dy(dy, x_shape[:2] + out)
        return np.ascontiguousarray(dy, dtype=dtype).reshape(
            (x_shape[0] * x_shape[1],) + _to3(out, 1))


class MaxPoolND(_PoolND):
    """Base of MaxPool1D/2D/3D (see :class:`MaxPool2D` for the math)."""

    _dilation_ok = True

    def __init__(self, kernel_size, *, stride=None, padding=0, dilation=1,
                 return_indices: bool = False):
        self.return_indices = bool(return_indices)
        super().__init__(kernel_size, stride, padding, dilation)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", return_indices=True" if self.return_indices else "")

    def _is_2x2(self) -> bool:
        """The fast path: 2 × 2 windows (on the last two axes), stride 2, no padding or dilation."""
        return (_to3(self.kernel_size, 1) == (1, 2, 2) and _to3(self.stride, 1) == (1, 2, 2)
                and not any(self.padding) and all(d == 1 for d in self.dilation))

    def forward(self, x: np.ndarray):
        x3, out = self._prepare(x)
        if x3.shape[0] == 0:                      # N = 0 or C = 0: empty y, as in PyTorch
            y = np.empty(x.shape[:2] + out, dtype=x.dtype)
            self._cache = _PoolCache(x.shape, x.dtype, out)
            return (y, np.empty(y.shape, dtype=np.int64)) if self.return_indices else y
        if self._is_2x2():
            # (B, D, H, W) with a depth-1 window: B·D independent (H, W) planes
            b, d, h, w = x3.shape
            planes = x3.reshape(b * d, h, w)
            y = np.empty((b * d, h // 2, w // 2), dtype=x.dtype)
            code = np.empty(y.shape, dtype=np.uint8)
            maxpool2x2_forward(planes, y, code)
            self._cache = _PoolCache(x.shape, x.dtype, out, code, codes_2x2=True)
            y = y.reshape(x.shape[:2] + out)
            if self.return_indices:
                return y, self._indices_2x2(code, x3.shape).reshape(y.shape)
            return y
        bad = _empty_window(tuple(x.shape[2:]), self.window)
        if bad is not None:
            raise ValueError(f"{self!r}: the window at output position {bad[1]} along spatial "
                             f"axis {bad[0]} holds only padding for an input of spatial shape "
                             f"{tuple(x.shape[2:])}; reduce padding or dilation")
        y = np.empty((x3.shape[0],) + _to3(out, 1), dtype=x.dtype)
        argmax = np.empty(y.shape, dtype=np.int64)
        maxpool_forward(x3, y, argmax, *self._geometry())
        self._cache = _PoolCache(x.shape, x.dtype, out, argmax)
        y = y.reshape(x.shape[:2] + out)
        if self.return_indices:
            return y, argmax.reshape(y.shape).copy()
        return y

    @staticmethod
    def _indices_2x2(code, shape3) -> np.ndarray:
        """Flat plane indices (d·H + h)·W + w of the 2 × 2 fast path's window codes."""
        b, d, h, w = shape3
        code = code.reshape(b, d, h // 2, w // 2).astype(np.int64)
        rows = 2 * np.arange(h // 2)[:, None] + code // 2
        cols = 2 * np.arange(w // 2)[None, :] + code % 2
        return (np.arange(d)[:, None, None] * h + rows) * w + cols

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        x_shape, dtype, argmax = cache.x_shape, cache.dtype, cache.indices
        dy3 = self._dy(dy, x_shape, cache.out_spatial, dtype)
        b = dy3.shape[0]
        if b == 0:
            return np.empty(x_shape, dtype=dtype)
        if cache.codes_2x2:                       # window codes 0-3 of the (B·D, H/2, W/2) planes
            h, w = x_shape[-2:]
            d = argmax.shape[0] // b
            dx = np.empty((b * d, h, w), dtype=dtype)
            maxpool2x2_backward_input(dy3.reshape(argmax.shape), argmax, dx)
            return dx.reshape(x_shape)
        dx = np.zeros((b, math.prod(x_shape[2:])), dtype=dtype)
        maxpool_backward_input(dy3.reshape(b, -1), argmax.reshape(b, -1), dx)
        return dx.reshape(x_shape)


class AvgPoolND(_PoolND):
    """Base of AvgPool1D/2D/3D (see :class:`AvgPool2D` for the math)."""

    def __init__(self, kernel_size, *, stride=None, padding=0, dilation=1):
        if dilation != 1:
            raise ValueError(f"{type(self).__name__}: dilation is not supported by average "
                             f"pooling (as in PyTorch); it takes kernel_size, stride and padding, "
                             f"got dilation={dilation!r}")
        super().__init__(kernel_size, stride, padding, 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x3, out = self._prepare(x)
        y = np.empty((x3.shape[0],) + _to3(out, 1), dtype=x.dtype)
        avgpool_forward(x3, y, *self._geometry())
        self._cache = _PoolCache(x.shape, x.dtype, out)
        return y.reshape(x.shape[:2] + out)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        dy3 = self._dy(dy, cache.x_shape, cache.out_spatial, cache.dtype)
        dx = np.zeros((dy3.shape[0],) + _to3(cache.x_shape[2:], 1), dtype=cache.dtype)
        avgpool_backward_input(dy3, dx, *self._geometry())
        return dx.reshape(cache.x_shape)


def _doc(template: str, n: int) -> str:
    kprod = {1: "K", 2: "K_h·K_w", 3: "K_d·K_h·K_w"}[n]
    dil = "" if template is _AVG_DOC else "    (K read as the extent d·(K − 1) + 1 under dilation d)"
    return template.format(n=n, kprod=kprod, dil=dil, **_NAMES[n])


class MaxPool1D(MaxPoolND):
    ndim = 1


class MaxPool2D(MaxPoolND):
    ndim = 2


class MaxPool3D(MaxPoolND):
    ndim = 3


class AvgPool1D(AvgPoolND):
    ndim = 1


class AvgPool2D(AvgPoolND):
    ndim = 2


class AvgPool3D(AvgPoolND):
    ndim = 3


for _cls in (MaxPool1D, MaxPool2D, MaxPool3D):
    _cls.__doc__ = _doc(_MAX_DOC, _cls.ndim)
for _cls in (AvgPool1D, AvgPool2D, AvgPool3D):
    _cls.__doc__ = _doc(_AVG_DOC, _cls.ndim)
del _cls


class GlobalAvgPool(Layer):
    r"""Global average pooling: the mean over all spatial axes, (N, C, *spatial) → (N, C).

        y[n, c] = (1 / P) Σ_i x[n, c, i],        P = ∏ spatial sizes

    Works for any number (>= 1) of spatial axes; equals PyTorch's ``adaptive_avg_pool(x, 1)``
    with the singleton axes squeezed away.

    Shape
    -----
    x : (N, C, *spatial), y : (N, C).

    Notes
    -----
    Linear in x: ∂L/∂x[n, c, i] = δ[n, c] / P for every spatial position i. Only the input
    shape is cached.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        if isinstance(x, np.ndarray) and x.ndim < 3:
            raise ValueError(f"{self!r}: expected x of shape (N, C, *spatial) with at least one "
                             f"spatial axis, got {tuple(x.shape)}")
        check_array(self, x, (...,))
        positions = math.prod(x.shape[2:])
        if positions == 0:
            raise ValueError(f"{self!r}: expected a non-empty spatial extent, got shape "
                             f"{tuple(x.shape)}")
        self._cache = _PoolCache(x.shape, x.dtype)
        return x.reshape(x.shape[:2] + (positions,)).mean(axis=-1, dtype=np.float64).astype(x.dtype)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        shape = cache.x_shape
        self.check_dy(dy, shape[:2])
        g = (dy / math.prod(shape[2:])).astype(cache.dtype, copy=False)
        return np.broadcast_to(g[(...,) + (None,) * (len(shape) - 2)], shape).copy()


class MaxUnpool2D(Layer):
    r"""Partial inverse of MaxPool2D (SegNet's decoder): put each value back where its max came from.

    ``forward(x, indices)`` with the ``indices`` returned by ``MaxPool2D(..., return_indices=True)``
    (flat positions into each (H_out, W_out) output plane) writes

        y[n, c].flat[indices[n, c, i]] += x[n, c, i],   zeros elsewhere.

    Where two pooled values point to the same position (overlapping windows), their sum is placed
    there (PyTorch keeps one of them); this keeps backward the exact adjoint of forward.

    Parameters
    ----------
    kernel_size, stride, padding
        Those of the MaxPool2D being inverted; they fix the default output size.

    Shape
    -----
    x, indices : (N, C, H, W); y : (N, C, H_out, W_out) with H_out = (H − 1)·S − 2P + K (likewise
    W_out), or ``output_size=(H_out, W_out)`` given to forward (e.g. the pooled input's size when
    the pooling dropped the last rows).

    Notes
    -----
    Linear in x: ∂L/∂x[n, c, i] = δ[n, c].flat[indices[n, c, i]] (a gather). The indices are
    integers and get no gradient.
    """

    def __init__(self, kernel_size, *, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.window = window(name, 2, kernel_size, kernel_size if stride is None else stride,
                             padding, 1)
        window_within_limits(name, self.window)
        self.kernel_size, self.stride, self.padding = (self.window.kernel, self.window.stride,
                                                       self.window.pad_lo)

    def extra_repr(self) -> str:
        parts = [f"kernel_size={_show(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={_show(self.stride)}")
        if any(self.padding):
            parts.append(f"padding={_show(self.padding)}")
        return ", ".join(parts)

    def _output_size(self, output_size) -> tuple:
        """``output_size`` as (H_out, W_out): two (or the last two of more) positive integers."""
        try:
            sizes = tuple(output_size)[-2:] if not isinstance(output_size, str) else None
        except TypeError:
            sizes = None
        if (sizes is None or len(sizes) != 2 or any(
                isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1
                for v in sizes)):
            raise ValueError(f"{self!r}: output_size must be a tuple of positive integers "
                             f"(H_out, W_out), got {output_size!r}")
        return tuple(int(v) for v in sizes)

    def forward(self, x: np.ndarray, indices: np.ndarray, output_size=None) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, ("N", "C", "H", "W"))
        check_array(who, indices, x.shape, name="indices", kind="int")
        if output_size is None:
            out = tuple((w - 1) * s - 2 * p + k for w, s, p, k in
                        zip(x.shape[2:], self.stride, self.padding, self.kernel_size))
        else:
            out = self._output_size(output_size)
        allocation(who, "the output", x.shape[:2] + out, x.dtype)
        plane = math.prod(out)
        if indices.size and (indices.min() < 0 or indices.max() >= plane):
            raise ValueError(f"{who}: indices must lie in [0, {plane}) for an output plane of "
                             f"shape {out}, got values in [{indices.min()}, {indices.max()}]")
        b = x.shape[0] * x.shape[1]
        indices = indices.astype(np.int64).reshape(b, math.prod(x.shape[2:]))   # exact: < plane
        flat = (indices + (np.arange(b, dtype=np.int64) * plane)[:, None]).ravel()
        y = np.bincount(flat, weights=x.ravel(), minlength=b * plane).astype(x.dtype, copy=False)
        # indices: as (N·C, H·W) int64, where in its output plane each value went
        self._cache = _PoolCache(x.shape, x.dtype, out, indices)
        return y.reshape(x.shape[:2] + out)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        idx = cache.indices
        self.check_dy(dy, cache.x_shape[:2] + cache.out_spatial)
        gathered = np.take_along_axis(dy.reshape(idx.shape[0], math.prod(dy.shape[2:])), idx,
                                      axis=1)
        return gathered.reshape(cache.x_shape).astype(cache.dtype, copy=False)


class ChannelMaxPool(Layer):
    r"""Max over groups of ``pool_size`` consecutive channels (maxout): (N, C, …) → (N, C/k, …).

        y[n, g, i] = max_{j < k} x[n, g·k + j, i]

    Shape
    -----
    x : (N, C, *spatial) or (N, C) with C divisible by k; y : (N, C/k, *spatial).

    Notes
    -----
    ∂L/∂x[n, g·k + j, i] = δ[n, g, i] if j is the (first, on ties) argmax of its group, else 0.
    """

    def __init__(self, pool_size: int):
        super().__init__()
        self.pool_size = positive_int(type(self).__name__, "pool_size", pool_size)

    def extra_repr(self) -> str:
        return str(self.pool_size)

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, (...,))
        k = self.pool_size
        if x.ndim < 2 or x.shape[1] % k:
            raise ValueError(f"{self!r}: expected x of shape (N, C, ...) with C divisible by {k}, "
                             f"got {x.shape}")
        grouped = x.reshape((x.shape[0], x.shape[1] // k, k) + x.shape[2:])
        arg = np.argmax(grouped, axis=2)[:, :, None]
        self._cache = _PoolCache(x.shape, x.dtype, indices=arg)   # (N, C/k, 1, ...): j per group
        return np.take_along_axis(grouped, arg, axis=2)[:, :, 0]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        x_shape, k = cache.x_shape, self.pool_size
        self.check_dy(dy, (x_shape[0], x_shape[1] // k) + x_shape[2:])
        dx = np.zeros((x_shape[0], x_shape[1] // k, k) + x_shape[2:], dtype=cache.dtype)
        np.put_along_axis(dx, cache.indices, dy[:, :, None], axis=2)
        return dx.reshape(x_shape)
