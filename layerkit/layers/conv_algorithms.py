"""How ConvND (layers/conv.py) computes a convolution: three algorithms, and their scratch arrays.

:data:`IM2COL` (any kernel, stride, padding and dilation), :data:`WINOGRAD` (F(4×4, 3×3):
Conv2D, 3×3 kernel, stride 1, dilation 1, padding ≤ 2) and :data:`DEPTHWISE` (direct loops:
Conv1D/Conv2D with groups = in_channels) are stateless strategy objects with one interface,
each taking the layer (its geometry, weights, gradients and :class:`Scratch`) as ``conv``:

- ``forward(conv, x, bias, out_spatial) -> (y, xp)``: the output and the padded input, which
  backward reads (a copy of x's values; under layerkit.no_grad() nothing is kept);
- ``backward(conv, cache, dy, input_grad) -> (dw, db, dx)``: ∂L/∂W (im2col and Winograd build
  it from im2col's columns of xp, by blocks of samples: :func:`weight_and_input_grad`; the
  depthwise loops directly), ∂L/∂b where the strategy's loops produce it on the way (else
  None: the layer sums δ) and ∂L/∂x (None unless ``input_grad``).

The depthwise strategy computes both gradients with its own loops (kernels/depthwise.py):
the columns of a depthwise convolution (∏K copies of the input) cost several times its
arithmetic to build.

``cache`` is the layer's cache (fields strategy, xp, x_shape, out_spatial). The layer picks a
strategy per forward and records it there, so backward calls the matching one. The math of
each is in ConvND's docstring.
"""

from __future__ import annotations

import math
import threading

import numpy as np

import numba

from ..grad_mode import grad_enabled
from ..kernels import depthwise, winograd
from ..kernels.config import parallel_if
from ..kernels.conv import col2im, gemm_to_nchw, im2col
from ..threads import run_batch_blocks

# Work (elements of the column matrix) from which the parallel kernels pay for their launch of
# tens of µs; with one numba thread the serial kernels are always used (the parallel build is
# slower there). Re-measure with benchmarks/conv_thresholds.py.
_PARALLEL_MIN = 1 << 18

#: Bytes of im2col's columns built and multiplied at a time: a block this size stays in a
#: core's cache between its im2col and its GEMM. Re-measure with benchmarks/conv_thresholds.py.
COLUMN_BLOCK_BYTES = 1 << 19

# Multiply-adds (outputs × taps) from which the depthwise loops run their parallel twins (with
# several numba threads). Set high: on the shared 2-core machine (load average 2.7) the
# 2-block twins were slower than the serial kernels from 2^15 to 2^22 (forward 0.33 ms serial
# against 0.39 at 2^22) and even at 2^23.8 (0.97 against 1.00), so the parallel build is kept
# for large layers only, where its launch (tens of µs) is a small part; re-measure on an idle
# machine.
_DEPTHWISE_PARALLEL_MIN = 1 << 23

# Tiles per Winograd product: fewer make the 36 GEMMs too narrow for BLAS (a 32×32 image has 64).
_WINOGRAD_GROUP_TILES = 64

#: Winograd keeps a tile only when its largest |value| is at most this many times the largest
#: |value| of the receptive field of each of its outputs (and all are finite); other tiles are
#: computed directly. The bound and its derivation are in ConvND's docstring.
WINOGRAD_RANGE = 64.0


def pick_kernel(serial, parallel, work: int):
    """The serial kernel, or its parallel twin for large work when numba has several threads."""
    return parallel_if(work >= _PARALLEL_MIN, parallel, serial)


def kernel_args(g, out_spatial: tuple) -> tuple:
    """im2col/col2im arguments for the 3-D kernels, with singleton dummy axes in front."""
    pad = 3 - len(g.kernel)
    return (*((1,) * pad + tuple(out_spatial)), *((1,) * pad + g.kernel),
            *((1,) * pad + g.stride), *((1,) * pad + g.dilation))


def as5(shape: tuple) -> tuple:
    """(N, C, *spatial) as (N, C, D, H, W) with singleton leading spatial axes."""
    return shape[:2] + (1,) * (5 - len(shape)) + shape[2:]


def interior(pad_lo: tuple, spatial: tuple) -> tuple:
    """The index of the unpadded region inside a padded (N, C, *spatial) array."""
    return (slice(None), slice(None)) + tuple(slice(lo, lo + s) for lo, s in zip(pad_lo, spatial))


def by_group(a: np.ndarray, groups: int) -> np.ndarray:
    """A 2-D (G·M, K) array as (G, M, K): the rows of each channel group, for one batched
    matmul over the groups (a view when ``a`` is contiguous)."""
    return a.reshape(groups, a.shape[0] // groups, a.shape[1])


def matmul_by_group(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a[g] @ b[g]`` for every group g of stacks (G, M, K) and (G, K, P), into ``out``
    (G, M, P) if given; one group is the plain 2-D product (numpy passes it to BLAS as it is)."""
    if a.shape[0] == 1:
        return np.matmul(a[0], b[0], out=None if out is None else out[0])[None]
    return np.matmul(a, b, out=out)


def transposed_copy(out: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``out[i, n, p] = a[n, i, p]``: (N, I, P) -> (I, N, P), casting to ``out``'s dtype."""
    np.copyto(out, a.reshape(out.shape[1], out.shape[0], out.shape[2]).transpose(1, 0, 2),
              casting="same_kind")
    return out


def _padded_extent(g, spatial: tuple) -> tuple:
    """The spatial shape of the input padded by the geometry's (lo, hi) padding."""
    return tuple(s + lo + hi for s, (lo, hi) in zip(spatial, g.padding))


class _ThreadArrays(threading.local):
    """One thread's scratch arrays (threading.local runs __init__ again in each new thread)."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.interiors: dict[str, tuple] = {}       # padded(): where x sits in arrays[key]


class Scratch:
    """Work arrays a layer reuses from call to call instead of allocating them, by key.

    Lifetime: ``array(key, shape, dtype)`` returns the same array as long as the shape and the
    dtype stay the same (and allocates a new one when they change), so its contents survive only
    until the next call asking for that key: the next forward or backward of the same layer in
    the same thread. A cache pointing into it (ConvND's padded input) stays valid until the
    next forward. The arrays are freed with the layer; copies and pickles of a layer start empty.

    Threads: each thread gets its own set (threading.local), so forwards from two threads on one
    layer (eval-mode inference, say) never write into each other's arrays, and their outputs are
    fresh arrays; the cost is one set of arrays per thread that used the layer. This keeps the
    reuse (no allocation, no page faults on large buffers) on the hot path. The backward cache
    is still one per layer: a backward after another thread's forward raises (Layer.saved), so
    one layer cannot be trained from two threads at once.
    """

    def __init__(self):
        self._local = _ThreadArrays()

    def __reduce__(self):                 # copy.deepcopy and pickle: a fresh, empty Scratch
        return (Scratch, ())

    def __contains__(self, key: str) -> bool:
        """Whether this thread has an array under ``key``."""
        return key in self._local.arrays

    def array(self, key: str, shape: tuple, dtype, *, zeros: bool = False) -> np.ndarray:
        """The array under ``key``, reallocated (zero-filled if ``zeros``) when the shape or the
        dtype differ. Its contents are whatever the previous user left."""
        arrays = self._local.arrays
        buf = arrays.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = arrays[key] = (np.zeros if zeros else np.empty)(shape, dtype=dtype)
        return buf

    def padded(self, key: str, x: np.ndarray, pad_lo: tuple, padded_spatial: tuple, *,
               own: bool = False) -> np.ndarray:
        """x (N, C, *spatial) inside zeros of (N, C, *padded_spatial), as (N, C, D, H, W).

        Only the interior is ever written, so the border stays zero; the array is zeroed again
        when the interior moves or changes size within it (Winograd's tile-rounded extent is
        the same for inputs that differ by a few pixels). Without padding, x itself (made
        contiguous) is returned, or with ``own`` a copy in the scratch array (for a cache that
        must not change when the caller changes x).
        """
        if tuple(padded_spatial) == x.shape[2:]:
            if own:
                xp = self.array(key, x.shape, x.dtype)
                np.copyto(xp, x)
                return xp.reshape(as5(x.shape))
            x = np.ascontiguousarray(x)
            return x.reshape(as5(x.shape))
        xp = self.array(key, x.shape[:2] + tuple(padded_spatial), x.dtype, zeros=True)
        inside = interior(pad_lo, x.shape[2:])
        interiors = self._local.interiors
        if interiors.get(key, inside) != inside:
            xp[...] = 0
        interiors[key] = inside
        xp[inside] = x
        return xp.reshape(as5(xp.shape))


def block_samples(n: int, rows: int, positions: int, itemsize: int) -> int:
    """Samples per block of im2col's columns: as many as fit in :data:`COLUMN_BLOCK_BYTES`,
    at least one, at most the batch's ``n``."""
    return max(1, min(n, COLUMN_BLOCK_BYTES // max(1, rows * positions * itemsize)))


class Im2colConv:
    """im2col + GEMM by blocks of samples, forward and backward (∂L/∂x by GEMM and col2im)."""

    name = "im2col"

    def forward(self, conv, x: np.ndarray, bias: np.ndarray, out_spatial: tuple) -> tuple:
        """Y = W₂ cols + b; returns (y, xp), the padded input kept for backward.

        The batch is cut into blocks of a few samples (:func:`block_samples`): each block's
        columns are written and at once multiplied, while they are still in the core's cache,
        and the product goes straight into y's (N, O, P) layout with the bias. Blocks run in
        threads (threads.run_batch_blocks), each with one-thread products and its own
        block-sized arrays. No columns outlive the call: backward builds them again, block by
        block, from the padded input (a copy of x's values: changing x after forward changes
        nothing; under layerkit.no_grad() x itself when there is no padding).
        """
        g, o = conv.geometry, conv.out_channels
        n, dt = x.shape[0], x.dtype
        xp = conv.scratch.padded("xp", x, g.pad_lo, _padded_extent(g, x.shape[2:]),
                                 own=grad_enabled())
        rows, positions = conv.in_channels * math.prod(conv.kernel_size), math.prod(out_spatial)
        groups = conv.groups
        w2 = by_group(conv.params["weight"].reshape(o, rows // groups).astype(dt, copy=False),
                      groups)
        y = np.empty((n, o, positions), dtype=dt)
        block = block_samples(n, rows, positions, dt.itemsize)
        args = kernel_args(g, out_spatial)

        def run(b_lo: int, b_hi: int) -> None:
            own_cols = np.empty(rows * block * positions, dtype=dt)
            own_y = np.empty(o * block * positions, dtype=dt)
            for s in range(b_lo * block, min(b_hi * block, n), block):
                e = min(s + block, n)
                width = (e - s) * positions
                c2 = own_cols[:rows * width].reshape(rows, e - s, positions)
                im2col(xp[s:e], c2, 0, *args)
                # per group, Y (O/G, B·P) = W₂ (O/G, R/G) @ cols (R/G, B·P)
                yb = own_y[:o * width].reshape(o, width)
                matmul_by_group(w2, by_group(c2.reshape(rows, width), groups),
                                out=by_group(yb, groups))
                gemm_to_nchw(yb.reshape(o, e - s, positions), bias, y[s:e])   # (B, O, P) + b

        run_batch_blocks(run, -(-n // block), o * rows * block * positions, min_rows=1)
        return y.reshape((n, o) + out_spatial), xp

    def backward(self, conv, cache, dy: np.ndarray, input_grad: bool) -> tuple:
        """∂L/∂W and ∂L/∂x (dcols = W₂ᵀ δ, then col2im), block by block; ∂L/∂b is the layer's."""
        dw, dx = weight_and_input_grad(conv, cache, dy, input_grad)
        return dw, None, dx


def weight_and_input_grad(conv, cache, dy: np.ndarray, input_grad: bool) -> tuple:
    """(∂L/∂W₂ as (G, O/G, R/G), ∂L/∂x or None) from the padded input the cache holds, by the
    blocks of samples forward used: per block, its columns (im2col, kept in cache), δ's block as
    (O, B·P), ∂L/∂W₂ += δ colsᵀ (one GEMM per group) and, with ``input_grad``, dcols = W₂ᵀ δ
    scattered back by col2im into that block's samples of ∂L/∂x_pad.

    Each block's ∂L/∂W₂ goes to its own slot and the slots are summed in block order at the
    end: the result does not depend on how the blocks were shared among threads.
    """
    g, o, groups = conv.geometry, conv.out_channels, conv.groups
    xp, x_shape, out_spatial = cache.xp, cache.x_shape, cache.out_spatial
    n, dt = x_shape[0], xp.dtype
    rows, positions = conv.in_channels * math.prod(conv.kernel_size), math.prod(out_spatial)
    block = block_samples(n, rows, positions, dt.itemsize)
    blocks = -(-n // block)
    dws = np.empty((blocks, groups, o // groups, rows // groups), dtype=dt)
    dy3 = dy.reshape(n, o, positions)
    args = kernel_args(g, out_spatial)
    padded = _padded_extent(g, x_shape[2:])
    dxp = None
    if input_grad:
        w2t = by_group(conv.params["weight"].reshape(o, rows // groups).astype(dt, copy=False),
                       groups).transpose(0, 2, 1)
        dxp = np.empty(as5(x_shape), dtype=dt) if padded == x_shape[2:] else \
            conv.scratch.array("dxp", as5(x_shape[:2] + padded), dt)

    def run(b_lo: int, b_hi: int) -> None:
        own_cols = np.empty(rows * block * positions, dtype=dt)
        own_dy = np.empty(o * block * positions, dtype=dt)
        own_dcols = np.empty(rows * block * positions, dtype=dt) if input_grad else None
        for b in range(b_lo, b_hi):
            s, e = b * block, min((b + 1) * block, n)
            width = (e - s) * positions
            c2 = own_cols[:rows * width].reshape(rows, e - s, positions)
            im2col(xp[s:e], c2, 0, *args)
            d3 = transposed_copy(own_dy[:o * width].reshape(o, e - s, positions), dy3[s:e])
            d2 = by_group(d3.reshape(o, width), groups)
            matmul_by_group(d2, by_group(c2.reshape(rows, width), groups).transpose(0, 2, 1),
                            out=dws[b])
            if input_grad:
                dc = own_dcols[:rows * width].reshape(rows, width)
                matmul_by_group(w2t, d2, out=by_group(dc, groups))      # (G, R/G, B·P)
                col2im(dc.reshape(rows, e - s, positions), dxp[s:e], *args)

    run_batch_blocks(run, blocks, o * rows * block * positions, min_rows=1)
    dw = dws.sum(axis=0) if blocks else np.zeros(dws.shape[1:], dtype=dt)
    if not input_grad:
        return dw, None
    if padded == x_shape[2:]:
        return dw, dxp.reshape(x_shape)
    return dw, np.ascontiguousarray(dxp.reshape(x_shape[:2] + padded)[
        interior(g.pad_lo, x_shape[2:])])


class WinogradConv:
    """Winograd F(4×4, 3×3) for y and ∂L/∂x; ∂L/∂W from im2col's columns, built in backward."""

    name = "winograd"

    def forward(self, conv, x: np.ndarray, bias: np.ndarray, out_spatial: tuple) -> tuple:
        """Returns (y, xp): the padded input is kept (a copy of x's values, except under
        layerkit.no_grad())."""
        y, xp = _winograd(conv.scratch, "xp", x, conv.params["weight"], bias,
                          conv.geometry.pad_lo, out_spatial, own=grad_enabled())
        return y, xp

    def backward(self, conv, cache, dy: np.ndarray, input_grad: bool) -> tuple:
        """∂L/∂W from im2col's columns of the kept padded input (:func:`weight_and_input_grad`),
        ∂L/∂x by Winograd; ∂L/∂b is the layer's."""
        dw, _ = weight_and_input_grad(conv, cache, dy, False)
        return dw, None, (self._input_grad(conv, cache, dy) if input_grad else None)

    def _input_grad(self, conv, cache, dy: np.ndarray) -> np.ndarray:
        """δ, padded by 2 − P, correlated with rot180(W) transposed to (C, O, 3, 3)."""
        dt = cache.xp.dtype
        w_flip = conv.params["weight"][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        dx, _ = _winograd(conv.scratch, "dyp", dy.astype(dt, copy=False), w_flip,
                          np.zeros(conv.in_channels, dt),
                          tuple(2 - lo for lo in conv.geometry.pad_lo), cache.x_shape[2:])
        return dx


def _plane_args(g) -> tuple:
    """The geometry of a 1-D or 2-D convolution as 2-D (kh, kw), (sh, sw), (dh, dw), (ph, pw)
    (the low padding), with a singleton leading axis for 1-D."""
    front = 2 - len(g.kernel)
    return tuple((one,) * front + tuple(t) for one, t in ((1, g.kernel), (1, g.stride),
                                                          (1, g.dilation), (0, g.pad_lo)))


def _planes(shape: tuple) -> tuple:
    """(N, C, *spatial) of a 1-D or 2-D convolution as (N, C, H, W), H = 1 for 1-D."""
    return as5(shape)[:2] + as5(shape)[3:]


def _run(serial, parallel, work: int, *args):
    """The serial kernel on ``args``, or for large work (multiply-adds) with several numba
    threads its parallel twin with one block of planes per thread."""
    kernel = parallel_if(work >= _DEPTHWISE_PARALLEL_MIN, parallel, serial)
    if kernel is parallel:
        return parallel(*args, numba.get_num_threads())
    return serial(*args)


class DepthwiseConv:
    """Direct loops for groups = in_channels (1-D and 2-D): no columns, forward and both
    gradients from the padded input (kernels/depthwise.py)."""

    name = "depthwise"

    def forward(self, conv, x: np.ndarray, bias: np.ndarray, out_spatial: tuple) -> tuple:
        """Returns (y, xp): the padded input, a copy the caller's x cannot change, is kept for
        ∂L/∂W (under layerkit.no_grad() x itself when there is no padding)."""
        g, o, dt = conv.geometry, conv.out_channels, x.dtype
        n = x.shape[0]
        (kh, kw), (sh, sw), (dh, dw), (ph, pw) = _plane_args(g)
        padded = _padded_extent(g, x.shape[2:])
        if padded == x.shape[2:]:
            xp = conv.scratch.padded("xp", x, g.pad_lo, padded, own=grad_enabled())
        else:
            # zero-filled when (re)allocated; only its interior is ever written, and for one
            # shape the interior is always the same (the layer's padding), so the border stays 0
            xp = conv.scratch.array("xp_depthwise", x.shape[:2] + padded, dt, zeros=True)
            depthwise.pad_interior(np.ascontiguousarray(x).reshape(_planes(x.shape)),
                                   xp.reshape(_planes(xp.shape)), ph, pw)
            xp = xp.reshape(as5(xp.shape))
        out_hw = ((1,) * (2 - len(out_spatial))) + tuple(out_spatial)
        y = np.empty((n, o) + out_hw, dtype=dt)
        w = conv.params["weight"].reshape(o, kh, kw).astype(dt, copy=False)
        _run(depthwise.depthwise_forward, depthwise.depthwise_forward_parallel, y.size * kh * kw,
             xp.reshape(_planes(xp.shape)), w, bias, y, sh, sw, dh, dw)
        return y.reshape((n, o) + tuple(out_spatial)), xp

    def backward(self, conv, cache, dy: np.ndarray, input_grad: bool) -> tuple:
        """∂L/∂W over the batch from the kept padded input, then ∂L/∂x from δ and W (the
        kernels' docstrings give the loops); ∂L/∂b comes out of the ∂L/∂W loops."""
        xp = cache.xp
        xp4 = xp.reshape(_planes(xp.shape))
        o, dt = conv.out_channels, xp.dtype
        (kh, kw), (sh, sw), (dh, dw), (ph, pw) = _plane_args(conv.geometry)
        dy4 = np.ascontiguousarray(dy, dtype=dt).reshape(_planes(dy.shape))
        work = dy4.size * kh * kw
        gw, gb = np.empty((o, kh, kw), dtype=dt), np.empty(o, dtype=dt)
        _run(depthwise.depthwise_backward_weight, depthwise.depthwise_backward_weight_parallel,
             work, xp4, dy4, gw, gb, sh, sw, dh, dw)
        if not input_grad:
            return gw, gb, None
        x_shape = cache.x_shape
        dx = np.empty(_planes(x_shape), dtype=dt)
        w = conv.params["weight"].reshape(o, kh, kw).astype(dt, copy=False)
        _run(depthwise.depthwise_backward_input, depthwise.depthwise_backward_input_parallel,
             work, dy4, w, dx, ph, pw, xp4.shape[2], xp4.shape[3], sh, sw, dh, dw)
        return gw, gb, dx.reshape(x_shape)


IM2COL = Im2colConv()
WINOGRAD = WinogradConv()
DEPTHWISE = DepthwiseConv()


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


def _winograd(scratch: Scratch, key: str, src: np.ndarray, w: np.ndarray, bias: np.ndarray,
              pad_lo: tuple, out_hw: tuple, *, own: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 3×3, stride-1 correlation of src (N, C, H, W) padded by pad_lo before (and zeros
    after, as far as the tiles need; in the scratch array ``key``) with w (O, C, 3, 3), plus
    bias, by Winograd F(4×4, 3×3).

    Returns (y of shape (N, O, *out_hw), the padded src as (N, C, 1, H_p, W_p)). The tiles
    are cut into units of about _WINOGRAD_GROUP_TILES: groups of whole samples when a sample
    has fewer tiles, bands of tile rows of one sample when it has more. Each unit shares one
    transform array and one product (36 GEMMs): small enough to stay in cache, wide enough
    for BLAS. Blocks of whole units run in threads (threads.run_batch_blocks), each with its
    own work arrays; the units depend on the shapes only, so the results do not depend on the
    number of threads.
    """
    n, c, dt = src.shape[0], src.shape[1], src.dtype
    o = w.shape[0]
    tiles_h, tiles_w = -(-out_hw[0] // 4), -(-out_hw[1] // 4)
    xp = scratch.padded(key, src, pad_lo, (4 * tiles_h + 2, 4 * tiles_w + 2), own=own)
    xp4 = xp.reshape(xp.shape[:2] + xp.shape[3:])
    u = winograd.filter_transform(w, dt)
    k = winograd.constants(dt)
    y = np.empty((n, o) + tuple(out_hw), dtype=dt)
    if n == 0:
        return y, xp
    w_direct = np.ascontiguousarray(w, dtype=dt)        # for the tiles computed directly
    unsafe = np.zeros((n, tiles_h, tiles_w), dtype=np.bool_)
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
        row_scratch = np.empty((6, 4 * tiles_w + 2), dtype=dt)  # the kernels' row scratch
        sums = np.empty((24, tiles_w), dtype=dt)
        band = None if exact else np.empty((o, 4 * rows, 4 * tiles_w), dtype=dt)
        field_max = np.empty((4 * rows + 2, 4 * tiles_w + 2), dtype=dt)    # unsafe_tiles' a
        for unit in units[u_lo:u_hi]:
            first = marked = 0
            for i, lo, hi in unit:
                marked += winograd.unsafe_tiles(xp4, i, lo, hi, out_hw[0], out_hw[1],
                                                WINOGRAD_RANGE, unsafe, field_max)
                winograd.input_transform(xp4, i, lo, hi, v, first, k, row_scratch)
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
                if marked:           # outside the bound: these blocks computed directly
                    for th, tw in np.argwhere(unsafe[i, lo:hi]):
                        winograd.direct_tile(xp4, i, lo + th, tw, w_direct, bias, y[i], 0)

    run_batch_blocks(run, len(units), 36 * o * c * width, min_rows=1)  # a unit is large
    return y, xp
