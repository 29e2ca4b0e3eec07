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
zero where δ is read). With a larger stride the loops run row by row.

The weight gradient is a sum over positions, a reduction LLVM vectorises only with
reassociation (fastmath, off in this project): it is accumulated elementwise into one row of
partial sums per tap, acc[t, i] += δ[i] · x[i + offset_t], which vectorises, and the row is
summed once per output channel.

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


# Index arithmetic note (as in kernels/conv.py): numba wraps negative indices, so an offset that
# LLVM cannot prove non-negative costs a test per element and blocks vectorisation; the max(.., 0)
# around run-time offsets is a no-op that lets it drop the test.


@jit()
def _block(n_items: int, blocks: int, b: int) -> tuple:
    """Items [lo, hi) of block b when n_items are cut into ``blocks`` contiguous ranges."""
    return n_items * b // blocks, n_items * (b + 1) // blocks


@jit()
def _forward_planes(xp, w, bias, y, sh, sw, dh, dw, lo, hi, acc):
    """y for planes q = n·O + o in [lo, hi); ``acc`` holds at least (Ho − 1)·Wp + Wo entries."""
    n_out, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    m = n_out // xp.shape[1]
    hp, wp = xp.shape[2], xp.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    flat = sh == 1 and sw == 1
    run = (out_h - 1) * wp + out_w
    for q in range(lo, hi):
        n, o = q // n_out, q % n_out
        c = o // m
        b = bias[o]
        if flat:
            src = xp[n, c].reshape(hp * wp)
            for i in range(run):
                acc[i] = b
            for jh in range(kh):
                for jw in range(kw):
                    wt = w[o, jh, jw]
                    off = max(jh * dh * wp + jw * dw, 0)
                    for i in range(run):
                        acc[i] += wt * src[i + off]
            for i in range(out_h):
                row = y[n, o, i]
                base = max(i * wp, 0)
                for k in range(out_w):
                    row[k] = acc[base + k]
        else:
            for i in range(out_h):
                row = y[n, o, i]
                for k in range(out_w):
                    row[k] = b
                for jh in range(kh):
                    src = xp[n, c, max(i * sh + jh * dh, 0)]
                    for jw in range(kw):
                        wt = w[o, jh, jw]
                        off = max(jw * dw, 0)
                        for k in range(out_w):
                            row[k] += wt * src[max(k * sw, 0) + off]


@jit()
def depthwise_forward(xp, w, bias, y, sh, sw, dh, dw):
    """y (N, O, Ho, Wo) from the padded input xp (N, C, Hp, Wp), weights w (O, kh, kw) and
    bias (O,) (pass zeros for none). Returns ``y``."""
    acc = np.empty((y.shape[2] - 1) * xp.shape[3] + y.shape[3], dtype=y.dtype)
    _forward_planes(xp, w, bias, y, sh, sw, dh, dw, 0, y.shape[0] * y.shape[1], acc)
    return y


@jit(parallel=True)
def depthwise_forward_parallel(xp, w, bias, y, sh, sw, dh, dw, blocks):
    """:func:`depthwise_forward` with the (sample, channel) planes in ``blocks`` ranges run by
    a ``prange``."""
    planes = y.shape[0] * y.shape[1]
    for b in prange(blocks):
        lo, hi = _block(planes, blocks, b)
        acc = np.empty((y.shape[2] - 1) * xp.shape[3] + y.shape[3], dtype=y.dtype)
        _forward_planes(xp, w, bias, y, sh, sw, dh, dw, lo, hi, acc)
    return y


@jit()
def _input_planes(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, lo, hi, dxp, dyp):
    """∂L/∂x for planes q = n·C + c in [lo, hi): the scatter-add onto the padded plane dxp
    (Hp·Wp entries), whose interior is then copied into dx. With stride 1, ``dyp`` (at least
    (Ho − 1)·Wp + Wo entries, zero past each row's end) holds δ with the row pitch Wp."""
    n_chan, h, wd = dx.shape[1], dx.shape[2], dx.shape[3]
    n_out, out_h, out_w = dy.shape[1], dy.shape[2], dy.shape[3]
    m = n_out // n_chan
    kh, kw = w.shape[1], w.shape[2]
    flat = sh == 1 and sw == 1
    run = (out_h - 1) * wp + out_w
    for q in range(lo, hi):
        n, c = q // n_chan, q % n_chan
        for i in range(hp * wp):
            dxp[i] = 0
        for o in range(c * m, (c + 1) * m):
            if flat:
                for i in range(out_h):
                    row = dy[n, o, i]
                    base = max(i * wp, 0)
                    for k in range(out_w):
                        dyp[base + k] = row[k]
                for jh in range(kh):
                    for jw in range(kw):
                        wt = w[o, jh, jw]
                        off = max(jh * dh * wp + jw * dw, 0)
                        for i in range(run):
                            dxp[i + off] += wt * dyp[i]
            else:
                for i in range(out_h):
                    row = dy[n, o, i]
                    for jh in range(kh):
                        base = max((i * sh + jh * dh) * wp, 0)
                        for jw in range(kw):
                            wt = w[o, jh, jw]
                            off = base + max(jw * dw, 0)
                            for k in range(out_w):
                                dxp[off + max(k * sw, 0)] += wt * row[k]
        for i in range(h):
            row = dx[n, c, i]
            base = max((i + pad_h) * wp + pad_w, 0)
            for k in range(wd):
                row[k] = dxp[base + k]


@jit()
def depthwise_backward_input(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw):
    """∂L/∂x (N, C, H, W) from δ (N, O, Ho, Wo) and w (O, kh, kw), for an input padded by
    (pad_h, pad_w) before its rows and columns to (Hp, Wp). Positions no window reads get 0.
    Returns ``dx``."""
    dxp = np.empty(hp * wp, dtype=dx.dtype)
    dyp = np.zeros((dy.shape[2] - 1) * wp + dy.shape[3], dtype=dx.dtype)
    _input_planes(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, 0, dx.shape[0] * dx.shape[1],
                  dxp, dyp)
    return dx


@jit(parallel=True)
def depthwise_backward_input_parallel(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, blocks):
    """:func:`depthwise_backward_input` with the (sample, channel) planes in ``blocks`` ranges
    run by a ``prange``."""
    planes = dx.shape[0] * dx.shape[1]
    for b in prange(blocks):
        lo, hi = _block(planes, blocks, b)
        dxp = np.empty(hp * wp, dtype=dx.dtype)
        dyp = np.zeros((dy.shape[2] - 1) * wp + dy.shape[3], dtype=dx.dtype)
        _input_planes(dy, w, dx, pad_h, pad_w, hp, wp, sh, sw, dh, dw, lo, hi, dxp, dyp)
    return dx


@jit()
def _weight_channels(xp, dy, gw, gb, sh, sw, dh, dw, lo, hi, acc, accb, dyp):
    """∂L/∂w and ∂L/∂b for output channels [lo, hi), over the whole batch. ``acc`` (taps, R)
    and ``accb`` (R,) hold the partial sums (R = (Ho − 1)·Wp + Wo with stride 1, else Wo);
    ``dyp`` as for :func:`_input_planes`."""
    n_batch, n_out, out_h, out_w = dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3]
    m = n_out // xp.shape[1]
    hp, wp = xp.shape[2], xp.shape[3]
    kh, kw = gw.shape[1], gw.shape[2]
    flat = sh == 1 and sw == 1
    width = acc.shape[1]
    for o in range(lo, hi):
        c = o // m
        for t in range(kh * kw):
            for i in range(width):
                acc[t, i] = 0
        for i in range(width):
            accb[i] = 0
        for n in range(n_batch):
            if flat:
                for i in range(out_h):
                    row = dy[n, o, i]
                    base = max(i * wp, 0)
                    for k in range(out_w):
                        dyp[base + k] = row[k]
                src = xp[n, c].reshape(hp * wp)
                for jh in range(kh):
                    for jw in range(kw):
                        a = acc[jh * kw + jw]
                        off = max(jh * dh * wp + jw * dw, 0)
                        for i in range(width):
                            a[i] += dyp[i] * src[i + off]
                for i in range(width):
                    accb[i] += dyp[i]
            else:
                for i in range(out_h):
                    row = dy[n, o, i]
                    for jh in range(kh):
                        src = xp[n, c, max(i * sh + jh * dh, 0)]
                        for jw in range(kw):
                            a = acc[jh * kw + jw]
                            off = max(jw * dw, 0)
                            for k in range(out_w):
                                a[k] += row[k] * src[max(k * sw, 0) + off]
                    for k in range(out_w):
                        accb[k] += row[k]
        for jh in range(kh):
            for jw in range(kw):
                a = acc[jh * kw + jw]
                s = 0.0
                for i in range(width):
                    s += a[i]
                gw[o, jh, jw] = s
        s = 0.0
        for i in range(width):
            s += accb[i]
        gb[o] = s


@jit()
def _weight_width(out_h, out_w, wp, sh, sw):
    """The length of the partial-sum rows of :func:`_weight_channels`."""
    return (out_h - 1) * wp + out_w if sh == 1 and sw == 1 else out_w


@jit()
def depthwise_backward_weight(xp, dy, gw, gb, sh, sw, dh, dw):
    """Set gw (O, kh, kw) to ∂L/∂w and gb (O,) to ∂L/∂b from the padded input xp
    (N, C, Hp, Wp) and δ (N, O, Ho, Wo). Returns ``gw``."""
    width = _weight_width(dy.shape[2], dy.shape[3], xp.shape[3], sh, sw)
    acc = np.empty((gw.shape[1] * gw.shape[2], width), dtype=gw.dtype)
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
        acc = np.empty((gw.shape[1] * gw.shape[2], width), dtype=gw.dtype)
        accb = np.empty(width, dtype=gw.dtype)
        dyp = np.zeros((dy.shape[2] - 1) * xp.shape[3] + dy.shape[3], dtype=gw.dtype)
        _weight_channels(xp, dy, gw, gb, sh, sw, dh, dw, lo, hi, acc, accb, dyp)
    return gw
