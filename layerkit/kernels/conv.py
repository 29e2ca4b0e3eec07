"""Convolution kernels: im2col and its adjoint col2im, for 3 spatial axes (D, H, W).

A convolution with weights W (O, C, kD, kH, kW) is computed as a matrix product. ``im2col``
copies, for every sample n, every tap (c, jd, jh, jw) and every output position p = (pd, ph, pw),

    cols[n, (c, jd, jh, jw), p] = x_pad[n, c, pd·sD + jd·dD, ph·sH + jh·dH, pw·sW + jw·dW]

(0 where the tap reads padding), so that ``y[n] = W.reshape(O, C·kD·kH·kW) @ cols[n]``. The layer
does that product, and the ones of the backward pass, with numpy's BLAS (never ``np.dot`` inside a
kernel: it would run on a second BLAS competing for the same cores); these kernels only move data.

``col2im`` is the transpose (adjoint) of ``im2col``: it scatter-adds every column entry back onto
the input position it was read from. Applied to dcols = Wᵀ δ it computes exactly the "full
convolution of δ with the kernel" of the derivation, ∂L/∂x = δ ⋆ rot180(W), with stride and
padding handled exactly: taps that read padding send nothing back, and input positions no window
reads (the last rows when the stride does not fit) receive 0.

1-D and 2-D convolutions use the same kernels with singleton leading spatial axes (kernel 1,
stride 1, padding 0, dilation 1 there). Arrays must be C-contiguous and the caller allocates the
outputs. The batch loop is a ``prange``: each iteration writes only its own sample, so there are
no write conflicts. Works for float32 and float64, and as plain Python with NUMBA_DISABLE_JIT=1.
"""

from __future__ import annotations

from numba import prange

from .config import jit


@jit()
def _valid_range(size, out, k_off, s):
    """Output positions o in [lo, hi) whose tap reads the input: 0 <= o·s + k_off < size."""
    lo = max(0, -(k_off // s))
    hi = min(out, (size - k_off - 1) // s + 1)
    return lo, max(lo, hi)


@jit(parallel=True)
def im2col(x, cols, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw):
    """Fill ``cols`` (N, C·kd·kh·kw, out_d·out_h·out_w) from ``x`` (N, C, D, H, W).

    ``pd, ph, pw`` are the paddings *before* each axis; the padding after only shows in the
    output sizes, which the caller computed (layerkit.geometry). Returns ``cols``.
    Along W the positions whose tap reads padding form a prefix and a suffix (zeros); the middle
    range is a plain strided copy, with no bounds test in the inner loop.
    """
    n_batch, n_chan, size_d, size_h, size_w = x.shape
    for n in prange(n_batch):
        for c in range(n_chan):
            for jd in range(kd):
                for jh in range(kh):
                    for jw in range(kw):
                        row = cols[n, ((c * kd + jd) * kh + jh) * kw + jw]
                        off_w = jw * dw - pw                    # i_w = ow·sw + off_w
                        lo, hi = _valid_range(size_w, out_w, off_w, sw)
                        for od in range(out_d):
                            i_d = od * sd - pd + jd * dd
                            for oh in range(out_h):
                                i_h = oh * sh - ph + jh * dh
                                base = (od * out_h + oh) * out_w
                                if i_d < 0 or i_d >= size_d or i_h < 0 or i_h >= size_h:
                                    row[base:base + out_w] = 0          # the whole row is padding
                                    continue
                                src = x[n, c, i_d, i_h]
                                row[base:base + lo] = 0
                                for ow in range(lo, hi):
                                    row[base + ow] = src[ow * sw + off_w]
                                row[base + hi:base + out_w] = 0
    return cols


@jit(parallel=True)
def col2im(cols, dx, out_d, out_h, out_w, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw):
    """Set ``dx`` (N, C, D, H, W) to the scatter-add of ``cols`` (the adjoint of :func:`im2col`).

    ``dx[n, c, i] = Σ over (tap j, position p) with p·s − pad + j·d = i of cols[n, (c, j), p]``.
    ``dx`` is overwritten (zeroed first), so it may be passed in uninitialised. Returns ``dx``.
    """
    n_batch, n_chan, size_d, size_h, size_w = dx.shape
    for n in prange(n_batch):
        dx[n] = 0
        for c in range(n_chan):
            for jd in range(kd):
                for jh in range(kh):
                    for jw in range(kw):
                        row = cols[n, ((c * kd + jd) * kh + jh) * kw + jw]
                        off_w = jw * dw - pw
                        lo, hi = _valid_range(size_w, out_w, off_w, sw)
                        for od in range(out_d):
                            i_d = od * sd - pd + jd * dd
                            if i_d < 0 or i_d >= size_d:
                                continue
                            for oh in range(out_h):
                                i_h = oh * sh - ph + jh * dh
                                if i_h < 0 or i_h >= size_h:
                                    continue
                                base = (od * out_h + oh) * out_w
                                dst = dx[n, c, i_d, i_h]
                                for ow in range(lo, hi):
                                    dst[ow * sw + off_w] += row[base + ow]
    return dx
