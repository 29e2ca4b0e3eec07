"""Pooling kernels: max and average pooling over 3 spatial axes.

One N-d implementation: every array is viewed as (B, D, H, W) with B = N·C planes; 1-D and 2-D
layers reshape to 3-D with singleton leading spatial axes (kernel 1, stride 1, no padding on
them). Per spatial axis, output position o reads input positions o·s − p + j·d for taps
j = 0 … k − 1 (see :mod:`layerkit.geometry`); taps outside the input are padding.

- Max pooling treats padding as −∞: a padded tap is never a candidate. The argmax is stored as
  the flat index (d·H + h)·W + w into the *unpadded* input plane (PyTorch's convention). Ties go
  to the first maximum in row-major window order (strict ``>``); NaN propagates (the first NaN
  in the window wins).
- Average pooling counts padding as zeros and always divides by the full window size
  k_d·k_h·k_w (``count_include_pad=True``, PyTorch's default). Sums accumulate in float64.

Arrays in, ints in, outputs preallocated by the caller; no validation here. Each kernel is the
loop over the B planes around a compiled function for one plane, in two builds: serial, and
parallel over the planes (which are independent, so the scatter-adds of the backward kernels
never race). The public function runs the parallel build only for work from
:data:`PARALLEL_MIN` window taps on with several numba threads: below that its launch costs more
than it saves, and a parallel build compiles 3-4x slower, which small inputs (the gradient
checker's) then never pay.

Fast path: the 2 × 2 window with stride 2, no padding and no dilation (by far the most common max
pooling) has its own pair of kernels, :func:`maxpool2x2_forward` / :func:`maxpool2x2_backward_input`,
on (B, H, W) planes. The window is unrolled (a loop of trip count 2 costs 3–4× here, and so do
the bounds checks of the general kernel), the argmax is kept compactly as the tap's position in
the window (0 … 3, one byte, ``uint8``) instead of an int64 plane index, and the backward writes
every element of dx itself (the routed gradient or 0), so the caller need not zero dx first.
"""

from numba import prange

from .config import jit, parallel_if

#: Window taps (output elements × taps per window) from which the parallel builds run.
PARALLEL_MIN = 1 << 17


@jit()
def _maxpool_forward_plane(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, b):
    """Plane b of :func:`maxpool_forward`."""
    _, D, H, W = x.shape
    Do, Ho, Wo = y.shape[1], y.shape[2], y.shape[3]
    for od in range(Do):
        d0 = od * sd - pd
        for oh in range(Ho):
            h0 = oh * sh - ph
            for ow in range(Wo):
                w0 = ow * sw - pw
                best = x[b, 0, 0, 0]
                best_i = -1
                for jd in range(kd):
                    d = d0 + jd * dd
                    if d < 0 or d >= D:
                        continue
                    for jh in range(kh):
                        h = h0 + jh * dh
                        if h < 0 or h >= H:
                            continue
                        for jw in range(kw):
                            w = w0 + jw * dw
                            if w < 0 or w >= W:
                                continue
                            v = x[b, d, h, w]
                            # strict '>': the first maximum in row-major window order wins
                            if best_i < 0 or v > best or (v != v and best == best):
                                best = v
                                best_i = (d * H + h) * W + w
                y[b, od, oh, ow] = best
                argmax[b, od, oh, ow] = best_i


@jit()
def _maxpool_forward_serial(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw):
    for b in range(x.shape[0]):
        _maxpool_forward_plane(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, b)


@jit(parallel=True)
def _maxpool_forward_parallel(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw):
    for b in prange(x.shape[0]):
        _maxpool_forward_plane(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw, b)


def maxpool_forward(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw):
    """y[b, o] = max over the window's in-range taps of x[b, ·]; argmax[b, o] = its flat index.

    x: (B, D, H, W); y: (B, Do, Ho, Wo) of x's dtype; argmax: (B, Do, Ho, Wo) int64.
    Every window must contain at least one in-range tap (the layer validates this).
    """
    kernel = parallel_if(y.size * kd * kh * kw >= PARALLEL_MIN,
                         _maxpool_forward_parallel, _maxpool_forward_serial)
    kernel(x, y, argmax, kd, kh, kw, sd, sh, sw, dd, dh, dw, pd, ph, pw)


@jit()
def _maxpool_backward_input_plane(dy, argmax, dx, b):
    """Plane b of :func:`maxpool_backward_input`."""
    _, Q = dy.shape
    for q in range(Q):
        dx[b, argmax[b, q]] += dy[b, q]


@jit()
def _maxpool_backward_input_serial(dy, argmax, dx):
    for b in range(dy.shape[0]):
        _maxpool_backward_input_plane(dy, argmax, dx, b)


@jit(parallel=True)
def _maxpool_backward_input_parallel(dy, argmax, dx):
    for b in prange(dy.shape[0]):
        _maxpool_backward_input_plane(dy, argmax, dx, b)


def maxpool_backward_input(dy, argmax, dx):
    """dx[b, argmax[b, q]] += dy[b, q]: route each upstream gradient to its window's maximum.

    dy: (B, Q); argmax: (B, Q) flat indices into a plane; dx: (B, P), zeroed by the caller.
    """
    kernel = parallel_if(dy.size >= PARALLEL_MIN,
                         _maxpool_backward_input_parallel, _maxpool_backward_input_serial)
    kernel(dy, argmax, dx)


@jit()
def _avgpool_forward_plane(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw, b):
    """Plane b of :func:`avgpool_forward`."""
    _, D, H, W = x.shape
    Do, Ho, Wo = y.shape[1], y.shape[2], y.shape[3]
    inv = 1.0 / (kd * kh * kw)
    for od in range(Do):
        d0 = od * sd - pd
        for oh in range(Ho):
            h0 = oh * sh - ph
            for ow in range(Wo):
                w0 = ow * sw - pw
                s = 0.0
                for jd in range(kd):
                    d = d0 + jd
                    if d < 0 or d >= D:
                        continue
                    for jh in range(kh):
                        h = h0 + jh
                        if h < 0 or h >= H:
                            continue
                        for jw in range(kw):
                            w = w0 + jw
                            if w < 0 or w >= W:
                                continue
                            s += x[b, d, h, w]
                y[b, od, oh, ow] = s * inv


@jit()
def _avgpool_forward_serial(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    for b in range(x.shape[0]):
        _avgpool_forward_plane(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw, b)


@jit(parallel=True)
def _avgpool_forward_parallel(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    for b in prange(x.shape[0]):
        _avgpool_forward_plane(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw, b)


def avgpool_forward(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    """y[b, o] = (1 / (k_d·k_h·k_w)) Σ_taps x_pad[b, ·]  (zero padding, count_include_pad=True).

    x: (B, D, H, W); y: (B, Do, Ho, Wo) of x's dtype.
    """
    kernel = parallel_if(y.size * kd * kh * kw >= PARALLEL_MIN,
                         _avgpool_forward_parallel, _avgpool_forward_serial)
    kernel(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw)


@jit()
def _avgpool_backward_input_plane(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw, b):
    """Plane b of :func:`avgpool_backward_input`."""
    _, D, H, W = dx.shape
    Do, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    inv = 1.0 / (kd * kh * kw)
    for od in range(Do):
        d0 = od * sd - pd
        for oh in range(Ho):
            h0 = oh * sh - ph
            for ow in range(Wo):
                w0 = ow * sw - pw
                g = dy[b, od, oh, ow] * inv
                for jd in range(kd):
                    d = d0 + jd
                    if d < 0 or d >= D:
                        continue
                    for jh in range(kh):
                        h = h0 + jh
                        if h < 0 or h >= H:
                            continue
                        for jw in range(kw):
                            w = w0 + jw
                            if w < 0 or w >= W:
                                continue
                            dx[b, d, h, w] += g


@jit()
def _avgpool_backward_input_serial(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    for b in range(dx.shape[0]):
        _avgpool_backward_input_plane(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw, b)


@jit(parallel=True)
def _avgpool_backward_input_parallel(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    for b in prange(dx.shape[0]):
        _avgpool_backward_input_plane(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw, b)


def avgpool_backward_input(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    """dx[b, i] += Σ over windows containing i of dy[b, o] / (k_d·k_h·k_w).

    dy: (B, Do, Ho, Wo); dx: (B, D, H, W), zeroed by the caller. Padded taps receive nothing.
    """
    kernel = parallel_if(dy.size * kd * kh * kw >= PARALLEL_MIN,
                         _avgpool_backward_input_parallel, _avgpool_backward_input_serial)
    kernel(dy, dx, kd, kh, kw, sd, sh, sw, pd, ph, pw)


@jit()
def _maxpool2x2_forward_plane(x, y, code, b):
    """Plane b of :func:`maxpool2x2_forward`."""
    Ho, Wo = y.shape[1], y.shape[2]
    for i in range(Ho):
        h = 2 * i
        for j in range(Wo):
            w = 2 * j
            best = x[b, h, w]
            t = 0
            v = x[b, h, w + 1]
            if v > best or (v != v and best == best):
                best = v
                t = 1
            v = x[b, h + 1, w]
            if v > best or (v != v and best == best):
                best = v
                t = 2
            v = x[b, h + 1, w + 1]
            if v > best or (v != v and best == best):
                best = v
                t = 3
            y[b, i, j] = best
            code[b, i, j] = t


@jit()
def _maxpool2x2_forward_serial(x, y, code):
    for b in range(x.shape[0]):
        _maxpool2x2_forward_plane(x, y, code, b)


@jit(parallel=True)
def _maxpool2x2_forward_parallel(x, y, code):
    for b in prange(x.shape[0]):
        _maxpool2x2_forward_plane(x, y, code, b)


def maxpool2x2_forward(x, y, code):
    """2 × 2 windows, stride 2, no padding: y[b, i, j] = max of x[b, 2i:2i+2, 2j:2j+2].

    x: (B, H, W); y: (B, H // 2, W // 2) of x's dtype; code: (B, H // 2, W // 2) uint8, the
    winning tap t = 2·row + column within the window (row-major; ties to the first, NaN wins as in
    :func:`maxpool_forward`). A trailing odd row or column of x is never read.
    """
    kernel = parallel_if(x.size >= PARALLEL_MIN,
                         _maxpool2x2_forward_parallel, _maxpool2x2_forward_serial)
    kernel(x, y, code)


@jit()
def _maxpool2x2_backward_input_plane(dy, code, dx, b):
    """Plane b of :func:`maxpool2x2_backward_input`."""
    _, H, W = dx.shape
    Ho, Wo = dy.shape[1], dy.shape[2]
    for i in range(Ho):
        for r in range(2):                   # the window's top (r = 0) and bottom row
            h = 2 * i + r
            for w in range(2 * Wo):
                j = w >> 1                   # w // 2 (w >= 0)
                g = dy[b, i, j]              # loaded unconditionally: the select below
                t = code[b, i, j]            # then needs no branch (3–4× faster)
                dx[b, h, w] = g if t == 2 * r + (w & 1) else 0
    # a trailing odd column or row is in no window
    if W > 2 * Wo:
        for h in range(2 * Ho):
            dx[b, h, W - 1] = 0.0
    for h in range(2 * Ho, H):
        for w in range(W):
            dx[b, h, w] = 0.0


@jit()
def _maxpool2x2_backward_input_serial(dy, code, dx):
    for b in range(dx.shape[0]):
        _maxpool2x2_backward_input_plane(dy, code, dx, b)


@jit(parallel=True)
def _maxpool2x2_backward_input_parallel(dy, code, dx):
    for b in prange(dx.shape[0]):
        _maxpool2x2_backward_input_plane(dy, code, dx, b)


def maxpool2x2_backward_input(dy, code, dx):
    """dx[b, 2i + t // 2, 2j + t % 2] = dy[b, i, j] for t = code[b, i, j]; every other dx = 0.

    dy, code: (B, Ho, Wo); dx: (B, H, W) with Ho = H // 2, Wo = W // 2, written completely
    (windows do not overlap, so each element of dx receives at most one gradient). dx is written
    row by row, in memory order (3× faster than writing each window's 2 × 2 block in turn).
    """
    kernel = parallel_if(dx.size >= PARALLEL_MIN,
                         _maxpool2x2_backward_input_parallel, _maxpool2x2_backward_input_serial)
    kernel(dy, code, dx)
