"""Convolution layers: Conv1D, Conv2D, Conv3D — one N-d implementation (im2col + GEMM)."""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import init
from ..geometry import ntuple, window
from ..kernels.conv import col2im, im2col
from ..layer import Layer
from ..validation import check_array, float_dtype, positive_int

_SYMBOLS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

_DOC = r"""{n}-D convolution (cross-correlation, as in every deep-learning library) over (N, C, {sp}).

    With x_pad the input padded with zeros, stride s, dilation d and taps j over the kernel,

        y[n, o, p] = b[o] + Σ_c Σ_j W[o, c, j] · x_pad[n, c, p·s + j·d]        (p, j ∈ ℕ^{n})

    i.e. every output channel o slides its own (C, {k}) filter over all input channels. The same
    weights are used at every position (weight sharing).

    Parameters
    ----------
    in_channels, out_channels : int
        C and O.
    kernel_size : int or tuple of {n} ints
        K per spatial axis.
    stride : int or tuple of {n} ints, default 1
        S, the step between neighbouring windows.
    padding : int, tuple of {n} ints, "valid" or "same", default 0
        P zeros added on both sides of each spatial axis. ``"valid"`` is 0; ``"same"`` (stride 1
        only) pads d·(K − 1) in total, the odd one after, so the output has the input's size.
    dilation : int or tuple of {n} ints, default 1
        d, the spacing between kernel taps (1 = an ordinary, dense kernel).
    bias : bool, default True
        Learn an additive bias b of shape (O,); it starts at zero.
    dtype : float32 (default) or float64
        dtype of the parameters.
    weight_init : callable, optional
        ``weight_init(shape, rng=..., dtype=...)``. Default: :func:`layerkit.init.kaiming_uniform`
        with a = √5, PyTorch's default, i.e. U(−1/√fan_in, 1/√fan_in) with fan_in = C·∏K.
    seed : int or numpy Generator, optional
        Seed of the initializer.

    Attributes
    ----------
    params : ``weight`` (O, C, {k}), ``bias`` (O,)

    Shape
    -----
    x : (N, C, {sp}).
    y : (N, O, {osp}), per spatial axis of size W

        W_out = ⌊(W − K + 2P) / S⌋ + 1,

    with K replaced by the effective extent d·(K − 1) + 1 under dilation (and 2P by P_lo + P_hi
    for "same" with an even extent). A kernel larger than the padded input raises ValueError.

    Notes
    -----
    With δ = ∂L/∂y of shape (N, O, {osp}):

    - ∂L/∂b[o] = Σ_n Σ_p δ[n, o, p].
    - ∂L/∂W = x ⋆ δ: ∂L/∂W[o, c, j] = Σ_n Σ_p δ[n, o, p] · x_pad[n, c, p·s + j·d] — the
      cross-correlation of the input with δ, summed over every position where the shared weight
      was used.
    - ∂L/∂x = the full convolution of δ with the kernels (δ ⋆ rot180(W), δ dilated by the
      stride): ∂L/∂x_pad[n, c, i] = Σ_o Σ_(p, j: p·s + j·d = i) δ[n, o, p] · W[o, c, j], and ∂L/∂x
      is ∂L/∂x_pad with the padding cut off. Positions no window reads get 0.

    Implementation: im2col copies the windows into columns cols[n] of shape (C·∏K, ∏W_out), so
    y[n] = W₂ cols[n] + b with W₂ = W reshaped (O, C·∏K), one batched BLAS product. Backward:
    ∂L/∂W₂ = Σ_n δ[n] cols[n]ᵀ, dcols[n] = W₂ᵀ δ[n], and col2im scatter-adds dcols back onto x
    (the full convolution above). The columns are the cache kept for backward.
    """


def _show(t: tuple):
    """A tuple hyperparameter as the user would write it: an int when all entries agree."""
    return t[0] if all(v == t[0] for v in t) else t


def _kernel_args(g, out_spatial: tuple) -> tuple:
    """im2col/col2im arguments for the 3-D kernels, with singleton dummy axes in front."""
    pad = 3 - len(g.kernel)
    return (*((1,) * pad + tuple(out_spatial)), *((1,) * pad + g.kernel),
            *((1,) * pad + g.stride), *((1,) * pad + g.dilation), *((0,) * pad + g.pad_lo))


def _as3(x: np.ndarray, ndim: int) -> np.ndarray:
    """View (N, C, *spatial) with ndim spatial axes as (N, C, D, H, W) (contiguous)."""
    return np.ascontiguousarray(x).reshape(x.shape[:2] + (1,) * (3 - ndim) + x.shape[2:])


class ConvND(Layer):
    """Base of Conv1D/2D/3D; subclasses set ``ndim`` (1, 2 or 3)."""

    ndim: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
                 dilation=1, bias: bool = True, dtype=np.float32, weight_init=None, seed=None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        who = f"{name}({self.in_channels}, {self.out_channels}, kernel_size={kernel_size!r})"
        self.geometry = window(who, self.ndim, kernel_size, stride, padding, dilation)
        self.kernel_size = self.geometry.kernel
        self.stride = self.geometry.stride
        self.dilation = self.geometry.dilation
        self.padding = padding if isinstance(padding, str) else \
            tuple(lo for lo, _ in self.geometry.padding)
        self.bias = bool(bias)
        dt = float_dtype(dtype, repr(self))
        rng = np.random.default_rng(seed)
        weight_init = weight_init or functools.partial(init.kaiming_uniform, a=math.sqrt(5.0))
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.add_param("weight", np.ascontiguousarray(weight_init(shape, rng=rng, dtype=dt)))
        if self.bias:
            self.add_param("bias", init.zeros((self.out_channels,), dtype=dt))
        self._cols = None           # reusable column buffer (its contents are the cache)
        self._dcols = None          # reusable buffer for Wᵀ δ in backward

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={_show(self.kernel_size)}"]
        if any(s != 1 for s in self.stride):
            parts.append(f"stride={_show(self.stride)}")
        if isinstance(self.padding, str):
            if self.padding != "valid":
                parts.append(f"padding={self.padding!r}")
        elif any(self.padding):
            parts.append(f"padding={_show(self.padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation={_show(self.dilation)}")
        if not self.bias:
            parts.append("bias=False")
        return ", ".join(parts)

    def _args3(self, out_spatial: tuple) -> tuple:
        return _kernel_args(self.geometry, out_spatial)

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = repr(self)
        check_array(who, x, ("N", self.in_channels) + _SYMBOLS[self.ndim])
        out_spatial = self.geometry.output_shape(who, x.shape[2:])
        n = x.shape[0]
        x3 = _as3(x, self.ndim)
        rows, positions = self.in_channels * math.prod(self.kernel_size), math.prod(out_spatial)
        shape = (n, rows, positions)
        if self._cols is None or self._cols.shape != shape or self._cols.dtype != x.dtype:
            self._cols = np.empty(shape, dtype=x.dtype)
        cols = im2col(x3, self._cols, *self._args3(out_spatial))
        w2 = self.params["weight"].reshape(self.out_channels, rows).astype(x.dtype, copy=False)
        y = np.matmul(w2, cols)                                    # (N, O, positions)
        if self.bias:
            y += self.params["bias"].astype(x.dtype, copy=False)[:, None]
        self._cache = (cols, x.shape, out_spatial)
        return y.reshape((n, self.out_channels) + out_spatial)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cols, x_shape, out_spatial = self.saved()
        n = x_shape[0]
        self.check_dy(dy, (n, self.out_channels) + out_spatial)
        dt = cols.dtype
        d2 = np.ascontiguousarray(dy, dtype=dt).reshape(n, self.out_channels, -1)
        rows = cols.shape[1]
        if self.bias:
            self.grads["bias"] += d2.sum(axis=(0, 2))
        # ∂L/∂W = Σ_n δ[n] cols[n]ᵀ (batched product, then the sum over the batch)
        dw = np.matmul(d2, cols.transpose(0, 2, 1)).sum(axis=0)
        self.grads["weight"] += dw.reshape(self.params["weight"].shape)
        # ∂L/∂x: dcols = W₂ᵀ δ, then col2im (the full convolution of δ with the kernels)
        w2 = self.params["weight"].reshape(self.out_channels, rows).astype(dt, copy=False)
        if self._dcols is None or self._dcols.shape != cols.shape or self._dcols.dtype != dt:
            self._dcols = np.empty_like(cols)
        dcols = np.matmul(w2.T, d2, out=self._dcols)
        dx3 = np.empty((n, self.in_channels) + (1,) * (3 - self.ndim) + x_shape[2:], dtype=dt)
        col2im(dcols, dx3, *self._args3(out_spatial))
        return dx3.reshape(x_shape)


class Conv1D(ConvND):
    __doc__ = _DOC.format(n=1, sp="L", osp="L_out", k="K")
    ndim = 1


class Conv2D(ConvND):
    __doc__ = _DOC.format(n=2, sp="H, W", osp="H_out, W_out", k="K_h, K_w")
    ndim = 2


class Conv3D(ConvND):
    __doc__ = _DOC.format(n=3, sp="D, H, W", osp="D_out, H_out, W_out", k="K_d, K_h, K_w")
    ndim = 3


class ConvTransposeND(Layer):
    """Base of the transposed convolutions; subclasses set ``ndim``."""

    ndim: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
                 output_padding=0, dilation=1, bias: bool = True, dtype=np.float32,
                 weight_init=None, seed=None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        who = f"{name}({self.in_channels}, {self.out_channels}, kernel_size={kernel_size!r})"
        if isinstance(padding, str):
            raise ValueError(f"{who}: padding must be an int or a tuple of {self.ndim} ints, "
                             f"got {padding!r}")
        self.geometry = window(who, self.ndim, kernel_size, stride, padding, dilation)
        self.kernel_size, self.stride = self.geometry.kernel, self.geometry.stride
        self.dilation, self.padding = self.geometry.dilation, self.geometry.pad_lo
        self.output_padding = ntuple(who, "output_padding", output_padding, self.ndim, minimum=0)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"{who}: output_padding must be smaller than the stride "
                             f"{_show(self.stride)}, got {_show(self.output_padding)}")
        self.bias = bool(bias)
        dt = float_dtype(dtype, repr(self))
        weight_init = weight_init or functools.partial(init.kaiming_uniform, a=math.sqrt(5.0))
        # PyTorch's layout (in, out, *k), so its default gives U(±1/√(out·∏K)) as PyTorch's does
        shape = (self.in_channels, self.out_channels) + self.kernel_size
        w = weight_init(shape, rng=np.random.default_rng(seed), dtype=dt)
        self.add_param("weight", np.ascontiguousarray(w))
        if self.bias:
            self.add_param("bias", init.zeros((self.out_channels,), dtype=dt))

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={_show(self.kernel_size)}"]
        for label, value, default in (("stride", self.stride, 1), ("padding", self.padding, 0),
                                      ("output_padding", self.output_padding, 0),
                                      ("dilation", self.dilation, 1)):
            if any(v != default for v in value):
                parts.append(f"{label}={_show(value)}")
        if not self.bias:
            parts.append("bias=False")
        return ", ".join(parts)

    def output_shape(self, spatial: tuple) -> tuple:
        """(W − 1)·S − 2P + d·(K − 1) + output_padding + 1 per spatial axis."""
        return tuple((w - 1) * s - 2 * p + d * (k - 1) + op + 1 for w, s, p, d, k, op in zip(
            spatial, self.stride, self.padding, self.dilation, self.kernel_size,
            self.output_padding))

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = repr(self)
        check_array(who, x, ("N", self.in_channels) + _SYMBOLS[self.ndim])
        out_spatial = self.output_shape(x.shape[2:])
        if min(out_spatial) < 1:
            raise ValueError(f"{who}: input of spatial shape {x.shape[2:]} gives an empty output "
                             f"{out_spatial}")
        n, rows = x.shape[0], self.out_channels * math.prod(self.kernel_size)
        w2 = self.params["weight"].reshape(self.in_channels, rows).astype(x.dtype, copy=False)
        cols = np.matmul(w2.T, _as3(x, self.ndim).reshape(n, self.in_channels, -1))
        y3 = np.empty((n, self.out_channels) + (1,) * (3 - self.ndim) + out_spatial, x.dtype)
        col2im(cols, y3, *_kernel_args(self.geometry, x.shape[2:]))
        if self.bias:
            y3 += self.params["bias"].astype(x.dtype, copy=False).reshape(-1, 1, 1, 1)
        self._cache = x
        return y3.reshape((n, self.out_channels) + out_spatial)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self.saved()
        n, spatial = x.shape[0], x.shape[2:]
        self.check_dy(dy, (n, self.out_channels) + self.output_shape(spatial))
        rows = self.out_channels * math.prod(self.kernel_size)
        dcols = np.empty((n, rows, math.prod(spatial)), dtype=x.dtype)
        im2col(_as3(dy.astype(x.dtype, copy=False), self.ndim), dcols,
               *_kernel_args(self.geometry, spatial))
        if self.bias:
            self.grads["bias"] += dy.sum(axis=(0,) + tuple(range(2, dy.ndim)))
        x2 = np.ascontiguousarray(x).reshape(n, self.in_channels, -1)
        dw = np.matmul(x2, dcols.transpose(0, 2, 1)).sum(axis=0)      # Σ_n x[n] dcols[n]ᵀ
        self.grads["weight"] += dw.reshape(self.params["weight"].shape)
        w2 = self.params["weight"].reshape(self.in_channels, rows).astype(x.dtype, copy=False)
        return np.matmul(w2, dcols).reshape(x.shape)                   # W₂ im2col(δ)


class ConvTranspose2D(ConvTransposeND):
    r"""2-D transposed convolution (the "deconvolution" of encoder–decoder nets).

    Its forward is the input gradient of a Conv2D with the same kernel_size, stride, padding and
    dilation: every input pixel scatters a copy of its (C_out, K_h, K_w) kernel, scaled by its
    value, into the output at stride S, overlaps adding up,

        y[n, o, i·S − P + j·d] += Σ_c x[n, c, i] · W[c, o, j]  (+ b[o]),

    so ⟨conv(x), y⟩ = ⟨x, convT(y)⟩ for the matching convolution without bias.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, bias, dtype, weight_init, seed
        As for :class:`Conv2D` (padding is an int or a tuple; no "same").
    output_padding : int or tuple of 2 ints, default 0
        Extra rows/columns added after the output (must be smaller than the stride), to pick one
        of the input sizes a strided Conv2D maps to the same output size.

    Attributes
    ----------
    params : ``weight`` (C_in, C_out, K_h, K_w) — PyTorch's layout — and ``bias`` (C_out,)

    Shape
    -----
    x : (N, C_in, H, W); y : (N, C_out, H_out, W_out) with
    H_out = (H − 1)·S − 2P + d·(K − 1) + output_padding + 1 (likewise W_out).

    Notes
    -----
    Its backward is that convolution's forward. With cols = im2col(δ) (the windows of δ that the
    matching convolution would read) and W₂ = W reshaped (C_in, C_out·∏K):
    ∂L/∂x[n] = W₂ cols[n] (a convolution of δ), ∂L/∂W₂ = Σ_n x[n] cols[n]ᵀ, ∂L/∂b = Σ δ over
    the batch and positions.
    """

    ndim = 2
