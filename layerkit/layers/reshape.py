"""Reshape and Permute: rearrange each sample's axes (the batch axis 0 stays where it is)."""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array


class _ShapeCache(NamedTuple):
    """The input's shape, which ∂L/∂x takes, and the output's, which dy must have."""

    x_shape: tuple
    y_shape: tuple


def _integers(who: str, name: str, values) -> tuple:
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = tuple(values[0])
    if not values or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                         for v in values):
        raise ValueError(f"{who}: {name} must be one or more integers, got {values!r}")
    return tuple(int(v) for v in values)


class Reshape(Layer):
    """y[n] = x[n] reshaped to ``shape`` (row-major order, as ``np.reshape``); N is kept.

    Parameters
    ----------
    *shape : ints
        The shape of each sample; one entry may be −1 (inferred from the size). E.g.
        ``Reshape(16, 5, 5)`` turns (N, 400) into (N, 16, 5, 5) (the inverse of Flatten).

    Shape
    -----
    x : (N, *in_shape); y : (N, *shape) with prod(shape) = prod(in_shape).

    Notes
    -----
    A reshape only renames positions: ∂L/∂x = δ reshaped back to x's shape.
    """

    def __init__(self, *shape):
        super().__init__()
        name = type(self).__name__
        self.shape = _integers(name, "shape", shape)
        if any(s == 0 or s < -1 for s in self.shape) or self.shape.count(-1) > 1:
            raise ValueError(f"{name}: shape entries must be positive, with at most one -1, got "
                             f"{self.shape}")

    def extra_repr(self) -> str:
        return ", ".join(str(s) for s in self.shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, (...,))
        if x.ndim < 1:
            raise ValueError(f"{who}: expected x of shape (N, ...), got {tuple(x.shape)}")
        size, known = math.prod(x.shape[1:]), math.prod(s for s in self.shape if s != -1)
        if -1 in self.shape:
            fits = known > 0 and size % known == 0
        else:
            fits = size == known
        if not fits:
            raise ValueError(f"{who}: cannot reshape samples of shape {tuple(x.shape[1:])} "
                             f"({size} values) to {self.shape}")
        # -1 resolved per sample, so an empty batch (N = 0) reshapes too
        target = tuple(size // known if s == -1 else s for s in self.shape)
        y = x.reshape((x.shape[0],) + target)
        self._cache = _ShapeCache(x.shape, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.y_shape)
        return dy.reshape(cache.x_shape)


class Permute(Layer):
    """y[n] = x[n] with its axes reordered: y's axis i (i >= 1) is x's axis ``dims[i − 1]``.

    Parameters
    ----------
    *dims : ints
        A permutation of 1 … D, the axes after the batch axis, numbered from 1. E.g.
        ``Permute(2, 3, 1)`` turns (N, C, H, W) into (N, H, W, C), and ``Permute(3, 1, 2)`` back.

    Shape
    -----
    x : (N, a_1, …, a_D); y : (N, a_{dims[0]}, …, a_{dims[D−1]}). The result is a contiguous
    copy.

    Notes
    -----
    A permutation P of the axes moves values without changing them, so ∂L/∂x = δ with the
    inverse permutation P⁻¹ applied.
    """

    def __init__(self, *dims):
        super().__init__()
        name = type(self).__name__
        self.dims = _integers(name, "dims", dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"{name}: dims must be a permutation of 1 … {len(self.dims)} (the "
                             f"axes after the batch axis), got {self.dims}")
        self._order = (0,) + self.dims
        self._inverse = tuple(int(i) for i in np.argsort(self._order))

    def extra_repr(self) -> str:
        return ", ".join(str(d) for d in self.dims)

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, (...,))
        if x.ndim != len(self.dims) + 1:
            raise ValueError(f"{who}: expected x with {len(self.dims) + 1} axes (N and "
                             f"{len(self.dims)} more), got shape {tuple(x.shape)}")
        y = np.ascontiguousarray(x.transpose(self._order))
        self._cache = _ShapeCache(x.shape, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.y_shape)
        return np.ascontiguousarray(dy.transpose(self._inverse))
