"""Depthwise 2-D convolution kernels, computed directly (no im2col columns).

A depthwise convolution (groups = C, O = m·C) gives each output channel o one input channel,
c = ⌊o / m⌋, and one (kh, kw) filter w[o]. Over the *already padded* input xp (N, C, Hp, Wp),
with stride (sh, sw) and dilation (dh, dw),

    y[n, o, i, k] = b[o] + Σ_(jh, jw) w[o, jh, jw] · xp[n, c, i·sh + jh·dh, k·sw + jw·dw],

and, with δ = ∂L/∂y,

    ∂L/∂xp[n, c, i·sh + jh·dh, k·sw + jw·dw] += Σ_(o of c) w[o, jh, jw] · δ[n, o, i, k],
    ∂L/∂w[o, jh, jw] = Σ_n Σ_(i, k) δ[n, o, i, k] · xp[n, c, i·sh + jh·dh, k·sw + jw·dw],
    ∂L/∂b[o] = Σ_n Σ_(i, k) δ[n, o, i, k].

Loop order: one (sample, channel) plane at a time, the kernel tap outside, a contiguous run
of outputs inside (a multiply-add per element, which LLVM vectorises). With stride 1 in both
axes the run is the whole plane: output (i, k) is stored at i·Wp + k of a plane with the
padded input's row pitch Wp, so tap (jh, jw) reads the flat input at the constant offset
jh·dh·Wp + jw·dw, and one loop of (Ho − 1)·Wp + Wo elements per tap replaces Ho short rows
(the Wp − Wo entries past each row's end are junk, dropped when the plane is copied out, and
zero where δ is read). The forward and ∂L/∂x take three taps of a kernel row per pass (one
load and store of the run for three multiply-adds). ∂L/∂x with stride 1 is itself such a
correlation: of δ, laid out at the pitch Wp after a zero margin, with the taps reversed.
With a larger stride the loops run row by row (the forward gathers, ∂L/∂x scatters).

The weight gradient is a sum over positions, a reduction LLVM vectorises only with
reassociation (fastmath, off in this project): it is accumulated elementwise into one row of
partial sums per tap, acc[t, i] += δ[i] · x[i + offset_t], which vectorises, over chunks of
the run short enough for the rows to stay in the L1 cache, and each row is summed once per
output channel (in float64).

Each kernel comes twice, serial and ``_parallel``: the planes split into ``blocks`` contiguous
ranges run by a ``prange``, each with its own scratch rows; the forward and ∂L/∂x split by
(sample, channel) plane, ∂L/∂w by output channel (each sums over the whole batch), so no two
iterations write the same element. Works for float32 and float64, and as plain Python with
NUMBA_DISABLE_JIT=1. Arrays are C-contiguous; the caller allocates the outputs.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .config import jit


# Index arithmetic note (as in kernels/conv.py): numba wraps negative indices, so an index that
# LLVM cannot prove non-negative costs a test per element and blocks vectorisation; the max(.., 0)
# around run-time offsets is a no-op that lets it drop the test. Every array is indexed through
# a flat view (one index, the offsets computed outside the inner loop): row views and 2-D
# indexing cost more than the work of a short row.


@jit()
def _block(n_items, blocks, b):
    """Items [lo, hi) of block b when n_items are cut into ``blocks`` contiguous ranges."""
    return n_items * b // blocks, n_items * (b + 1) // blocks


@jit()
def pad_interior(x, xp, pad_h, pad_w):
    """xp[n, c, pad_h + i, pad_w + k] = x[n, c, i, k]: x (N, C, H, W) into the interior of
    xp (N, C, Hp, Wp), whose border the caller keeps at zero (only the interior is written).
    Returns ``xp``."""
    h, wd = x.shape[2], x.shape[3]
    hp, wp = xp.shape[2], xp.shape[3]
    xf, xpf = x.reshape(x.size), xp.reshape(xp.size)
    for q in range(x.shape[0] * x.shape[1]):
        for r in range(h):
            d = max((q * hp + r + pad_h) * wp + pad_w, 0)
            s = max((q * h + r) * wd, 0)
            for k in range(wd):
                xpf[d + k] = xf[s + k]
    return xp


@jit()
def _forward_planes(xp, w, bias, y, sh, sw, dh, dw, lo, hi, acc):
    """y for the input planes q = n·C + c in [lo, hi) (the m output planes of each); ``acc``
    holds at least (Ho − 1)·Wp + Wo entries."""
    n_chan, hp, wp = xp.shape[1], xp.shape[2], xp.shape[3]
    n_out, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    m = n_out // n_chan
    kh, kw = w.shape[1], w.shape[2]
    xpf, yf, wf = xp.reshape(xp.size), y.reshape(y.size), w.reshape(w.size)
    flat = sh == 1 and sw == 1
    run = (out_h - 1) * wp + out_w
    for q in range(lo, hi):
        n, c = q // n_chan, q % n_chan
        pb = max(q * hp * wp, 0)
        for o in range(c * m, (c + 1) * m):
            b = bias[o]
            yb = max((n * n_out + o) * out_h * out_w, 0)
            if flat:
                for i in range(run):
                    acc[i] = b
                for jh in range(kh):
                    jw = 0
                    while jw + 3 <= kw:             # three taps of the row per pass
                        t = (o * kh + jh) * kw + jw
                        w0, w1, w2 = wf[t], wf[t + 1], wf[t + 2]
                        o0 = max(pb + jh * dh * wp + jw * dw, 0)
                        o1, o2 = max(o0 + dw, 0), max(o0 + 2 * dw, 0)
                        for i in range(run):
                            acc[i] += w0 * xpf[o0 + i] + w1 * xpf[o1 + i] + w2 * xpf[o2 + i]
                        jw += 3
                    for j in range(jw, kw):
                        wt = wf[(o * kh + jh) * kw + j]
                        off = max(pb + jh * dh * wp + j * dw, 0)
                        for i in range(run):
                            acc[i] += wt * xpf[off + i]
                for i in range(out_h):
                    d, s = max(yb + i * out_w, 0), max(i * wp, 0)
                    for k in range(out_w):
                        yf[d + k] = acc[s + k]
            else:
                for i in range(out_h):
                    d = max(yb + i * out_w, 0)
                    for k in range(out_w):
                        yf[d + k] = b
                    for jh in range(kh):
                        for jw in range(kw):
                            wt = wf[(o * kh + jh) * kw + jw]
                            off = max(pb + (i * sh + jh * dh) * wp + jw * dw, 0)
                            for k in range(out_w):
                                yf[d + k] += wt * xpf[off + k * sw]


@jit()
def depthwise_forward(xp, w, bias, y, sh, sw, dh, dw):
    """y (N, O, Ho, Wo) from the padded input xp (N, C, Hp, Wp), weights w (O, kh, kw) and
    bias (O,) (zeros for none). Returns ``y``."""
    acc = np.empty((y.shape[2] - 1) * xp.shape[3] + y.shape[3], dtype=y.dtype)
    _forward_planes(xp, w, bias, y, sh, sw, dh, dw, 0, xp.shape[0] * xp.shape[1], acc)
    return y


@jit(parallel=True)
def depthwise_forward_parallel(xp, w, bias, y, sh, sw, dh, dw, blocks):
    """:func:`depthwise_forward` with the (sample, channel) planes in ``blocks`` ranges run by
    a ``prange``."""
    planes = xp.shape[0] * xp.shape[1]
    for b in prange(blocks):
        lo, hi = _block(planes, blocks, b)
        acc = np.empty((y.shape[2] - 1) * xp.shape[3] + y.shape[3], dtype=y.dtype)
        _forward_planes(xp, w, bias, y, sh, sw, dh, dw, lo, hi, acc)
    return y


@jit()
def _input_margin(kh, kw, dh, dw, wp):
    """The flat offset of the last tap, (kh − 1)·dh·Wp + (kw − 1)·dw."""
    return (kh - 1) * dh * wp + (kw - 1) * dw


@jit()
def _input_planes(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, lo, hi, acc, dyz):
    """∂L/∂x for the planes q = n·C + c in [lo, hi). ``acc`` holds at least Hp·Wp entries.

    Stride 1: the scatter ∂L/∂xp[j + off_t] += w_t · δ[j] (flat plane index j = i·Wp + k, tap
    offset off_t) is computed as a correlation, ∂L/∂xp[j] = Σ_t w_t · δz[margin + j − off_t],
    over the interior j only; δz (``dyz``, margin + Hp·Wp entries, zero outside the outputs)
    is δ with the row pitch Wp after a margin of the largest offset. Larger strides: the
    scatter onto the padded plane in ``acc``, whose interior is then copied out.
    """
    n_chan, h, wd = dx.shape[1], dx.shape[2], dx.shape[3]
    n_out, out_h, out_w = dy.shape[1], dy.shape[2], dy.shape[3]
    m = n_out // n_chan
    kh, kw = w.shape[1], w.shape[2]
    dyf, dxf, wf = dy.reshape(dy.size), dx.reshape(dx.size), w.reshape(w.size)
    flat = sh == 1 and sw == 1
    margin = _input_margin(kh, kw, dh, dw, wp)
    run = (h - 1) * wp + wd                      # the interior, from (pad_h, pad_w) on
    start = margin + pad_h * wp + pad_w
    inside = 0 if flat else pad_h * wp + pad_w
    for q in range(lo, hi):
        n, c = q // n_chan, q % n_chan
        if flat:
            for i in range(run):
                acc[i] = 0
            for o in range(c * m, (c + 1) * m):
                db = max((n * n_out + o) * out_h * out_w, 0)
                for i in range(out_h):
                    d, s = max(margin + i * wp, 0), max(db + i * out_w, 0)
                    for k in range(out_w):
                        dyz[d + k] = dyf[s + k]
                for jh in range(kh):
                    jw = 0
                    while jw + 3 <= kw:             # three taps of the row per pass
                        t = (o * kh + jh) * kw + jw
                        w0, w1, w2 = wf[t], wf[t + 1], wf[t + 2]
                        o0 = max(start - jh * dh * wp - jw * dw, 0)
                        o1, o2 = max(o0 - dw, 0), max(o0 - 2 * dw, 0)
                        for i in range(run):
                            acc[i] += w0 * dyz[o0 + i] + w1 * dyz[o1 + i] + w2 * dyz[o2 + i]
                        jw += 3
                    for j in range(jw, kw):
                        wt = wf[(o * kh + jh) * kw + j]
                        off = max(start - jh * dh * wp - j * dw, 0)
                        for i in range(run):
                            acc[i] += wt * dyz[off + i]
        else:
            for i in range(hp * wp):
                acc[i] = 0
            for o in range(c * m, (c + 1) * m):
                db = max((n * n_out + o) * out_h * out_w, 0)
                for i in range(out_h):
                    s = max(db + i * out_w, 0)
                    for jh in range(kh):
                        for jw in range(kw):
                            wt = wf[(o * kh + jh) * kw + jw]
                            off = max((i * sh + jh * dh) * wp + jw * dw, 0)
                            for k in range(out_w):
                                acc[off + k * sw] += wt * dyf[s + k]
        xb = max(q * h * wd, 0)
        for r in range(h):
            d, s = max(xb + r * wd, 0), max(inside + r * wp, 0)
            for k in range(wd):
                dxf[d + k] = acc[s + k]


@jit()
def depthwise_backward_input(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw):
    """∂L/∂x (N, C, H, W) from δ (N, O, Ho, Wo) and w (O, kh, kw), for an input padded by
    (pad_h, pad_w) before its rows and columns to (Hp, Wp). Positions no window reads get 0.
    Returns ``dx``."""
    acc = np.empty(hp * wp, dtype=dx.dtype)
    dyz = np.zeros(_input_margin(w.shape[1], w.shape[2], dh, dw, wp) + hp * wp, dtype=dx.dtype)
    _input_planes(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, 0, dx.shape[0] * dx.shape[1],
                  acc, dyz)
    return dx


@jit(parallel=True)
def depthwise_backward_input_parallel(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, blocks):
    """:func:`depthwise_backward_input` with the (sample, channel) planes in ``blocks`` ranges
    run by a ``prange``."""
    planes = dx.shape[0] * dx.shape[1]
    for b in prange(blocks):
        lo, hi = _block(planes, blocks, b)
        acc = np.empty(hp * wp, dtype=dx.dtype)
        dyz = np.zeros(_input_margin(w.shape[1], w.shape[2], dh, dw, wp) + hp * wp,
                       dtype=dx.dtype)
        _input_planes(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, lo, hi, acc, dyz)
    return dx


@jit()
def _weight_channels(xp, dy, gw, gb, sh, sw, dh, dw, lo, hi, acc, accb, dyp):
    """∂L/∂w and ∂L/∂b for the output channels [lo, hi), summed over the batch. ``acc``
    (taps·R) and ``accb`` (R) hold the partial sums (R from :func:`_weight_width`); with
    stride 1, ``dyp`` ((Ho − 1)·Wp + Wo entries, zero past each row's end) is δ with the row
    pitch Wp, and acc[t·R + i] sums the products of the positions i, i + R, i + 2R, ..."""
    n_batch, n_out, out_h, out_w = dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3]
    n_chan, hp, wp = xp.shape[1], xp.shape[2], xp.shape[3]
    m = n_out // n_chan
    kh, kw = gw.shape[1], gw.shape[2]
    taps = kh * kw
    xpf, dyf, gwf = xp.reshape(xp.size), dy.reshape(dy.size), gw.reshape(gw.size)
    flat = sh == 1 and sw == 1
    width = accb.shape[0]
    run = dyp.shape[0]
    for o in range(lo, hi):
        c = o // m
        for i in range(taps * width):
            acc[i] = 0
        for i in range(width):
            accb[i] = 0
        for n in range(n_batch):
            pb = max((n * n_chan + c) * hp * wp, 0)
            db = max((n * n_out + o) * out_h * out_w, 0)
            if flat:
                for i in range(out_h):
                    d, s = max(i * wp, 0), max(db + i * out_w, 0)
                    for k in range(out_w):
                        dyp[d + k] = dyf[s + k]
                # chunks of the run, so that the taps' partial sums stay in the L1 cache
                for c0 in range(0, run, width):
                    size = min(width, run - c0)
                    dc = max(c0, 0)
                    for t in range(taps):
                        a = max(t * width, 0)
                        off = max(pb + (t // kw) * dh * wp + (t % kw) * dw + c0, 0)
                        for i in range(size):
                            acc[a + i] += dyp[dc + i] * xpf[off + i]
                    for i in range(size):
                        accb[i] += dyp[dc + i]
            else:
                for i in range(out_h):
                    s = max(db + i * out_w, 0)
                    for jh in range(kh):
                        for jw in range(kw):
                            a = max((jh * kw + jw) * width, 0)
                            off = max(pb + (i * sh + jh * dh) * wp + jw * dw, 0)
                            for k in range(out_w):
                                acc[a + k] += dyf[s + k] * xpf[off + k * sw]
                    for k in range(out_w):
                        accb[k] += dyf[s + k]
        for t in range(taps):
            total = 0.0
            for i in range(width):
                total += acc[t * width + i]
            gwf[o * taps + t] = total
        total = 0.0
        for i in range(width):
            total += accb[i]
        gb[o] = total


@jit()
def _weight_width(out_h, out_w, wp, sh, sw):
    """The length R of the partial-sum rows of :func:`_weight_channels`: with stride 1 the
    plane's run (Ho − 1)·Wp + Wo, in chunks of at most 512 (nine taps' rows of 512 fit the L1
    cache in float32 and float64), else Wo."""
    return min((out_h - 1) * wp + out_w, 256) if sh == 1 and sw == 1 else out_w


@jit()
def depthwise_backward_weight(xp, dy, gw, gb, sh, sw, dh, dw):
    """Set gw (O, kh, kw) to ∂L/∂w and gb (O,) to ∂L/∂b from the padded input xp
    (N, C, Hp, Wp) and δ (N, O, Ho, Wo). Returns ``gw``."""
    width = _weight_width(dy.shape[2], dy.shape[3], xp.shape[3], sh, sw)
    acc = np.empty(gw.shape[1] * gw.shape[2] * width, dtype=gw.dtype)
    accb = np.empty(width, dtype=gw.dtype)
    dyp = np.zeros((dy.shape[2] - 1) * xp.shape[3] + dy.shape[3], dtype=gw.dtype)
    _weight_channels(xp, dy, gw, gb, sh, sw, dh, dw, 0, dy.shape[1], acc, accb, dyp)
    return gw


@jit(parallel=True)
def depthwise_backward_weight_parallel(xp, dy, gw, gb, sh, sw, dh, dw, blocks):
    """:func:`depthwise_backward_weight` with the output channels in ``blocks`` ranges run by
    a ``prange``."""
    width = _weight_width(dy.shape[2], dy.shape[3], xp.shape[3], sh, sw)
    for b in prange(blocks):
        lo, hi = _block(dy.shape[1], blocks, b)
        acc = np.empty(gw.shape[1] * gw.shape[2] * width, dtype=gw.dtype)
        accb = np.empty(width, dtype=gw.dtype)
        dyp = np.zeros((dy.shape[2] - 1) * xp.shape[3] + dy.shape[3], dtype=gw.dtype)
        _weight_channels(xp, dy, gw, gb, sh, sw, dh, dw, lo, hi, acc, accb, dyp)
    return gw
