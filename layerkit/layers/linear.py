"""Fully connected layers: Linear (on the last axis) and Flatten."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import init
from ..grad_mode import grad_enabled
from ..layer import NO_CACHE, Layer
from ..validation import allocation, check_array, float_dtype, initial_weight, positive_int


class _LinearCache(NamedTuple):
    """What Linear.backward needs."""

    x2: np.ndarray          # a copy of x with the leading axes flattened, (M, D)
    x_shape: tuple


class Linear(Layer):
    r"""Affine map on the last axis: ``y = x Wᵀ + b``.

    Parameters
    ----------
    in_features, out_features : int
        D and O.
    bias : bool, default True
        Learn an additive bias ``b`` of shape (O,).
    dtype : float32 (default) or float64
        dtype of the parameters.
    weight_init : callable, default :func:`layerkit.init.glorot_uniform`
        ``weight_init(shape, rng=..., dtype=...)``; the bias starts at zero.
    seed : int or numpy Generator, optional
        Seed of the initializer.

    Shape
    -----
    x : (..., D) — ``(N, D)`` or ``(N, T, D)`` (the same map at every time step).
    y : (..., O).

    Notes
    -----
    With every leading axis flattened into rows (x: (M, D), δ = ∂L/∂y: (M, O)):
    ∂L/∂x = δ W,  ∂L/∂W = δᵀ x,  ∂L/∂b = Σ_rows δ. With ``needs_input_grad = False``
    backward accumulates ∂L/∂W and ∂L/∂b only and returns None (no δ W product).

    The cache is a contiguous copy of x (M, D), made in forward: ∂L/∂W does not change when the
    caller changes x after forward (the copy costs one pass over x, next to forward's GEMM;
    none is made under :func:`layerkit.no_grad`).
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 dtype=np.float32, weight_init=None, seed=None):
        super().__init__()
        self.in_features = positive_int(type(self).__name__, "in_features", in_features)
        self.out_features = positive_int(type(self).__name__, "out_features", out_features)
        self.bias = bool(bias)
        dt = float_dtype(dtype, repr(self))
        rng = np.random.default_rng(seed)
        weight_init = weight_init or init.glorot_uniform
        shape = allocation(repr(self), "weight", (self.out_features, self.in_features), dt)
        self.add_param("weight", initial_weight(repr(self), "weight",
                                                weight_init(shape, rng=rng, dtype=dt), shape, dt))
        if self.bias:
            self.add_param("bias", init.zeros((self.out_features,), dtype=dt))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}" + ("" if self.bias else ", bias=False")

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, (..., "N", self.in_features))
        y = x @ self.params["weight"].T
        if self.bias:
            y += self.params["bias"]
        if grad_enabled():       # under no_grad nothing is kept: no copy of x
            self._cache = _LinearCache(np.array(x, order="C").reshape(-1, self.in_features),
                                       x.shape)
        else:
            self._cache = NO_CACHE
        return y.astype(x.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        x2, x_shape = self.saved()
        self.check_dy(dy, x_shape[:-1] + (self.out_features,))
        dy2 = dy.reshape(-1, self.out_features)
        self.grads["weight"] += dy2.T @ x2
        if self.bias:
            self.grads["bias"] += dy2.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return (dy @ self.params["weight"]).astype(x2.dtype, copy=False)


class Flatten(Layer):
    """Flatten axes ``start_dim`` and after into one: ``(N, C, H, W) -> (N, C·H·W)``.

    Shape
    -----
    x : (N, d_1, ..., d_k), y : (N, d_1 ⋯ d_k) for the default ``start_dim=1``.

    Notes
    -----
    A reshape moves no values, so ∂L/∂x is δ reshaped back to x's shape.
    """

    def __init__(self, start_dim: int = 1):
        super().__init__()
        if isinstance(start_dim, bool) or not isinstance(start_dim, int) or start_dim < 0:
            raise ValueError(f"Flatten: start_dim must be a non-negative integer, got {start_dim!r}")
        self.start_dim = start_dim

    def extra_repr(self) -> str:
        return "" if self.start_dim == 1 else f"start_dim={self.start_dim}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_array(self, x, (...,))
        if x.ndim < self.start_dim + 1:
            raise ValueError(f"{self!r}: expected x with at least {self.start_dim + 1} axes, "
                             f"got shape {x.shape}")
        self._cache = x.shape
        return x.reshape(x.shape[: self.start_dim] + (math.prod(x.shape[self.start_dim:]),))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape = self.saved()
        self.check_dy(dy, shape[: self.start_dim] + (math.prod(shape[self.start_dim:]),))
        return dy.reshape(shape)
