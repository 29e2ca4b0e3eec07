"""Local response normalisation across channels (AlexNet), PyTorch's definition."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array, number_in, positive_int


class _LRNCache(NamedTuple):
    """What LocalResponseNorm's backward needs (float64)."""

    x: np.ndarray           # a copy of the input
    scale: np.ndarray       # d = k + (α/n) Σ_window x², x's shape
    dtype: np.dtype         # x's, which ∂L/∂x takes


class LocalResponseNorm(Layer):
    r"""Each activation divided by a power of the squares of its channel neighbours:

        y[n, c, i] = x[n, c, i] / d[n, c, i]^β,
        d[n, c, i] = k + (α / s) Σ_{c' ∈ W(c)} x[n, c', i]²,
        W(c) = {c − ⌊s/2⌋, …, c + ⌊(s − 1)/2⌋} ∩ {0, …, C − 1}

    (channels outside 0 … C − 1 count as zeros, the divisor is always s), exactly PyTorch's
    ``LocalResponseNorm(size, alpha, beta, k)``. AlexNet (Krizhevsky et al. 2012) used s = 5,
    α = 5e-4 (PyTorch's α is the paper's α times s), β = 0.75, k = 2.

    Parameters
    ----------
    size : int >= 1
        s, the number of neighbouring channels in the window.
    alpha : float >= 0, default 1e-4
    beta : float >= 0, default 0.75
    k : float > 0, default 1.0
        d >= k > 0, so the division is always defined.

    Shape
    -----
    x : (N, C, *spatial) with at least one spatial axis; y : x's shape and dtype.

    Notes
    -----
    With δ = ∂L/∂y, and c ∈ W⁻¹(j) meaning j ∈ W(c), i.e. c ∈ {j − ⌊(s − 1)/2⌋, …, j + ⌊s/2⌋}:

        ∂L/∂x[n, j, i] = δ[n, j, i] d[n, j, i]^(−β)
                         − (2αβ / s) x[n, j, i] Σ_{c ∈ W⁻¹(j)} δ[n, c, i] x[n, c, i] d[n, c, i]^(−β−1)

    Computed in float64; the window sums add the s shifted copies (no running-sum
    cancellation). The cache is a float64 copy of x and d.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        name = type(self).__name__
        self.size = positive_int(name, "size", size)
        self.alpha = number_in(name, "alpha", alpha, 0.0, float("inf"), high_open=True)
        self.beta = number_in(name, "beta", beta, 0.0, float("inf"), high_open=True)
        self.k = number_in(name, "k", k, 0.0, float("inf"), low_open=True, high_open=True)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}"

    def _window_sum(self, v: np.ndarray, before: int, after: int) -> np.ndarray:
        """out[:, c] = Σ_{c' = c − before}^{c + after} v[:, c'] (zeros outside the channels)."""
        C = v.shape[1]
        pad = [(0, 0)] * v.ndim
        pad[1] = (before, after)
        padded = np.pad(v, pad)
        out = np.zeros_like(v)
        for o in range(before + after + 1):
            out += padded[:, o:o + C]
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, (...,))
        if x.ndim < 3:
            raise ValueError(f"{who}: expected x of shape (N, C, *spatial) with at least one "
                             f"spatial axis, got {tuple(x.shape)}")
        xf = np.array(x, dtype=np.float64)
        s = self.size
        scale = self.k + (self.alpha / s) * self._window_sum(xf * xf, s // 2, (s - 1) // 2)
        self._cache = _LRNCache(xf, scale, x.dtype)
        return (xf * scale ** -self.beta).astype(x.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.x.shape)
        x, d, s = cache.x, cache.scale, self.size
        g = dy.astype(np.float64, copy=False)
        inner = g * x * d ** (-self.beta - 1.0)
        # c ∈ W⁻¹(j): from j − ⌊(s − 1)/2⌋ to j + ⌊s/2⌋, the window W mirrored
        back = self._window_sum(inner, (s - 1) // 2, s // 2)
        dx = g * d ** -self.beta - (2.0 * self.alpha * self.beta / s) * x * back
        return dx.astype(cache.dtype, copy=False)
