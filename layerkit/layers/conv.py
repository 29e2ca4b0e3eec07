"""Convolution layers: Conv1D, Conv2D, Conv3D — one N-d implementation (im2col + GEMM)."""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from .. import init
from ..geometry import ntuple, window
from ..kernels import winograd
from ..kernels.conv import col2im, col2im_parallel, gemm_to_nchw, im2col, im2col_parallel
from ..layer import Layer
from ..threads import run_batch_blocks
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
    algorithm : "auto" (default), "im2col" or "winograd"
        How forward and ∂L/∂x are computed (same result up to rounding). "winograd" is
        Winograd's F(4×4, 3×3) (Conv2D with a 3×3 kernel, stride 1, dilation 1 and padding ≤ 2
        only): 4× fewer multiplications, float32 rounding error a few times larger than
        im2col's. "auto" uses it where it applies, both channel counts are ≥ 32 and the square of
        the smaller one times the number of output positions is ≥ 32²·24·24 (32 channels from
        24×24 outputs, 64 from 12×12, 128 from 6×6: where it measured faster;
        :meth:`algorithm_for` tells).

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

    Implementation: the input is padded once, and im2col copies its windows into columns cols of
    shape (C·∏K, N, ∏W_out), so that Y = W₂ cols + b with W₂ = W reshaped (O, C·∏K) is one BLAS
    GEMM of shape (O, N·∏W_out) for the whole batch; one pass moves Y into the (N, O, ...) layout
    and adds the bias. Backward, with δ in the same (O, N·∏W_out) layout: ∂L/∂W₂ = δ colsᵀ (one
    GEMM over the batch), dcols = W₂ᵀ δ, and col2im scatter-adds dcols back onto the padded x
    (the full convolution above), whose padding is then cut off. The columns are the cache kept
    for backward. With ``needs_input_grad = False`` (the first layer of a network) backward
    accumulates ∂L/∂W and ∂L/∂b only and returns None: no dcols GEMM, no col2im.

    Winograd (kernels/winograd.py): each 4×4 output block is Aᵀ[(G W Gᵀ) ⊙ (Bᵀ x_tile B)]A,
    and the sum over input channels becomes 36 GEMMs (O, C) @ (C, tiles), for about 64 tiles at
    a time (several small samples, or a band of tile rows of a large one).
    ∂L/∂x, the full convolution of δ with the kernels, is the same algorithm applied to δ
    padded by 2 − P with the weights rot180(W) transposed to (C, O); ∂L/∂W still uses im2col's
    columns, built in backward.
    """


def _show(t: tuple):
    """A tuple hyperparameter as the user would write it: an int when all entries agree."""
    return t[0] if all(v == t[0] for v in t) else t


_ALGORITHMS = ("auto", "im2col", "winograd")

# "auto" takes Winograd only from this many input and output channels and from this much work,
# min(C, O)² × output positions: below them the transforms (whose cost per output grows with the
# channel count, where the GEMMs saved grow with its square) and the short rows of small images
# outweigh the GEMMs saved. Measured 2026-11-23, fwd+bwd, N = 32, C = O, Winograd time / im2col
# time on 1 | 2 threads:
#
#   C \ image    8×8          12×12        16×16        24×24        32×32
#   16           1.33 | 1.83  1.41 | 1.54  1.01 | 1.24  0.88 | 1.14  0.80 | 0.86
#   32           1.09 | 1.25  1.05 | 1.17  0.94 | 1.09  0.78 | 0.78  0.75 | 0.75
#   64           0.96 | 1.13  0.87 | 0.95  0.76 | 0.81  0.68 | 0.71  0.67 | 0.63
#   128          0.86 | 0.91  0.71 | 0.80  0.75 | 0.70  0.67 | 0.62  0.63 | 0.62
#   256          0.93 | 0.89  0.79 | 0.77  0.76 | 0.72
#
# The threshold 32²·24·24 takes 32 channels from 24×24, 64 from 12×12 and 128 from 6×6 outputs:
# every cell it takes is faster on both thread counts; the one such cell it leaves out is 16
# channels at 32×32 (the channel floor: 16 channels lose on smaller images).
_WINOGRAD_MIN_CHANNELS = 32
_WINOGRAD_MIN_WORK = 32 * 32 * 24 * 24


def _winograd_obstacle(ndim: int, g) -> str | None:
    """Why Winograd F(4×4, 3×3) cannot compute this convolution, or None when it can."""
    if ndim != 2:
        return f"is for 2-D convolutions only, this is {ndim}-D"
    if g.kernel != (3, 3) or g.stride != (1, 1) or g.dilation != (1, 1):
        return (f"needs kernel_size 3, stride 1 and dilation 1, got kernel_size {_show(g.kernel)}, "
                f"stride {_show(g.stride)}, dilation {_show(g.dilation)}")
    if max(max(lo, hi) for lo, hi in g.padding) > 2:
        return f"needs padding <= 2 (the kernel's size - 1), got {g.padding}"
    return None


# Tiles per Winograd product: fewer make the 36 GEMMs too narrow for BLAS (a 32×32 image has 64).
_WINOGRAD_GROUP_TILES = 64

# Work (elements of the column matrix) from which the parallel kernels pay for their launch; with
# one numba thread the serial kernels are always used (the parallel build is slower there).
# Measured 2026-11-23, 2 threads, OMP_WAIT_POLICY=PASSIVE, im2col serial vs parallel: 60k
# elements 22 vs 32 µs, 240k 86 vs 66 µs, 960k (LeNet conv2, N = 64) 334 vs 194 µs. (It was
# 2^20, which kept LeNet conv2 serial: its fwd+bwd went from 1.19-1.21× to 0.94-1.08× PyTorch's
# time on 2 threads with the parallel kernels.)
_PARALLEL_MIN = 1 << 18


def _winograd_units(n: int, tiles_h: int, tiles_w: int) -> list[tuple]:
    """The Winograd work units of an (N, tiles_h × tiles_w tiles) input: tuples of segments
    (sample, first tile row, end tile row), about _WINOGRAD_GROUP_TILES tiles each."""
    tiles = tiles_h * tiles_w
    if tiles < _WINOGRAD_GROUP_TILES:          # several whole samples per unit
        group = -(-_WINOGRAD_GROUP_TILES // tiles)
        return [tuple((i, 0, tiles_h) for i in range(s, min(s + group, n)))
                for s in range(0, n, group)]
    band = -(-_WINOGRAD_GROUP_TILES // tiles_w)  # tile rows per unit, within one sample
    return [((i, lo, min(lo + band, tiles_h)),) for i in range(n) for lo in range(0, tiles_h, band)]


def _kernel(serial, parallel, work: int):
    """The serial kernel, or its parallel twin for large work when numba has several threads."""
    return parallel if work >= _PARALLEL_MIN and numba.get_num_threads() > 1 else serial


def _kernel_args(g, out_spatial: tuple) -> tuple:
    """im2col/col2im arguments for the 3-D kernels, with singleton dummy axes in front."""
    pad = 3 - len(g.kernel)
    return (*((1,) * pad + tuple(out_spatial)), *((1,) * pad + g.kernel),
            *((1,) * pad + g.stride), *((1,) * pad + g.dilation))


def _as3(x: np.ndarray, ndim: int) -> np.ndarray:
    """View (N, C, *spatial) with ndim spatial axes as (N, C, D, H, W) (contiguous)."""
    return np.ascontiguousarray(x).reshape(x.shape[:2] + (1,) * (3 - ndim) + x.shape[2:])


def _as5(shape: tuple) -> tuple:
    """(N, C, *spatial) as (N, C, D, H, W) with singleton leading spatial axes."""
    return shape[:2] + (1,) * (5 - len(shape)) + shape[2:]


def _interior(pad_lo: tuple, spatial: tuple) -> tuple:
    """The index of the unpadded region inside a padded (N, C, *spatial) array."""
    return (slice(None), slice(None)) + tuple(slice(lo, lo + s) for lo, s in zip(pad_lo, spatial))


def _transposed_copy(out: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``out[i, n, p] = a[n, i, p]``: (N, I, P) -> (I, N, P), casting to ``out``'s dtype."""
    np.copyto(out, a.reshape(out.shape[1], out.shape[0], out.shape[2]).transpose(1, 0, 2),
              casting="same_kind")
    return out


class _Buffers:
    """Reusable scratch arrays of a layer, reallocated when the shape or the dtype changes."""

    def _buffer(self, name: str, shape: tuple, dtype, *, zeros: bool = False) -> np.ndarray:
        buf = getattr(self, name, None)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = (np.zeros if zeros else np.empty)(shape, dtype=dtype)
            setattr(self, name, buf)
        return buf

    def _padded(self, name: str, x: np.ndarray, pad_lo: tuple, padded_spatial: tuple) -> np.ndarray:
        """x (N, C, *spatial) inside zeros of (N, C, *padded_spatial), as (N, C, D, H, W).

        The buffer is reused: only its interior is ever written, so its border stays zero. It is
        zeroed again when the interior moves or changes size within the same buffer (Winograd's
        tile-rounded extent is the same for inputs that differ by a few pixels). Without padding,
        x itself (made contiguous) is returned.
        """
        if tuple(padded_spatial) == x.shape[2:]:
            return _as3(x, x.ndim - 2)
        xp = self._buffer(name, x.shape[:2] + tuple(padded_spatial), x.dtype, zeros=True)
        interior = _interior(pad_lo, x.shape[2:])
        if getattr(self, name + "_interior", interior) != interior:
            xp[...] = 0
        setattr(self, name + "_interior", interior)
        xp[interior] = x
        return xp.reshape(_as5(xp.shape))


class ConvND(_Buffers, Layer):
    """Base of Conv1D/2D/3D; subclasses set ``ndim`` (1, 2 or 3)."""

    ndim: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0,
                 dilation=1, bias: bool = True, dtype=np.float32, weight_init=None, seed=None,
                 algorithm: str = "auto"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        who = f"{name}({self.in_channels}, {self.out_channels}, kernel_size={kernel_size!r})"
        self.geometry = window(who, self.ndim, kernel_size, stride, padding, dilation)
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"{who}: algorithm must be one of {_ALGORITHMS}, got {algorithm!r}")
        obstacle = _winograd_obstacle(self.ndim, self.geometry)
        if algorithm == "winograd" and obstacle is not None:
            raise ValueError(f"{who}: algorithm='winograd' {obstacle}")
        self.algorithm = algorithm
        self._winograd_applies = obstacle is None
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
        # reusable scratch (see _Buffers): _cols (its contents are the cache), _yg, _xp, _dyg,
        # _dcols, _dxp

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
        if self.algorithm != "auto":
            parts.append(f"algorithm={self.algorithm!r}")
        return ", ".join(parts)

    def algorithm_for(self, x_shape: tuple) -> str:
        """"winograd" or "im2col": what forward (and backward's ∂L/∂x) uses for an input of
        shape ``x_shape`` (see ``algorithm``)."""
        out_spatial = self.geometry.output_shape(repr(self), tuple(x_shape[2:]))
        return "winograd" if self._uses_winograd(out_spatial) else "im2col"

    def _uses_winograd(self, out_spatial: tuple) -> bool:
        if self.algorithm != "auto":
            return self.algorithm == "winograd"
        channels = min(self.in_channels, self.out_channels)
        return self._winograd_applies and channels >= _WINOGRAD_MIN_CHANNELS and \
            channels * channels * math.prod(out_spatial) >= _WINOGRAD_MIN_WORK

    def _args3(self, out_spatial: tuple) -> tuple:
        return _kernel_args(self.geometry, out_spatial)

    def _im2col(self, xp: np.ndarray, n: int, out_spatial: tuple) -> np.ndarray:
        """The columns (C·∏K, N, ∏out) of the padded input xp, in the reused ``_cols`` buffer."""
        rows = self.in_channels * math.prod(self.kernel_size)
        cols = self._buffer("_cols", (rows, n, math.prod(out_spatial)), xp.dtype)
        return _kernel(im2col, im2col_parallel, cols.size)(xp, cols, *self._args3(out_spatial))

    def _winograd_conv(self, name: str, src: np.ndarray, w: np.ndarray, bias: np.ndarray,
                       pad_lo: tuple, out_hw: tuple) -> tuple[np.ndarray, np.ndarray]:
        """The 3×3, stride-1 correlation of src (N, C, H, W) padded by pad_lo before (and zeros
        after, as far as the tiles need) with w (O, C, 3, 3), plus bias, by Winograd F(4×4, 3×3).

        Returns (y of shape (N, O, *out_hw), the padded src as (N, C, 1, H_p, W_p)). The tiles
        are cut into units of about _WINOGRAD_GROUP_TILES: groups of whole samples when a sample
        has fewer tiles, bands of tile rows of one sample when it has more. Each unit shares one
        transform array and one product (36 GEMMs): small enough to stay in cache, wide enough
        for BLAS. Blocks of whole units run in threads (threads.run_batch_blocks); the units
        depend on the shapes only, so the results do not depend on the number of threads.
        """
        n, c, dt = src.shape[0], src.shape[1], src.dtype
        o = w.shape[0]
        tiles_h, tiles_w = -(-out_hw[0] // 4), -(-out_hw[1] // 4)
        xp = self._padded(name, src, pad_lo, (4 * tiles_h + 2, 4 * tiles_w + 2))
        xp4 = xp.reshape(xp.shape[:2] + xp.shape[3:])
        u = winograd.filter_transform(w, dt)
        k = winograd.constants(dt)
        y = np.empty((n, o) + tuple(out_hw), dtype=dt)
        if n == 0:
            return y, xp
        exact = out_hw == (4 * tiles_h, 4 * tiles_w)
        units = _winograd_units(n, tiles_h, tiles_w)     # each: ((sample, th_lo, th_hi), ...)
        rows = max(hi - lo for unit in units for _, lo, hi in unit)     # tile rows of a segment
        width = max(sum(hi - lo for _, lo, hi in unit) for unit in units) * tiles_w

        def run(u_lo: int, u_hi: int) -> None:
            # channel-major (C, 36, T) and (O, 36, T): each channel's transforms are one block
            # of memory; the 36 GEMMs read and write them through strided views
            v = np.empty((c, 36, width), dtype=dt)
            m = np.empty((o, 36, width), dtype=dt)
            v_xi, m_xi = v.transpose(1, 0, 2), m.transpose(1, 0, 2)
            scratch = np.empty((6, 4 * tiles_w + 2), dtype=dt)  # the kernels' row scratch
            sums = np.empty((24, tiles_w), dtype=dt)
            band = None if exact else np.empty((o, 4 * rows, 4 * tiles_w), dtype=dt)
            for unit in units[u_lo:u_hi]:
                first = 0
                for i, lo, hi in unit:
                    winograd.input_transform(xp4, i, lo, hi, v, first, k, scratch)
                    first += (hi - lo) * tiles_w
                np.matmul(u, v_xi[:, :, :first], out=m_xi[:, :, :first])
                first = 0
                for i, lo, hi in unit:
                    if exact:
                        winograd.output_transform(m, first, lo, hi, bias, y[i], 0, k, sums)
                    else:      # a band of the tile-rounded output, cropped into y
                        winograd.output_transform(m, first, lo, hi, bias, band, lo, k, sums)
                        r_hi = min(4 * hi, out_hw[0])
                        y[i, :, 4 * lo:r_hi] = band[:, :r_hi - 4 * lo, :out_hw[1]]
                    first += (hi - lo) * tiles_w

        run_batch_blocks(run, len(units), 36 * o * c * width, min_rows=1)  # a unit is large
        return y, xp

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = repr(self)
        check_array(who, x, ("N", self.in_channels) + _SYMBOLS[self.ndim])
        out_spatial = self.geometry.output_shape(who, x.shape[2:])
        n, dt, g = x.shape[0], x.dtype, self.geometry
        bias = self.params["bias"].astype(dt, copy=False) if self.bias else \
            np.zeros(self.out_channels, dt)
        if self._uses_winograd(out_spatial):   # ∂L/∂W's columns: built in backward
            y, xp = self._winograd_conv("_xp", x, self.params["weight"], bias, g.pad_lo,
                                        out_spatial)
            self._cache = (None, xp, x.shape, out_spatial)
            return y
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], g.padding))
        xp = self._padded("_xp", x, g.pad_lo, padded)
        cols = self._im2col(xp, n, out_spatial)
        rows, positions = cols.shape[0], cols.shape[2]
        # one GEMM for the whole batch: Y (O, N·P) = W₂ cols (R, N·P)
        w2 = self.params["weight"].reshape(self.out_channels, rows).astype(dt, copy=False)
        yg = self._buffer("_yg", (self.out_channels, n * positions), dt)
        np.matmul(w2, cols.reshape(rows, n * positions), out=yg)
        y = np.empty((n, self.out_channels, positions), dtype=dt)
        gemm_to_nchw(yg.reshape(self.out_channels, n, positions), bias, y)   # (N, O, P) + b
        self._cache = (cols, None, x.shape, out_spatial)
        return y.reshape((n, self.out_channels) + out_spatial)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        cols, xp, x_shape, out_spatial = self.saved()
        n, g = x_shape[0], self.geometry
        self.check_dy(dy, (n, self.out_channels) + out_spatial)
        if cols is None:        # Winograd forward: the columns from the padded input it kept
            cols = self._im2col(xp, n, out_spatial)
        dt = cols.dtype
        rows, positions = cols.shape[0], cols.shape[2]
        # δ as (O, N·P), the layout of the forward GEMM's output
        dyg = _transposed_copy(self._buffer("_dyg", (self.out_channels, n, positions), dt), dy)
        d2 = dyg.reshape(self.out_channels, n * positions)
        if self.bias:
            self.grads["bias"] += d2.sum(axis=1)
        # ∂L/∂W₂ = Σ_n δ[n] cols[n]ᵀ: one GEMM over the batch, (O, N·P) @ (N·P, R)
        dw = np.matmul(d2, cols.reshape(rows, n * positions).T)
        self.grads["weight"] += dw.reshape(self.params["weight"].shape)
        if not self.needs_input_grad:
            return None
        if xp is not None:      # Winograd forward, Winograd ∂L/∂x
            # ∂L/∂x = δ, padded by 2 − P, correlated with rot180(W) transposed to (C, O, 3, 3)
            w_flip = self.params["weight"][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            dx, _ = self._winograd_conv("_dyp", dy.astype(dt, copy=False), w_flip,
                                        np.zeros(self.in_channels, dt),
                                        tuple(2 - lo for lo in g.pad_lo), x_shape[2:])
            return dx
        # ∂L/∂x: dcols = W₂ᵀ δ, then col2im (the full convolution of δ with the kernels)
        w2 = self.params["weight"].reshape(self.out_channels, rows).astype(dt, copy=False)
        dcols = self._buffer("_dcols", (rows, n * positions), dt)
        np.matmul(w2.T, d2, out=dcols)
        padded = tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], g.padding))
        if padded == x_shape[2:]:
            dxp = np.empty(_as5(x_shape), dtype=dt)
        else:
            dxp = self._buffer("_dxp", _as5(x_shape[:2] + padded), dt)
        _kernel(col2im, col2im_parallel, cols.size)(dcols.reshape(cols.shape), dxp,
                                                      *self._args3(out_spatial))
        if padded == x_shape[2:]:
            return dxp.reshape(x_shape)
        return np.ascontiguousarray(dxp.reshape(x_shape[:2] + padded)[
            _interior(g.pad_lo, x_shape[2:])])


class Conv1D(ConvND):
    __doc__ = _DOC.format(n=1, sp="L", osp="L_out", k="K")
    ndim = 1


class Conv2D(ConvND):
    __doc__ = _DOC.format(n=2, sp="H, W", osp="H_out, W_out", k="K_h, K_w")
    ndim = 2


class Conv3D(ConvND):
    __doc__ = _DOC.format(n=3, sp="D, H, W", osp="D_out, H_out, W_out", k="K_d, K_h, K_w")
    ndim = 3


class ConvTransposeND(_Buffers, Layer):
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

    def _scatter_extent(self, spatial: tuple, out_spatial: tuple) -> tuple:
        """Per axis, the padded output the scatter writes into: every tap i·S + j·d lands in it,
        and it holds the output (after P_lo) — output_padding can make that the longer one."""
        return tuple(max((w - 1) * s + d * (k - 1) + 1, p + o) for w, s, d, k, p, o in zip(
            spatial, self.stride, self.dilation, self.kernel_size, self.padding, out_spatial))

    def forward(self, x: np.ndarray) -> np.ndarray:
        who = repr(self)
        check_array(who, x, ("N", self.in_channels) + _SYMBOLS[self.ndim])
        out_spatial = self.output_shape(x.shape[2:])
        if min(out_spatial) < 1:
            raise ValueError(f"{who}: input of spatial shape {x.shape[2:]} gives an empty output "
                             f"{out_spatial}")
        n, dt, positions = x.shape[0], x.dtype, math.prod(x.shape[2:])
        rows = self.out_channels * math.prod(self.kernel_size)
        # x as (C_in, N·P) and one GEMM for the batch: cols (R, N·P) = W₂ᵀ x
        xg = _transposed_copy(self._buffer("_xg", (self.in_channels, n, positions), dt), x)
        w2 = self.params["weight"].reshape(self.in_channels, rows).astype(dt, copy=False)
        cols = self._buffer("_cols", (rows, n * positions), dt)
        np.matmul(w2.T, xg.reshape(self.in_channels, n * positions), out=cols)
        extent = self._scatter_extent(x.shape[2:], out_spatial)
        yp = self._buffer("_yp", _as5((n, self.out_channels) + extent), dt)
        _kernel(col2im, col2im_parallel, cols.size)(cols.reshape(rows, n, positions), yp,
                                                      *_kernel_args(self.geometry, x.shape[2:]))
        y = yp.reshape((n, self.out_channels) + extent)[_interior(self.padding, out_spatial)]
        y = np.ascontiguousarray(y)         # a copy: yp is scratch
        if self.bias:
            y += self.params["bias"].astype(dt, copy=False).reshape((-1,) + (1,) * self.ndim)
        self._cache = (xg, x.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        xg, x_shape = self.saved()
        n, spatial, dt = x_shape[0], x_shape[2:], xg.dtype
        out_spatial = self.output_shape(spatial)
        self.check_dy(dy, (n, self.out_channels) + out_spatial)
        rows, positions = self.out_channels * math.prod(self.kernel_size), math.prod(spatial)
        extent = self._scatter_extent(spatial, out_spatial)
        dyp = self._padded("_dyp", dy.astype(dt, copy=False), self.padding, extent)
        dcols = self._buffer("_dcols", (rows, n, positions), dt)
        _kernel(im2col, im2col_parallel, dcols.size)(dyp, dcols,
                                                     *_kernel_args(self.geometry, spatial))
        if self.bias:
            self.grads["bias"] += dy.sum(axis=(0,) + tuple(range(2, dy.ndim)))
        d2 = dcols.reshape(rows, n * positions)
        x2 = xg.reshape(self.in_channels, n * positions)
        dw = np.matmul(x2, d2.T)                                  # Σ_n x[n] dcols[n]ᵀ, one GEMM
        self.grads["weight"] += dw.reshape(self.params["weight"].shape)
        if not self.needs_input_grad:
            return None
        w2 = self.params["weight"].reshape(self.in_channels, rows).astype(dt, copy=False)
        dxg = np.matmul(w2, d2).reshape(self.in_channels, n, positions)  # W₂ im2col(δ)
        dx = np.empty((n, self.in_channels, positions), dtype=dt)
        np.copyto(dx, dxg.transpose(1, 0, 2))
        return dx.reshape(x_shape)


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
    the batch and positions. With ``needs_input_grad = False`` backward skips the ∂L/∂x product
    and returns None.
    """

    ndim = 2
