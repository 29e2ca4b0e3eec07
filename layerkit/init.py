"""Weight initializers.

Every initializer has the signature ``init(shape, *, rng=None, dtype=np.float32) -> ndarray``
(extra keywords allowed), so a layer can take any of them, or a user's own function, as an
override. Fans follow PyTorch's convention for a weight of shape ``(out, in, *kernel)``:
``fan_in = in · prod(kernel)``, ``fan_out = out · prod(kernel)``.
"""

from __future__ import annotations

import math

import numpy as np

from .validation import float_dtype

__all__ = ["fans", "zeros", "ones", "glorot_uniform", "glorot_normal", "kaiming_normal",
           "kaiming_uniform", "orthogonal"]


def _rng(rng) -> np.random.Generator:
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``; a 1-D shape has fan n."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        raise ValueError("fans: a weight needs at least one axis, got shape ()")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape, *, rng=None, dtype=np.float32) -> np.ndarray:
    """All zeros (biases)."""
    return np.zeros(shape, dtype=float_dtype(dtype, "zeros"))


def ones(shape, *, rng=None, dtype=np.float32) -> np.ndarray:
    """All ones (batch-norm scale)."""
    return np.ones(shape, dtype=float_dtype(dtype, "ones"))


def glorot_uniform(shape, *, rng=None, dtype=np.float32, gain: float = 1.0) -> np.ndarray:
    """Glorot/Xavier uniform: U(−a, a) with a = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _rng(rng).uniform(-a, a, size=shape).astype(float_dtype(dtype, "glorot_uniform"))


def glorot_normal(shape, *, rng=None, dtype=np.float32, gain: float = 1.0) -> np.ndarray:
    """Glorot/Xavier normal: N(0, σ²) with σ = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (_rng(rng).standard_normal(shape) * std).astype(float_dtype(dtype, "glorot_normal"))


def kaiming_normal(shape, *, rng=None, dtype=np.float32, a: float = 0.0,
                   mode: str = "fan_in") -> np.ndarray:
    """Kaiming/He normal: N(0, σ²) with σ = √(2 / ((1 + a²) · fan)), fan = fan_in or fan_out.

    ``a`` is the negative slope of the (leaky) ReLU that follows (0 for ReLU).
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_normal: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    std = math.sqrt(2.0 / ((1.0 + a * a) * fan))
    return (_rng(rng).standard_normal(shape) * std).astype(float_dtype(dtype, "kaiming_normal"))


def kaiming_uniform(shape, *, rng=None, dtype=np.float32, a: float = 0.0,
                    mode: str = "fan_in") -> np.ndarray:
    """Kaiming/He uniform: U(−b, b) with b = √3 · √(2 / ((1 + a²) · fan))."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * math.sqrt(2.0 / ((1.0 + a * a) * fan))
    return _rng(rng).uniform(-bound, bound, size=shape).astype(float_dtype(dtype, "kaiming_uniform"))


def orthogonal(shape, *, rng=None, dtype=np.float32, gain: float = 1.0) -> np.ndarray:
    """A (semi-)orthogonal matrix, for recurrent weights: rows (or columns) orthonormal, × gain.

    Built from the QR decomposition of a Gaussian matrix, with the signs of R's diagonal folded
    into Q so the result is uniformly distributed. Shapes with more than two axes are flattened to
    ``(shape[0], prod(shape[1:]))``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: needs a shape with at least 2 axes, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    a = _rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(float_dtype(dtype, "orthogonal"))
