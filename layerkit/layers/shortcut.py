"""The parameter-free ResNet shortcut that changes shape: subsample, then pad channels with zeros."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array, positive_int


class _ShortcutCache(NamedTuple):
    """What ZeroPadShortcut's backward needs."""

    x_shape: tuple
    dtype: np.dtype
    y_shape: tuple


class ZeroPadShortcut(Layer):
    r"""He et al. (2016)'s option-A shortcut: keep every S-th position, add zero channels.

        y[n, lo + c, i, j] = x[n, c, S·i, S·j]    for c < C_in,    y = 0 on the other channels,

    with lo = ⌊(C_out − C_in) / 2⌋ zero channels before and the rest after, so that
    ``Residual(block, ZeroPadShortcut(16, 32, stride=2))`` adds the identity to a block that
    halves the resolution and doubles the channels, with no parameters.

    Parameters
    ----------
    in_channels, out_channels : int, out_channels >= in_channels
    stride : int, default 2
        S, the same on every spatial axis.

    Shape
    -----
    x : (N, C_in, *spatial); y : (N, C_out, ⌈W / S⌉ per spatial axis W) (positions 0, S, 2S, …).

    Notes
    -----
    A copy of some entries of x, so ∂L/∂x[n, c, S·i, S·j] = δ[n, lo + c, i, j] and 0 at the
    positions not kept. Only the input shape is cached.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 2):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.stride = positive_int(name, "stride", stride)
        if self.out_channels < self.in_channels:
            raise ValueError(f"{name}: out_channels must be >= in_channels (channels are only "
                             f"added), got {in_channels} -> {out_channels}")
        self.lo = (self.out_channels - self.in_channels) // 2

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"

    def _kept(self, ndim: int) -> tuple:
        return (slice(None), slice(None)) + (slice(None, None, self.stride),) * (ndim - 2)

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, (...,))
        if x.ndim < 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"{who}: expected x of shape (N, {self.in_channels}, *spatial), "
                             f"got {tuple(x.shape)}")
        kept = x[self._kept(x.ndim)]
        y = np.zeros((x.shape[0], self.out_channels) + kept.shape[2:], dtype=x.dtype)
        y[:, self.lo:self.lo + self.in_channels] = kept
        self._cache = _ShortcutCache(x.shape, x.dtype, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x_shape, dtype, y_shape = self.saved()
        self.check_dy(dy, y_shape)
        dx = np.zeros(x_shape, dtype=dtype)
        dx[self._kept(len(x_shape))] = dy[:, self.lo:self.lo + self.in_channels]
        return dx
