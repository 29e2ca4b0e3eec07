"""Batch normalization over the batch (and spatial) axes, per channel."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..layer import Layer
from ..validation import check_array, float_dtype, number_in, positive_int


_BATCHNORM_DOC = r"""Batch normalization of {what}: y = γ ⊙ (x − μ) / √(σ² + ε) + β, per channel.

In training mode μ and σ² are the mean and the biased variance of the current batch over every
axis except the channel axis C (over {axes}: M = {M} values per channel), and the running
statistics are updated as in PyTorch:

    running_mean ← (1 − m) running_mean + m μ,
    running_var  ← (1 − m) running_var  + m σ² M / (M − 1)     (the unbiased batch variance).

In evaluation mode μ and σ² are the running statistics, so the layer is a fixed per-channel
affine map.

Parameters
----------
num_features : int
    C, the number of channels.
eps : float > 0, default 1e-5
    Added to the variance before the square root.
momentum : float in [0, 1], default 0.1
    Weight m of the current batch in the running statistics.
affine : bool, default True
    Learn a per-channel scale ``weight`` (γ, starts at 1) and shift ``bias`` (β, starts at 0);
    without it γ = 1 and β = 0.
dtype : float32 (default) or float64
    dtype of the parameters and of the running statistics.

Attributes
----------
running_mean, running_var : ndarray of shape (C,)
    The running statistics, starting at 0 and 1. Plain attributes, not parameters: optimizers
    and gradient checks do not see them; ``astype`` converts them too.

Shape
-----
x : {shape}. y has the shape and dtype of x.

Notes
-----
With x̂ = (x − μ)/√(σ² + ε), δ = ∂L/∂y, and sums Σ and means over the M values of a channel:

    ∂L/∂γ = Σ δ ⊙ x̂,    ∂L/∂β = Σ δ,
    ∂L/∂x = γ/√(σ² + ε) · (δ − mean(δ) − x̂ ⊙ mean(δ ⊙ x̂))    in training mode,
    ∂L/∂x = γ/√(σ² + ε) · δ                                     in evaluation mode.

In training mode μ and σ² depend on x: the two subtracted means are the paths through μ and
through σ² (∂μ/∂x_i = 1/M, ∂σ²/∂x_i = 2(x_i − μ)/M). Forward keeps x̂ and 1/√(σ² + ε) for
backward. A training batch with one value per channel (M = 1) raises ValueError, since its
variance is 0 and x̂ would be 0 whatever x is.
"""


class _BatchNormCache(NamedTuple):
    """What BatchNorm backward needs."""

    xhat: np.ndarray        # x̂ = (x − μ) / √(σ² + ε), x's shape
    inv_std: np.ndarray     # 1 / √(σ² + ε), shape (1, C, 1, ...)
    training: bool          # the mode of that forward: whether μ and σ² depended on x


class _BatchNorm(Layer):
    """Shared implementation of BatchNorm1D and BatchNorm2D (subclasses give the layouts)."""

    _layouts: tuple = ()   # shape patterns with "C" for the channel count

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, dtype=np.float32):
        super().__init__()
        who = type(self).__name__
        self.num_features = positive_int(who, "num_features", num_features)
        self.eps = number_in(who, "eps", eps, 0.0, np.inf, low_open=True, high_open=True)
        self.momentum = number_in(who, "momentum", momentum, 0.0, 1.0)
        self.affine = bool(affine)
        dt = float_dtype(dtype, repr(self))
        if self.affine:
            self.add_param("weight", np.ones(self.num_features, dtype=dt))
            self.add_param("bias", np.zeros(self.num_features, dtype=dt))
        self.running_mean = np.zeros(self.num_features, dtype=dt)
        self.running_var = np.ones(self.num_features, dtype=dt)

    def extra_repr(self) -> str:
        s = f"{self.num_features}"
        if self.eps != 1e-5:
            s += f", eps={self.eps}"
        if self.momentum != 0.1:
            s += f", momentum={self.momentum}"
        if not self.affine:
            s += ", affine=False"
        return s

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """The running statistics (used in ``eval()``), saved with checkpoints."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def astype(self, dtype) -> "_BatchNorm":
        """Convert parameters, gradients and running statistics to ``dtype``; returns self."""
        super().astype(dtype)
        dt = float_dtype(dtype, repr(self))
        self.running_mean = np.ascontiguousarray(self.running_mean, dtype=dt)
        self.running_var = np.ascontiguousarray(self.running_var, dtype=dt)
        return self

    def _check_input(self, x) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, (...,))
        patterns = [tuple(self.num_features if p == "C" else p for p in lay) for lay in self._layouts]
        for pattern in patterns:
            if x.ndim == len(pattern) and x.shape[1] == self.num_features:
                return x
        expected = " or ".join("(" + ", ".join(str(p) for p in pat) + ")" for pat in patterns)
        raise ValueError(f"{who}: expected x of shape {expected}, got {tuple(x.shape)}")

    def _affine(self, ndim: int):
        """γ and β reshaped to broadcast against x ((1, C, 1, ...)), or None without affine."""
        if not self.affine:
            return None, None
        shape = (1, self.num_features) + (1,) * (ndim - 2)
        return (self.params["weight"].reshape(shape), self.params["bias"].reshape(shape))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check_input(x)
        axes = (0,) + tuple(range(2, x.ndim))
        m = x.size // self.num_features
        bshape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if self.training:
            if m <= 1:
                raise ValueError(f"{self!r}: expected more than 1 value per channel when "
                                 f"training, got x of shape {tuple(x.shape)}")
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)          # biased: normalises this batch
            mom = self.momentum
            self.running_mean *= 1 - mom
            self.running_mean += mom * mean.reshape(-1)
            self.running_var *= 1 - mom
            self.running_var += mom * var.reshape(-1) * (m / (m - 1))   # unbiased
        else:
            mean = self.running_mean.reshape(bshape)
            var = self.running_var.reshape(bshape)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        xhat = ((x - mean) * inv_std).astype(x.dtype, copy=False)
        gamma, beta = self._affine(x.ndim)
        y = xhat * gamma + beta if self.affine else xhat.copy()
        self._cache = _BatchNormCache(xhat, inv_std, self.training)
        return y.astype(x.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        xhat, inv_std = cache.xhat, cache.inv_std
        self.check_dy(dy, xhat.shape)
        axes = (0,) + tuple(range(2, xhat.ndim))
        if self.affine:
            self.grads["weight"] += (dy * xhat).sum(axis=axes)
            self.grads["bias"] += dy.sum(axis=axes)
            gamma, _ = self._affine(xhat.ndim)
            scale = gamma * inv_std
        else:
            scale = inv_std
        if cache.training:
            dx = scale * (dy - dy.mean(axis=axes, keepdims=True)
                          - xhat * (dy * xhat).mean(axis=axes, keepdims=True))
        else:
            dx = scale * dy
        return dx.astype(xhat.dtype, copy=False)


class BatchNorm1D(_BatchNorm):
    _layouts = (("N", "C"), ("N", "C", "L"))
    __doc__ = _BATCHNORM_DOC.format(what="(N, C) features or (N, C, L) sequences",
                                    axes="N, or N and L", M="N or N·L", shape="(N, C) or (N, C, L)")


class BatchNorm2D(_BatchNorm):
    _layouts = (("N", "C", "H", "W"),)
    __doc__ = _BATCHNORM_DOC.format(what="(N, C, H, W) images", axes="N, H and W", M="N·H·W",
                                    shape="(N, C, H, W)")
