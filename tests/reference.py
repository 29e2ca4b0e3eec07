"""Slow, plain-loop reference implementations, independent of layerkit's vectorised code."""

import math

import numpy as np


def linear(x, w, b):
    """y[..., o] = Σ_d x[..., d] w[o, d] + b[o], one output at a time."""
    x2 = x.reshape(-1, x.shape[-1])
    y = np.zeros((x2.shape[0], w.shape[0]))
    for m in range(x2.shape[0]):
        for o in range(w.shape[0]):
            s = 0.0 if b is None else float(b[o])
            for d in range(w.shape[1]):
                s += float(x2[m, d]) * float(w[o, d])
            y[m, o] = s
    return y.reshape(x.shape[:-1] + (w.shape[0],))


def elementwise(f, x):
    """Apply a scalar function f to every element with math, not numpy."""
    return np.array([f(float(v)) for v in x.ravel()]).reshape(x.shape)


def sigmoid_scalar(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def softmax_rows(x):
    """Softmax of every row of a 2-D array, with math.exp and the max subtracted."""
    out = np.zeros(x.shape)
    for i, row in enumerate(x):
        m = max(float(v) for v in row)
        e = [math.exp(float(v) - m) for v in row]
        s = sum(e)
        out[i] = [v / s for v in e]
    return out


def along_axis(f_rows, x, axis):
    """Apply a function of rows (2-D in, 2-D out) to every 1-D slice of x along ``axis``."""
    moved = np.moveaxis(x, axis, -1)
    out = f_rows(moved.reshape(-1, moved.shape[-1])).reshape(moved.shape)
    return np.moveaxis(out, -1, axis)


def conv_nd(x, w, b, stride, padding, dilation, groups=1):
    """N-d cross-correlation with explicit loops over samples, output channels, output positions,
    input channels and taps: y[n, o, p] = b[o] + Σ_c Σ_j w[o, c, j] x_pad[n, c, p·s + j·d].

    ``stride`` and ``dilation`` are tuples, ``padding`` is ((lo, hi), ...) per spatial axis.
    With ``groups`` = G, w is (O, C/G, *k) and output o reads input channels
    g·C/G + c (c < C/G) of its group g = o // (O/G).
    """
    import itertools

    n_batch, n_chan = x.shape[0], w.shape[1]
    n_out, kernel = w.shape[0], w.shape[2:]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    out = tuple((size - d * (k - 1) - 1) // s + 1
                for size, k, s, d in zip(xp.shape[2:], kernel, stride, dilation))
    y = np.zeros((n_batch, n_out) + out)
    for n in range(n_batch):
        for o in range(n_out):
            for p in itertools.product(*(range(m) for m in out)):
                acc = 0.0 if b is None else float(b[o])
                for c in range(n_chan):
                    for j in itertools.product(*(range(k) for k in kernel)):
                        i = tuple(pp * s + jj * d for pp, jj, s, d in zip(p, j, stride, dilation))
                        ci = (o // (n_out // groups)) * n_chan + c
                        acc += float(w[(o, c) + j]) * float(xp[(n, ci) + i])
                y[(n, o) + p] = acc
    return y


def conv_nd_grads(x, w, dy, stride, padding, dilation, groups=1):
    """The gradients of :func:`conv_nd` by explicit loops (float64): for every sample n, output
    channel o, output position p, input channel c of o's group and tap j, the product
    w[o, c, j] · x_pad[n, ci, p·s + j·d] contributes dy[n, o, p] · x_pad[...] to ∂L/∂w[o, c, j]
    and dy[n, o, p] · w[o, c, j] to ∂L/∂x_pad[n, ci, p·s + j·d]; ∂L/∂b[o] = Σ dy[n, o, ·].
    Returns (dx with the padding cut off, dw, db)."""
    import itertools

    n_batch, n_chan = x.shape[0], w.shape[1]
    n_out, kernel = w.shape[0], w.shape[2:]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    dxp, dw = np.zeros_like(xp), np.zeros(w.shape)
    db = np.zeros(n_out)
    for n in range(n_batch):
        for o in range(n_out):
            for p in itertools.product(*(range(m) for m in dy.shape[2:])):
                g = float(dy[(n, o) + p])
                db[o] += g
                for c in range(n_chan):
                    ci = (o // (n_out // groups)) * n_chan + c
                    for j in itertools.product(*(range(k) for k in kernel)):
                        i = tuple(pp * s + jj * d for pp, jj, s, d in zip(p, j, stride, dilation))
                        dw[(o, c) + j] += g * float(xp[(n, ci) + i])
                        dxp[(n, ci) + i] += g * float(w[(o, c) + j])
    inside = (slice(None), slice(None)) + tuple(slice(lo, lo + s) for (lo, _), s in
                                                zip(padding, x.shape[2:]))
    return dxp[inside], dw, db
