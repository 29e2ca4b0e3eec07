"""Convolution kernels: im2col and its adjoint col2im, for 3 spatial axes (D, H, W).

A convolution with weights W (O, C, kD, kH, kW) is computed as one matrix product. ``im2col``
copies, for every tap r = (c, jd, jh, jw), every sample n and every output position
p = (pd, ph, pw),

    cols[(c, jd, jh, jw), n, p] = x_pad[n, c, pd·sD + jd·dD, ph·sH + jh·dH, pw·sW + jw·dW]

from the *already padded* input x_pad, so that ``Y = W.reshape(O, C·kD·kH·kW) @ cols.reshape(R,
N·P)`` is a single (O, N·P) GEMM for the whole batch (one large product instead of N small
ones), and :func:`gemm_to_nchw` turns Y into the (N, O, P) output with the bias added in the same
pass. The layer does the products with numpy's BLAS (never ``np.dot`` inside a kernel: it would
run on a second BLAS competing for the same cores); these kernels only move data.

Why a padded input: the taps that read padding then need no bounds test, and the inner loop is a
plain copy along W (unit stride when sW = 1, which LLVM vectorises), near memcpy speed; testing
bounds and zero-filling per row is several times slower. Padding costs one copy of x,
1/(kD·kH·kW) of the columns' size.

``col2im`` is the transpose (adjoint) of ``im2col``: it scatter-adds every column entry back onto
the padded-input position it was read from. Applied to dcols = Wᵀ δ it computes exactly the "full
convolution of δ with the kernel" of the derivation, ∂L/∂x = δ ⋆ rot180(W); the caller cuts the
padding off (taps that read padding send their values there, and they are dropped), and input
positions no window reads (the last rows when the stride does not fit) receive 0.

1-D and 2-D convolutions use the same kernels with singleton leading spatial axes (kernel 1,
stride 1, dilation 1 there). Arrays must be C-contiguous and the caller allocates the outputs.

Each kernel comes twice, serial and ``_parallel`` (a ``prange`` over the batch: each iteration
writes only its own sample, so there are no write conflicts; col2im's parallel loop runs over
channels, whose input planes are disjoint). The parallel launch costs tens of microseconds and,
with one thread, the parallel build is slower than the serial one, so the layer picks the parallel
variant only for large work with more than one numba thread. Works for float32 and float64, and
as plain Python with NUMBA_DISABLE_JIT=1.
"""

from __future__ import annotations

from numba import prange

from .config import jit


# Index arithmetic note: numba wraps negative indices (x[-1] is the last element), so an index
# that LLVM cannot prove non-negative costs a test per element and blocks vectorisation. The
# strides and dilations are run-time integers of unknown sign, hence the max(..., 0) around the
# offsets (a no-op here: they are never negative) and the row views taken outside the inner loop.


@jit(nogil=True)
def _im2col_sample_s1(xp, cols, n, first, out_h, out_w, kh, kw):
    """:func:`_im2col_sample` for 1-D/2-D (D = 1), stride = dilation = 1: plain row copies."""
    for c in range(xp.shape[1]):
        src = xp[n, c, 0]
        for jh in range(kh):
            for jw in range(kw):
                dst = cols[(c * kh + jh) * kw + jw, first + n]
                for oh in range(out_h):
                    base = oh * out_w
                    for ow in range(out_w):
                        dst[base + ow] = src[oh + jh, ow + jw]


@jit(nogil=True)
def _im2col_sample(xp, cols, n, first, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    """im2col for sample ``n`` of xp only, into column block ``first + n`` (see :func:`im2col`)."""
    if xp.shape[2] == 1 and sh == 1 and sw == 1 and dh == 1 and dw == 1:
        _im2col_sample_s1(xp, cols, n, first, out_h, out_w, kh, kw)
        return
    for c in range(xp.shape[1]):
        for jd in range(kd):
            for jh in range(kh):
                for jw in range(kw):
                    dst = cols[((c * kd + jd) * kh + jh) * kw + jw, first + n]
                    off_w = max(jw * dw, 0)
                    for od in range(out_d):
                        plane = xp[n, c, max(od * sd + jd * dd, 0)]
                        for oh in range(out_h):
                            src = plane[max(oh * sh + jh * dh, 0)]
                            base = max((od * out_h + oh) * out_w, 0)
                            if sw == 1:
                                for ow in range(out_w):
                                    dst[base + ow] = src[ow + off_w]
                            else:
                                for ow in range(out_w):
                                    dst[base + ow] = src[max(ow * sw, 0) + off_w]


@jit(nogil=True)
def im2col(xp, cols, first, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    """Fill ``cols[:, first:first + N]`` (cols: (C·kd·kh·kw, ≥ first + N, out_d·out_h·out_w))
    from the padded input ``xp`` (N, C, D, H, W): sample n of xp goes to column block first + n
    (``first`` > 0 fills a block of a whole batch's columns from that block's samples).

    The padding is already in ``xp`` (the caller pads), so every tap reads inside it.
    Returns ``cols``.
    """
    for n in range(xp.shape[0]):
        _im2col_sample(xp, cols, n, first, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh,
                       dw)
    return cols


@jit(parallel=True)
def im2col_parallel(xp, cols, first, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    """:func:`im2col` with a ``prange`` over the batch."""
    for n in prange(xp.shape[0]):
        _im2col_sample(xp, cols, n, first, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh,
                       dw)
    return cols


@jit(nogil=True)
def _zero_rows(a):
    """a[...] = 0 for a 2-D array. (Explicit loops: numba compiles slice assignment through its
    general broadcasting code, which costs seconds of compile time per kernel.)"""
    for i in range(a.shape[0]):
        row = a[i]
        for j in range(row.shape[0]):
            row[j] = 0


@jit(nogil=True)
def _col2im_channel_s1(cols, dxp, c, out_h, out_w, kh, kw):
    """:func:`_col2im_channel` for 1-D/2-D (D = 1), stride = dilation = 1."""
    for n in range(dxp.shape[0]):
        dst = dxp[n, c, 0]
        _zero_rows(dst)
        for jh in range(kh):
            for jw in range(kw):
                src = cols[(c * kh + jh) * kw + jw, n]
                for oh in range(out_h):
                    base = oh * out_w
                    for ow in range(out_w):
                        dst[oh + jh, ow + jw] += src[base + ow]


@jit(nogil=True)
def _col2im_channel(cols, dxp, c, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    """col2im for input channel ``c`` only (see :func:`col2im`)."""
    if dxp.shape[2] == 1 and sh == 1 and sw == 1 and dh == 1 and dw == 1:
        _col2im_channel_s1(cols, dxp, c, out_h, out_w, kh, kw)
        return
    for n in range(dxp.shape[0]):
        for d in range(dxp.shape[2]):
            _zero_rows(dxp[n, c, d])
        for jd in range(kd):
            for jh in range(kh):
                for jw in range(kw):
                    src = cols[((c * kd + jd) * kh + jh) * kw + jw, n]
                    off_w = max(jw * dw, 0)
                    for od in range(out_d):
                        plane = dxp[n, c, max(od * sd + jd * dd, 0)]
                        for oh in range(out_h):
                            dst = plane[max(oh * sh + jh * dh, 0)]
                            base = max((od * out_h + oh) * out_w, 0)
                            if sw == 1:
                                for ow in range(out_w):
                                    dst[ow + off_w] += src[base + ow]
                            else:
                                for ow in range(out_w):
                                    dst[max(ow * sw, 0) + off_w] += src[base + ow]


@jit(nogil=True)
def col2im(cols, dxp, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    """Set ``dxp`` (N, C, D, H, W), the padded input's shape, to the scatter-add of ``cols``.

    The adjoint of :func:`im2col`: ``dxp[n, c, i] = Σ over (tap j, position p) with
    p·s + j·d = i of cols[(c, j), n, p]``. ``dxp`` is overwritten (zeroed first), so it may be
    passed in uninitialised; the caller cuts the padding off. Returns ``dxp``.
    """
    for c in range(dxp.shape[1]):
        _col2im_channel(cols, dxp, c, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw)
    return dxp


@jit(parallel=True)
def col2im_parallel(cols, dxp, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw):
    """:func:`col2im` with a ``prange`` over the input channels (disjoint output planes)."""
    for c in prange(dxp.shape[1]):
        _col2im_channel(cols, dxp, c, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw)
    return dxp


@jit(nogil=True)
def gemm_to_nchw(yg, bias, y):
    """``y[n, o, p] = yg[o, n, p] + bias[o]`` (pass zeros for no bias). Returns ``y``.

    Turns the batch GEMM's (O, N, P) result into the (N, O, P) layout and adds the bias in the
    same pass (one read and one write of the output instead of a copy plus a bias pass).
    """
    n_out, n_batch, n_pos = yg.shape
    for n in range(n_batch):
        for o in range(n_out):
            b = bias[o]
            for p in range(n_pos):
                y[n, o, p] = yg[o, n, p] + b
    return y
