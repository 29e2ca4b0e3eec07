"""Convolution layers: Conv1D, Conv2D, Conv3D — one N-d implementation (im2col + GEMM)."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .. import init
from ..geometry import ntuple, window
from ..kernels.conv import col2im, col2im_parallel, im2col, im2col_parallel
from ..layer import Layer
from ..validation import (allocation, check_array, float_dtype, initial_weight, positive_int,
                          window_within_limits)
from .conv_algorithms import (DEPTHWISE, IM2COL, WINOGRAD, DepthwiseConv, Im2colConv, Scratch,
                              WinogradConv, as5, by_group, interior, kernel_args, matmul_by_group,
                              pick_kernel, transposed_copy)

_SYMBOLS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

_DOC = r"""{n}-D convolution (cross-correlation, as in every deep-learning library) over (N, C, {sp}).

    With x_pad the input padded with zeros, stride s, dilation d and taps j over the kernel,

        y[n, o, p] = b[o] + Σ_c Σ_j W[o, c, j] · x_pad[n, c, p·s + j·d]        (p, j ∈ ℕ^{n})

    i.e. every output channel o slides its own (C, {k}) filter over all input channels. The same
    weights are used at every position (weight sharing). With ``groups`` = G the channels split
    into G groups of C/G inputs and O/G outputs: output channel o of group g = ⌊o·G/O⌋ sums only
    over that group's inputs, c = g·C/G + c' with W[o, c', j] (c' < C/G). G = C (and O a multiple
    of C) is a depthwise convolution: each input channel has its own O/C filters.

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
    groups : int, default 1
        G; C and O must both be divisible by it.
    bias : bool, default True
        Learn an additive bias b of shape (O,); it starts at zero.
    dtype : float32 (default) or float64
        dtype of the parameters.
    weight_init : callable, optional
        ``weight_init(shape, rng=..., dtype=...)``. Default: :func:`layerkit.init.kaiming_uniform`
        with a = √5, PyTorch's default, i.e. U(−1/√fan_in, 1/√fan_in) with fan_in = (C/G)·∏K.
    seed : int or numpy Generator, optional
        Seed of the initializer.
    algorithm : "auto" (default), "im2col", "winograd" or "depthwise"
        How forward and the gradients are computed (same result up to rounding). "winograd" is
        Winograd's F(4×4, 3×3) (Conv2D with a 3×3 kernel, stride 1, dilation 1, padding ≤ 2 and
        groups = 1 only): 4× fewer multiplications, float32 rounding error a few times larger
        than im2col's. "auto" uses it where it applies, both channel counts are ≥ 32 and the
        square of the smaller one times the number of output positions is ≥ 32²·24·24 (32
        channels from 24×24 outputs, 64 from 12×12, 128 from 6×6: where it measured faster).
        "depthwise" is direct loops without columns (Conv1D and Conv2D with groups =
        in_channels, any multiplier O/C, kernel, stride, padding and dilation); "auto" takes it
        there from 3 input channels on, and for one or two input channels (groups = C = 1 or
        2) from 24·24 output positions (where it measured faster than im2col), for layers of at
        least 4096 multiply-adds per sample (O·∏out·∏K; tinier ones take im2col, as fast there,
        so that the loops compile only when needed). "auto" takes im2col for the other grouped
        convolutions and for Conv3D.
        :meth:`algorithm_for` tells which one a given input gets.

    Attributes
    ----------
    params : ``weight`` (O, C/G, {k}), ``bias`` (O,)

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
    - With G groups both hold per group g, on its slices x_g (inputs), δ_g (outputs) and W_g:
      ∂L/∂W_g = x_g ⋆ δ_g and ∂L/∂x_g = δ_g ⋆ rot180(W_g); no gradient crosses groups.

    Implementation (layers/conv_algorithms.py, a strategy object per algorithm, picked per
    forward and recorded in the cache for backward): the input is padded once, and im2col
    copies its windows into columns cols of shape (C·∏K, B, ∏W_out) for a block of B samples
    (about 512 KiB of columns, so that they are still in cache when read), so that Y = W₂ cols + b
    with W₂ = W reshaped (O, C·∏K) is one BLAS GEMM of shape (O, B·∏W_out) per block;
    one pass moves Y into the (N, O, ...) layout and adds the bias. The padded input is the
    cache kept for backward, which builds each block's columns again and, with δ's block in
    the same (O, B·∏W_out) layout: ∂L/∂W₂ += δ colsᵀ (one GEMM per block, the blocks' sums
    added in block order), dcols = W₂ᵀ δ, and col2im scatter-adds dcols back onto the padded x
    (the full convolution above), whose padding is then cut off. Blocks run in threads, each
    with one-thread BLAS (threads.run_batch_blocks). With G groups the rows of cols are already
    ordered group by group, so each GEMM becomes one batched matmul over the groups,
    (G, O/G, R/G) @ (G, R/G, B·P), with the same columns and the same col2im (depthwise layers take their own loops,
    below). With ``needs_input_grad = False`` (the first layer of a
    network) backward accumulates ∂L/∂W and ∂L/∂b only and returns None: no dcols GEMM, no
    col2im. Under :func:`layerkit.no_grad` nothing is kept.

    Depthwise (kernels/depthwise.py; groups = C, so output channel o reads the input channel
    c = ⌊o·C/O⌋ only): y[n, o] = b[o] + Σ_j W[o, 0, j] · x_pad[n, c, p·s + j·d] computed plane by
    plane, the tap j outside and a contiguous run of outputs inside; ∂L/∂W[o, 0, j] = Σ_n Σ_p
    δ[n, o, p] · x_pad[n, c, p·s + j·d] and ∂L/∂x_pad[n, c] = Σ_(o of c) the scatter of
    W[o, 0, j] · δ[n, o, p] onto p·s + j·d, the same formulas as above with one input channel
    per group. With im2col a depthwise layer's columns (∏K copies of the input) cost several
    times the arithmetic; here the padded input (a copy, so that the caller's x may change) is
    all forward keeps.

    Winograd (kernels/winograd.py): each 4×4 output block is Aᵀ[(G W Gᵀ) ⊙ (Bᵀ x_tile B)]A,
    and the sum over input channels becomes 36 GEMMs (O, C) @ (C, tiles), for about 64 tiles at
    a time (several small samples, or a band of tile rows of a large one).
    ∂L/∂x, the full convolution of δ with the kernels, is the same algorithm applied to δ
    padded by 2 − P with the weights rot180(W) transposed to (C, O); ∂L/∂W still uses im2col's
    columns, built in backward block by block as above.

    Winograd's error bound, and where it does not hold. The transforms mix all 36 values of a
    tile's 6×6 input window into each of its 16 outputs, so the rounding error of every output
    scales with the largest value of the window, M_t = max_(p in tile) a(p) with
    a(p) = max_c |x_c(p)|, where im2col's scales with the largest value of the output's own
    3×3 field, r_q = max_(p in field(q)) a(p). In float32 (unit roundoff u = 2⁻²⁴) the error of
    output q is about (30 + 0.4·M_t/r_q)·u·Σ_c Σ_taps |W|·r_q (measured; the worst-case constant
    from the transforms' norms, ‖Aᵀ‖²‖G‖²‖Bᵀ‖² = 19²·1²·10², is far larger and never reached),
    and one NaN or inf spreads over the whole tile. So a tile is kept only if its window is
    finite and M_t ≤ 64·r_q for each of its outputs q (layers.conv_algorithms.WINOGRAD_RANGE):
    its error then stays below ~60 u of each output's own scale, i.e. within 4·10⁻⁶ of
    Σ_c Σ_taps |W|·r_q, the tolerance tests/test_winograd.py checks. Every other tile's 4×4
    block is computed directly (float64 sums of the products, as im2col would compute it), so
    a pixel at 1e15 or a NaN changes exactly the outputs whose field contains it, as with
    im2col. The check is one pass over each band of the input, done per work unit just before
    its input transform (the band is then in cache); the same holds for ∂L/∂x, whose tiles are
    those of δ. It applies to "auto" and to an explicit "winograd" alike: the algorithm is how
    the result is computed, never what it is. Inputs with many exactly-zero 3×3×C fields next
    to non-zero values (r_q = 0) take the direct path for those tiles: correct, slower.
    """


def _show(t: tuple):
    """A tuple hyperparameter as the user would write it: an int when all entries agree."""
    return t[0] if all(v == t[0] for v in t) else t


_ALGORITHMS = ("auto", "im2col", "winograd", "depthwise")

# "auto" takes Winograd only from this many input and output channels and from this much work,
# min(C, O)² × output positions: below them the transforms (whose cost per output grows with the
# channel count, where the GEMMs saved grow with its square) and the short rows of small images
# outweigh the GEMMs saved. 32²·24·24 takes 32 channels from 24×24, 64 from 12×12 and 128 from
# 6×6 outputs, where Winograd measured faster on 1 and 2 threads (benchmarks/conv_thresholds.py,
# table in benchmarks/README.md).
_WINOGRAD_MIN_CHANNELS = 32
_WINOGRAD_MIN_WORK = 32 * 32 * 24 * 24

# "auto" takes the direct depthwise loops (groups = in_channels) from this many input channels,
# and with fewer (groups = C = 1 or 2: ordinary convolutions with one or two input channels)
# from this many output positions: below both, im2col's short columns and GEMM measured faster
# (1 thread: C = 1 from 8×8, fwd+bwd 0.18 ms against 0.33; C = 2, 16×16, 0.32 against 0.42),
# above them the loops (C = 1, 24×24: 1.4 ms against 2.7; C = 3, 32×32: 0.28 against 1.5).
_DEPTHWISE_MIN_CHANNELS = 3
_DEPTHWISE_MIN_POSITIONS = 24 * 24
# ... and only for layers of at least this many multiply-adds per sample (O·∏out·∏K): below it
# both take microseconds, and the loops' kernels (~5 s to compile, once) are compiled only for
# layers that gain from them: a first `layerkit gradcheck`, whose cases are tiny, pays nothing.
_DEPTHWISE_MIN_WORK = 1 << 12


def _winograd_obstacle(ndim: int, g, groups: int) -> str | None:
    """Why Winograd F(4×4, 3×3) cannot compute this convolution, or None when it can."""
    if ndim != 2:
        return f"is for 2-D convolutions only, this is {ndim}-D"
    if groups != 1:
        return f"needs groups=1, got groups={groups}"
    if g.kernel != (3, 3) or g.stride != (1, 1) or g.dilation != (1, 1):
        return (f"needs kernel_size 3, stride 1 and dilation 1, got kernel_size {_show(g.kernel)}, "
                f"stride {_show(g.stride)}, dilation {_show(g.dilation)}")
    if max(max(lo, hi) for lo, hi in g.padding) > 2:
        return f"needs padding <= 2 (the kernel's size - 1), got {g.padding}"
    return None


def _depthwise_obstacle(ndim: int, in_channels: int, groups: int) -> str | None:
    """Why the direct depthwise loops cannot compute this convolution, or None when they can."""
    if ndim == 3:
        return "is for 1-D and 2-D convolutions only, this is 3-D"
    if groups != in_channels:
        return f"needs groups == in_channels ({in_channels}), got groups={groups}"
    return None


def _checked_groups(who: str, groups, in_channels: int, out_channels: int) -> int:
    """``groups`` as a positive int dividing both channel counts, else ValueError."""
    groups = positive_int(who, "groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{who}: in_channels and out_channels must both be divisible by groups, "
                         f"got in_channels={in_channels}, out_channels={out_channels}, "
                         f"groups={groups}")
    return groups


class _ConvCache(NamedTuple):
    """What ConvND.backward needs from forward."""

    strategy: Im2colConv | WinogradConv | DepthwiseConv    # forward's algorithm; backward's too
    xp: np.ndarray              # the padded input as (N, C, D, H, W), in scratch (a copy of x)
    x_shape: tuple
    out_spatial: tuple


class ConvND(Layer):
    """Base of Conv1D/2D/3D; subclasses set ``ndim`` (1, 2 or 3)."""

    ndim: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, dtype=np.float32,
                 weight_init=None, seed=None, algorithm: str = "auto"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        who = f"{name}({self.in_channels}, {self.out_channels}, kernel_size={kernel_size!r})"
        self.geometry = window(who, self.ndim, kernel_size, stride, padding, dilation)
        window_within_limits(who, self.geometry)
        self.groups = _checked_groups(who, groups, self.in_channels, self.out_channels)
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"{who}: algorithm must be one of {_ALGORITHMS}, got {algorithm!r}")
        obstacle = _winograd_obstacle(self.ndim, self.geometry, self.groups)
        if algorithm == "winograd" and obstacle is not None:
            raise ValueError(f"{who}: algorithm='winograd' {obstacle}")
        depthwise_obstacle = _depthwise_obstacle(self.ndim, self.in_channels, self.groups)
        if algorithm == "depthwise" and depthwise_obstacle is not None:
            raise ValueError(f"{who}: algorithm='depthwise' {depthwise_obstacle}")
        self.algorithm = algorithm
        self._winograd_applies = obstacle is None
        self._depthwise_applies = depthwise_obstacle is None
        self.kernel_size = self.geometry.kernel
        self.stride = self.geometry.stride
        self.dilation = self.geometry.dilation
        self.padding = padding if isinstance(padding, str) else \
            tuple(lo for lo, _ in self.geometry.padding)
        self.bias = bool(bias)
        dt = float_dtype(dtype, repr(self))
        rng = np.random.default_rng(seed)
        weight_init = weight_init or functools.partial(init.kaiming_uniform, a=math.sqrt(5.0))
        shape = allocation(repr(self), "weight", (self.out_channels,
                                                  self.in_channels // self.groups)
                           + self.kernel_size, dt)
        self.add_param("weight", initial_weight(repr(self), "weight",
                                                weight_init(shape, rng=rng, dtype=dt), shape, dt))
        if self.bias:
            self.add_param("bias", init.zeros((self.out_channels,), dtype=dt))
        # Per-layer, per-thread work arrays, reused by every call (see Scratch): "xp" the padded
        # input (read by backward through the cache), "dxp" im2col's padded ∂L/∂x, "dyp" the
        # padded δ of Winograd's ∂L/∂x, "xp_depthwise" the padded input of the depthwise loops.
        # The column blocks are each call's own.
        self.scratch = Scratch()

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
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.algorithm != "auto":
            parts.append(f"algorithm={self.algorithm!r}")
        return ", ".join(parts)

    def algorithm_for(self, x_shape: tuple) -> str:
        """"winograd", "depthwise" or "im2col": what forward and backward use for an input of
        shape ``x_shape`` (see ``algorithm``)."""
        out_spatial = self.geometry.output_shape(self, tuple(x_shape[2:]))
        return self._strategy(out_spatial).name

    def _strategy(self, out_spatial: tuple) -> Im2colConv | WinogradConv | DepthwiseConv:
        if self.algorithm != "auto":
            return {"winograd": WINOGRAD, "depthwise": DEPTHWISE, "im2col": IM2COL}[self.algorithm]
        positions = math.prod(out_spatial)
        if self._depthwise_applies and (self.in_channels >= _DEPTHWISE_MIN_CHANNELS or
                                        positions >= _DEPTHWISE_MIN_POSITIONS) and \
                self.out_channels * positions * math.prod(self.kernel_size) >= _DEPTHWISE_MIN_WORK:
            return DEPTHWISE
        channels = min(self.in_channels, self.out_channels)
        winograd = self._winograd_applies and channels >= _WINOGRAD_MIN_CHANNELS and \
            channels * channels * math.prod(out_spatial) >= _WINOGRAD_MIN_WORK
        return WINOGRAD if winograd else IM2COL

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, ("N", self.in_channels) + _SYMBOLS[self.ndim])
        out_spatial = self.geometry.output_shape(who, x.shape[2:])
        dt = x.dtype
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], self.geometry.padding))
        allocation(who, "the padded input", x.shape[:2] + padded, dt)
        strategy = self._strategy(out_spatial)
        if strategy is not DEPTHWISE:    # im2col's columns: blocks of at least one sample
            allocation(who, "one sample's im2col columns", (1, self.in_channels *
                                                             math.prod(self.kernel_size))
                       + out_spatial, dt)
        bias = self.params["bias"].astype(dt, copy=False) if self.bias else \
            np.zeros(self.out_channels, dt)
        y, xp = strategy.forward(self, x, bias, out_spatial)
        self._cache = _ConvCache(strategy, xp, x.shape, out_spatial)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        cache = self.saved()
        self.check_dy(dy, (cache.x_shape[0], self.out_channels) + cache.out_spatial)
        dy = dy.astype(cache.xp.dtype, copy=False)
        # ∂L/∂W₂ = Σ_n δ[n] cols[n]ᵀ (and ∂L/∂x): the strategy's, by blocks of samples
        dw, db, dx = cache.strategy.backward(self, cache, dy, self.needs_input_grad)
        self.grads["weight"] += dw.reshape(self.params["weight"].shape)
        if self.bias:
            self.grads["bias"] += dy.sum(axis=(0,) + tuple(range(2, dy.ndim))) if db is None \
                else db
        return dx


class Conv1D(ConvND):
    __doc__ = _DOC.format(n=1, sp="L", osp="L_out", k="K")
    ndim = 1


class Conv2D(ConvND):
    __doc__ = _DOC.format(n=2, sp="H, W", osp="H_out, W_out", k="K_h, K_w")
    ndim = 2


class Conv3D(ConvND):
    __doc__ = _DOC.format(n=3, sp="D, H, W", osp="D_out, H_out, W_out", k="K_d, K_h, K_w")
    ndim = 3


class _ConvTransposeCache(NamedTuple):
    """What ConvTransposeND.backward needs from forward."""

    xg: np.ndarray          # x as (C_in, N, P), the layout of the ∂L/∂W GEMM (scratch "xg")
    x_shape: tuple


class ConvTransposeND(Layer):
    """Base of the transposed convolutions; subclasses set ``ndim``."""

    ndim: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
                 output_padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 dtype=np.float32, weight_init=None, seed=None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        who = f"{name}({self.in_channels}, {self.out_channels}, kernel_size={kernel_size!r})"
        if isinstance(padding, str):
            raise ValueError(f"{who}: padding must be an int or a tuple of {self.ndim} ints, "
                             f"got {padding!r}")
        self.geometry = window(who, self.ndim, kernel_size, stride, padding, dilation)
        window_within_limits(who, self.geometry)
        self.kernel_size, self.stride = self.geometry.kernel, self.geometry.stride
        self.dilation, self.padding = self.geometry.dilation, self.geometry.pad_lo
        self.output_padding = ntuple(who, "output_padding", output_padding, self.ndim, minimum=0)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"{who}: output_padding must be smaller than the stride "
                             f"{_show(self.stride)}, got {_show(self.output_padding)}")
        self.groups = _checked_groups(who, groups, self.in_channels, self.out_channels)
        self.bias = bool(bias)
        dt = float_dtype(dtype, repr(self))
        weight_init = weight_init or functools.partial(init.kaiming_uniform, a=math.sqrt(5.0))
        # PyTorch's layout (in, out, *k), so its default gives U(±1/√(out·∏K)) as PyTorch's does
        shape = allocation(repr(self), "weight", (self.in_channels,
                                                  self.out_channels // self.groups)
                           + self.kernel_size, dt)
        w = weight_init(shape, rng=np.random.default_rng(seed), dtype=dt)
        self.add_param("weight", initial_weight(repr(self), "weight", w, shape, dt))
        if self.bias:
            self.add_param("bias", init.zeros((self.out_channels,), dtype=dt))
        # Per-layer, per-thread work arrays, reused by every call (see Scratch): "xg" x as
        # (C_in, N, P), "cols" W₂ᵀ x, "yp" the padded output, "dyp" the padded δ, "dcols" its
        # columns.
        self.scratch = Scratch()

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={_show(self.kernel_size)}"]
        for label, value, default in (("stride", self.stride, 1), ("padding", self.padding, 0),
                                      ("output_padding", self.output_padding, 0),
                                      ("dilation", self.dilation, 1)):
            if any(v != default for v in value):
                parts.append(f"{label}={_show(value)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        return ", ".join(parts)

    def output_shape(self, spatial: tuple) -> tuple:
        """(W − 1)·S − 2P + d·(K − 1) + output_padding + 1 per spatial axis."""
        return tuple((w - 1) * s - 2 * p + d * (k - 1) + op + 1 for w, s, p, d, k, op in zip(
            spatial, self.stride, self.padding, self.dilation, self.kernel_size,
            self.output_padding))

    def _scatter_extent(self, spatial: tuple, out_spatial: tuple) -> tuple:
        """Per axis, the padded output the scatter writes into: every tap i·S + j·d lands in it,
        and it holds the output (after P_lo) — output_padding can make that the longer one."""
        return tuple(max((w - 1) * s + d * (k - 1) + 1, p + o) for w, s, d, k, p, o in zip(
            spatial, self.stride, self.dilation, self.kernel_size, self.padding, out_spatial))

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = self    # formatted only for an error message
        check_array(who, x, ("N", self.in_channels) + _SYMBOLS[self.ndim])
        if min(x.shape[2:]) < 1:
            raise ValueError(f"{who}: expected non-empty spatial axes, got x of shape {x.shape}")
        out_spatial = self.output_shape(x.shape[2:])
        if min(out_spatial) < 1:
            raise ValueError(f"{who}: input of spatial shape {x.shape[2:]} gives an empty output "
                             f"{out_spatial}")
        n, dt, positions = x.shape[0], x.dtype, math.prod(x.shape[2:])
        rows = self.out_channels * math.prod(self.kernel_size)
        allocation(who, "the columns", (rows, n * positions), dt)
        allocation(who, "the output", (n, self.out_channels) + self._scatter_extent(
            x.shape[2:], out_spatial), dt)
        # x as (C_in, N·P) and one GEMM for the batch per group: cols (R, N·P) = W₂ᵀ x, as
        # (G, R/G, N·P) = (G, R/G, C_in/G) @ (G, C_in/G, N·P)
        scratch, groups = self.scratch, self.groups
        xg = transposed_copy(scratch.array("xg", (self.in_channels, n, positions), dt), x)
        w2 = self.params["weight"].reshape(self.in_channels, rows // groups).astype(dt, copy=False)
        cols = scratch.array("cols", (rows, n * positions), dt)
        matmul_by_group(by_group(w2, groups).transpose(0, 2, 1),
                        by_group(xg.reshape(self.in_channels, n * positions), groups),
                        out=by_group(cols, groups))
        extent = self._scatter_extent(x.shape[2:], out_spatial)
        yp = scratch.array("yp", as5((n, self.out_channels) + extent), dt)
        pick_kernel(col2im, col2im_parallel, cols.size)(cols.reshape(rows, n, positions), yp,
                                                        *kernel_args(self.geometry, x.shape[2:]))
        y = yp.reshape((n, self.out_channels) + extent)[interior(self.padding, out_spatial)]
        y = np.ascontiguousarray(y)         # a copy: yp is scratch
        if self.bias:
            y += self.params["bias"].astype(dt, copy=False).reshape((-1,) + (1,) * self.ndim)
        self._cache = _ConvTransposeCache(xg, x.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        cache = self.saved()
        xg, x_shape = cache.xg, cache.x_shape
        n, spatial, dt = x_shape[0], x_shape[2:], xg.dtype
        out_spatial = self.output_shape(spatial)
        self.check_dy(dy, (n, self.out_channels) + out_spatial)
        rows, positions = self.out_channels * math.prod(self.kernel_size), math.prod(spatial)
        extent = self._scatter_extent(spatial, out_spatial)
        dyp = self.scratch.padded("dyp", dy.astype(dt, copy=False), self.padding, extent)
        dcols = self.scratch.array("dcols", (rows, n, positions), dt)
        pick_kernel(im2col, im2col_parallel, dcols.size)(dyp, dcols, 0,
                                                         *kernel_args(self.geometry, spatial))
        if self.bias:
            self.grads["bias"] += dy.sum(axis=(0,) + tuple(range(2, dy.ndim)))
        groups = self.groups
        d2 = by_group(dcols.reshape(rows, n * positions), groups)
        x2 = by_group(xg.reshape(self.in_channels, n * positions), groups)
        dw = matmul_by_group(x2, d2.transpose(0, 2, 1))  # Σ_n x[n] dcols[n]ᵀ, a GEMM per group
        self.grads["weight"] += dw.reshape(self.params["weight"].shape)
        if not self.needs_input_grad:
            return None
        w2 = by_group(self.params["weight"].reshape(self.in_channels, rows // groups), groups)
        dxg = matmul_by_group(w2.astype(dt, copy=False), d2).reshape(self.in_channels, n,
                                                                     positions)
        dx = np.empty((n, self.in_channels, positions), dtype=dt)
        np.copyto(dx, dxg.transpose(1, 0, 2))
        return dx.reshape(x_shape)


class ConvTranspose2D(ConvTransposeND):
    r"""2-D transposed convolution (the "deconvolution" of encoder–decoder nets).

    Its forward is the input gradient of a Conv2D with the same kernel_size, stride, padding and
    dilation: every input pixel scatters a copy of its (C_out, K_h, K_w) kernel, scaled by its
    value, into the output at stride S, overlaps adding up,

        y[n, o, i·S − P + j·d] += Σ_c x[n, c, i] · W[c, o, j]  (+ b[o]),

    so ⟨conv(x), y⟩ = ⟨x, convT(y)⟩ for the matching convolution without bias. With ``groups``
    = G, input channel c of group g (c = g·C_in/G + c') scatters only into that group's C_out/G
    output channels, o = g·C_out/G + o', with W[c, o', j]: the adjoint of the grouped Conv2D.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype
        As for :class:`Conv2D` (padding is an int or a tuple; no "same"); likewise weight_init
        and seed.
    output_padding : int or tuple of 2 ints, default 0
        Extra rows/columns added after the output (must be smaller than the stride), to pick one
        of the input sizes a strided Conv2D maps to the same output size.

    Attributes
    ----------
    params : ``weight`` (C_in, C_out/G, K_h, K_w) — PyTorch's layout — and ``bias`` (C_out,)

    Shape
    -----
    x : (N, C_in, H, W); y : (N, C_out, H_out, W_out) with
    H_out = (H − 1)·S − 2P + d·(K − 1) + output_padding + 1 (likewise W_out).

    Notes
    -----
    Its backward is that convolution's forward. With cols = im2col(δ) (the windows of δ that the
    matching convolution would read) and W₂ = W reshaped (C_in, C_out·∏K):
    ∂L/∂x[n] = W₂ cols[n] (a convolution of δ), ∂L/∂W₂ = Σ_n x[n] cols[n]ᵀ, ∂L/∂b = Σ δ over
    the batch and positions; with G groups, the same per group on its rows of W₂, x and cols
    (one batched matmul over the groups). With ``needs_input_grad = False`` backward skips the
    ∂L/∂x product and returns None.
    """

    ndim = 2
