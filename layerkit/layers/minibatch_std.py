"""MinibatchStd: the batch's spread as one extra feature, so that a discriminator can tell a
batch of near-identical samples (a collapsed generator) from a varied one."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array, number_in


class _MinibatchStdCache(NamedTuple):
    """∂σ/∂x, which ∂L/∂x takes, and the output's shape, which dy must have."""

    dsigma_dx: np.ndarray   # (x − μ) / (N·M·s), x's shape
    y_shape: tuple


class MinibatchStd(Layer):
    r"""y = x with one more channel holding σ, the mean over features of the standard
    deviation over the batch (Karras et al. 2018, "Progressive Growing of GANs"):

    .. math::
        μ_i = \frac1N \sum_n x_{n,i}, \qquad
        s_i = \sqrt{\frac1N \sum_n (x_{n,i} − μ_i)^2 + ε}, \qquad
        σ = \frac1M \sum_i s_i,

    where i runs over the M = C·(spatial size) features of a sample, and
    y[n, :C] = x[n], y[n, C, ...] = σ for every sample n and position. The variance is the
    biased one (divided by N), as BatchNorm's batch statistics. The statistics come from the
    batch in training and evaluation alike (there is nothing to keep running).

    Parameters
    ----------
    eps : float, default 1e-8
        ε > 0 under the square root, so that a constant feature (s_i = √ε) has a finite
        derivative.

    Shape
    -----
    x : (N, C, *spatial) with M >= 1 features (N = 0 gives an empty (0, C + 1, *spatial)); y :
    (N, C + 1, *spatial).

    Notes
    -----
    With δ = ∂L/∂y and g = Σ_{n, positions} δ[n, C, ...] (σ is copied to every position of
    every sample), ∂s_i/∂x_{n,i} = (x_{n,i} − μ_i) / (N s_i) (the terms through μ_i sum to 0),
    so

    .. math::
        \frac{∂L}{∂x_{n,i}} = δ_{n,i} + g \frac{x_{n,i} − μ_i}{N·M·s_i}.

    No parameters.
    """

    def __init__(self, *, eps: float = 1e-8):
        super().__init__()
        self.eps = number_in(type(self).__name__, "eps", eps, 0.0, np.inf, low_open=True,
                             high_open=True)

    def extra_repr(self) -> str:
        return "" if self.eps == 1e-8 else f"eps={self.eps}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = repr(self)
        check_array(who, x, (...,))
        if x.ndim < 2:
            raise ValueError(f"{who}: expected x of shape (N, C, ...), got {tuple(x.shape)}")
        if x.shape[0] and not x[0].size:
            raise ValueError(f"{who}: expected at least one feature per sample (σ is their mean), "
                             f"got x of shape {tuple(x.shape)}")
        n = x.shape[0]
        y_shape = (n, x.shape[1] + 1) + x.shape[2:]
        y = np.empty(y_shape, dtype=x.dtype)
        y[:, :-1] = x
        if n == 0:
            self._cache = _MinibatchStdCache(np.zeros_like(x), y_shape)
            return y
        centred = x - x.mean(axis=0)
        s = np.sqrt((centred * centred).mean(axis=0) + x.dtype.type(self.eps))
        y[:, -1] = s.mean()
        m = s.size
        self._cache = _MinibatchStdCache((centred / (n * m * s)).astype(x.dtype, copy=False),
                                         y_shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        self.check_dy(dy, cache.y_shape)
        g = dy[:, -1].sum()
        return (dy[:, :-1] + g * cache.dsigma_dx).astype(cache.dsigma_dx.dtype, copy=False)
