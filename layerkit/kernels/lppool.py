"""Power-average (LP) pooling kernels: y = (Σ_window x^p)^(1/p) over 3 spatial axes.

Arrays are viewed as (B, D, H, W) with B = N·C planes, as in :mod:`layerkit.kernels.pooling`;
output position o reads input positions o·s + j for taps j = 0 … k − 1 that lie inside the
input (a window may hang over the end, for ``ceil_mode``; its missing taps add nothing).

Stable form: with m = max_j |x_j| over the window's taps,

    y = m · (Σ_j (x_j / m)^p)^(1/p)          (y = 0 when m = 0),

so no power overflows or underflows before the root. x^p is the real power: for an integer p
a negative x keeps its sign when p is odd; the layer keeps non-integer p to x >= 0. A window
whose sum Σ x^p is negative has no real p-th root (p ≠ 1): y is set to 0 there and the window
is counted in ``negative[b]`` for the layer to report. Sums accumulate in float64.

Arrays in, numbers in, outputs preallocated by the caller; no validation here. As in
:mod:`layerkit.kernels.pooling`, each kernel is a loop over the B planes around a compiled
function for one plane, serial for small work and parallel over the planes (the scatter-adds of
the backward kernel never race) from :data:`PARALLEL_MIN` window taps on.
"""

from numba import prange

from .config import jit, parallel_if

#: Window taps (output elements × taps per window) from which the parallel builds run.
PARALLEL_MIN = 1 << 16


@jit(inline=True)
def window_of(q, out_shape, in_shape, kd, kh, kw, sd, sh, sw):
    """Output position q (flat over (Do, Ho, Wo)) as (od, oh, ow) and its taps' ranges inside
    the input: [d0, d1) × [h0, h1) × [w0, w1)."""
    Ho, Wo = out_shape[1], out_shape[2]
    od, oh, ow = q // (Ho * Wo), (q // Wo) % Ho, q % Wo
    d0, h0, w0 = od * sd, oh * sh, ow * sw
    return (od, oh, ow, d0, min(d0 + kd, in_shape[0]), h0, min(h0 + kh, in_shape[1]),
            w0, min(w0 + kw, in_shape[2]))


def lppool_forward(x, y, negative, kd, kh, kw, sd, sh, sw, p):
    """y[b, o] = (Σ_taps x[b, ·]^p)^(1/p) in the stable form above; negative[b] = the number
    of windows of plane b whose sum of powers is negative (y = 0 there).

    x: (B, D, H, W); y: (B, Do, Ho, Wo) of x's dtype; negative: (B,) int64.
    """
    kernel = parallel_if(y.size * kd * kh * kw >= PARALLEL_MIN,
                         _lppool_forward_parallel, _lppool_forward_serial)
    kernel(x, y, negative, kd, kh, kw, sd, sh, sw, p)


@jit()
def _lppool_forward_serial(x, y, negative, kd, kh, kw, sd, sh, sw, p):
    for b in range(x.shape[0]):
        _lppool_forward_plane(x, y, negative, kd, kh, kw, sd, sh, sw, p, b)


@jit(parallel=True)
def _lppool_forward_parallel(x, y, negative, kd, kh, kw, sd, sh, sw, p):
    for b in prange(x.shape[0]):
        _lppool_forward_plane(x, y, negative, kd, kh, kw, sd, sh, sw, p, b)


@jit()
def _lppool_forward_plane(x, y, negative, kd, kh, kw, sd, sh, sw, p, b):
    """Plane b of :func:`lppool_forward`."""
    out_shape, in_shape = y.shape[1:], x.shape[1:]
    bad = 0
    for q in range(out_shape[0] * out_shape[1] * out_shape[2]):
        od, oh, ow, d0, d1, h0, h1, w0, w1 = window_of(q, out_shape, in_shape,
                                                       kd, kh, kw, sd, sh, sw)
        m = 0.0
        for d in range(d0, d1):
            for h in range(h0, h1):
                for w in range(w0, w1):
                    m = max(m, abs(x[b, d, h, w]))
        out = 0.0
        if m > 0.0:
            s = 0.0
            for d in range(d0, d1):
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        r = x[b, d, h, w] / m
                        s += r * r if p == 2.0 else r ** p
            if p == 1.0:
                out = m * s
            elif s < 0.0:
                bad += 1
            else:
                out = m * s ** (1.0 / p)
        y[b, od, oh, ow] = out
    negative[b] = bad


def lppool_backward_input(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p):
    """dx[b, i] += Σ over windows o containing i of dy[b, o] · (x[b, i] / y[b, o])^(p − 1);
    windows with y = 0 add nothing when p > 1 (the gradient chosen at a zero sum), and every
    tap gets dy when p = 1 (y is then the plain sum).

    x, dx: (B, D, H, W), dx zeroed by the caller; y, dy: (B, Do, Ho, Wo).
    """
    kernel = parallel_if(y.size * kd * kh * kw >= PARALLEL_MIN,
                         _lppool_backward_input_parallel, _lppool_backward_input_serial)
    kernel(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p)


@jit()
def _lppool_backward_input_serial(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p):
    for b in range(x.shape[0]):
        _lppool_backward_input_plane(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p, b)


@jit(parallel=True)
def _lppool_backward_input_parallel(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p):
    for b in prange(x.shape[0]):
        _lppool_backward_input_plane(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p, b)


@jit()
def _lppool_backward_input_plane(x, y, dy, dx, kd, kh, kw, sd, sh, sw, p, b):
    """Plane b of :func:`lppool_backward_input`."""
    out_shape, in_shape = y.shape[1:], x.shape[1:]
    for q in range(out_shape[0] * out_shape[1] * out_shape[2]):
        od, oh, ow, d0, d1, h0, h1, w0, w1 = window_of(q, out_shape, in_shape,
                                                       kd, kh, kw, sd, sh, sw)
        g = dy[b, od, oh, ow] + 0.0          # float64
        out = y[b, od, oh, ow] + 0.0
        if p != 1.0 and out == 0.0:
            continue
        for d in range(d0, d1):
            for h in range(h0, h1):
                for w in range(w0, w1):
                    if p == 1.0:
                        dx[b, d, h, w] += g
                    elif p == 2.0:
                        dx[b, d, h, w] += g * (x[b, d, h, w] / out)
                    else:
                        dx[b, d, h, w] += g * (x[b, d, h, w] / out) ** (p - 1.0)
