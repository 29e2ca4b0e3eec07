"""Winograd F(4×4, 3×3) kernels: the input and output transforms of a 3×3, stride-1 convolution.

For one 6×6 tile d of the padded input and a 3×3 filter g, the 4×4 block of the correlation
y[i, j] = Σ_ab g[a, b]·d[i + a, j + b] is (Lavin & Gray, "Fast algorithms for convolutional
neural networks", 2016, the minimal-filtering algorithm at the points 0, ±1, ±2, ∞)

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,

with Bᵀ (6×6), G (6×3) and Aᵀ (4×6) below. Over channels the elementwise product becomes, for
each of the 36 positions ξ of the 6×6 transform domain, one matrix product
M[ξ] (O, T) = U[ξ] (O, C) @ V[ξ] (C, T) over the T tiles, with U = G g Gᵀ per (o, c) and
V = Bᵀ d B per (c, tile). That is 36 small GEMMs with 36·O·C·T multiply-adds instead of
9·16·O·C·T for the direct product: 4× fewer. The layer (layers/conv.py) does U and the GEMMs;
these kernels do V and the output Aᵀ M A, a few samples (or a band of tile rows of one large
sample) at a time so that V and M stay in cache.

Tiles: the output (H_out, W_out) is covered by ⌈H_out/4⌉ × ⌈W_out/4⌉ tiles of 4×4; tile (th, tw)
reads the padded input rows 4·th … 4·th + 5 and columns 4·tw … 4·tw + 5, so the caller pads the
input to (4·⌈H_out/4⌉ + 2, 4·⌈W_out/4⌉ + 2) with zeros, and the output transform writes full
4×4 blocks into an array of that tile-rounded size (the caller crops it when H_out or W_out is not
a multiple of 4). Tile t = th·tiles_w + tw.

Rounding: the transforms add and scale by up to 8 and 1/24, so float32 results differ from the
direct sum by a few times its rounding error (measured and tested in tests/test_winograd.py);
float64 agrees to ~1e-15 relative. The constants are passed as an array of the data's dtype
because numba would evaluate ``4 * x`` for a float32 x in float64 (half the vector lanes).
"""

from __future__ import annotations

import numpy as np

from .config import jit

#: Bᵀ, G and Aᵀ of F(4×4, 3×3); the kernels below hard-code Bᵀ and Aᵀ (tests compare).
B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)


def constants(dtype) -> np.ndarray:
    """The scalars 2, 4, 5, 8 of the transforms, in the data's dtype (see the module doc)."""
    return np.array([2, 4, 5, 8], dtype=dtype)


#: G ⊗ G (36, 9): (G g Gᵀ)[a, b] = Σ_ij G[a, i]·G[b, j]·g[i, j], i.e. row 6a + b, column 3i + j.
_G_KRON_G = np.kron(G, G)


def filter_transform(w: np.ndarray, dtype) -> np.ndarray:
    """U[ξ, o, c] = (G w[o, c] Gᵀ)[ξ] for weights (O, C, 3, 3): shape (36, O, C), computed in
    float64 and cast to ``dtype``. One product (G ⊗ G) (36, 9) @ w (9, O·C) instead of O·C tiny
    ones: 1.4 ms instead of 7.0 for 128 × 128 channels."""
    o, c = w.shape[:2]
    taps = w.reshape(o * c, 9).astype(np.float64).T                         # (9, O·C)
    return (_G_KRON_G @ taps).reshape(36, o, c).astype(dtype)


@jit(nogil=True, error_model="numpy")
def input_transform(xp, n, th_lo, th_hi, v, first, k, t):
    """v[c, ξ, first + t] = (Bᵀ d B)[ξ] for every channel c and tile t = (th − th_lo)·tiles_w + tw
    in the tile rows th_lo ≤ th < th_hi of sample n of the padded input xp (N, C, 4·tiles_h + 2,
    4·tiles_w + 2); v is (C, 36, ≥ first + (th_hi − th_lo)·tiles_w), so that several samples (or
    bands of tile rows) can share one product. k = constants(); t is scratch of shape
    (6, 4·tiles_w + 2)."""
    two, four, five = k[0], k[1], k[2]
    width = xp.shape[3]
    tiles_w = (width - 2) // 4
    for c in range(xp.shape[1]):
        plane, vc = xp[n, c], v[c]
        for th in range(th_lo, th_hi):
            r0, r1, r2 = plane[4 * th], plane[4 * th + 1], plane[4 * th + 2]
            r3, r4, r5 = plane[4 * th + 3], plane[4 * th + 4], plane[4 * th + 5]
            t0, t1, t2, t3, t4, t5 = t[0], t[1], t[2], t[3], t[4], t[5]
            for j in range(width):             # Bᵀ along the rows of the tile band
                t0[j], t1[j], t2[j], t3[j], t4[j], t5[j] = _b_t(
                    r0[j], r1[j], r2[j], r3[j], r4[j], r5[j], two, four, five)
            lo = first + (th - th_lo) * tiles_w
            for row in range(6):               # then B along the columns of each tile
                _columns(t[row], vc[6 * row, lo:lo + tiles_w], vc[6 * row + 1, lo:lo + tiles_w],
                         vc[6 * row + 2, lo:lo + tiles_w], vc[6 * row + 3, lo:lo + tiles_w],
                         vc[6 * row + 4, lo:lo + tiles_w], vc[6 * row + 5, lo:lo + tiles_w],
                         two, four, five)


@jit(nogil=True, error_model="numpy", inline=True)
def _columns(src, v0, v1, v2, v3, v4, v5, two, four, five):
    """v_l[tw] = (Bᵀ src[4·tw : 4·tw + 6])[l] for every tile tw of one transformed row.
    Inlined into input_transform: as a call (six array arguments, six times per tile row) it
    took 3.5× the time of the whole transform of an 8×8 image with 128 channels."""
    for tw in range(v0.shape[0]):
        j = 4 * tw
        v0[tw], v1[tw], v2[tw], v3[tw], v4[tw], v5[tw] = _b_t(
            src[j], src[j + 1], src[j + 2], src[j + 3], src[j + 4], src[j + 5], two, four, five)


@jit(nogil=True, error_model="numpy")
def _b_t(d0, d1, d2, d3, d4, d5, two, four, five):
    """Bᵀ d for one 6-vector d (a row or a column of a tile)."""
    return (four * d0 - five * d2 + d4, d3 + d4 - four * (d1 + d2), four * (d1 - d2) + d4 - d3,
            two * (d3 - d1) + d4 - d2, two * (d1 - d3) + d4 - d2, four * d1 - five * d3 + d5)


@jit(nogil=True, error_model="numpy")
def output_transform(m, first, th_lo, th_hi, bias, y, row0, k, s):
    """y[o, 4·(th − row0) + i, 4·tw + j] = (Aᵀ m[o, :, first + t] A)[i, j] + bias[o] for the tiles
    t = (th − th_lo)·tiles_w + tw, th_lo ≤ th < th_hi, of the product m (O, 36, ≥ first + tiles);
    y is (O, ≥ 4·(th_hi − row0), 4·tiles_w): the sample's whole output (row0 = 0) or a band of it
    (row0 = th_lo); those rows are written in full. k = constants(); s is scratch of shape
    (24, tiles_w)."""
    two, four, eight = k[0], k[1], k[3]
    tiles_w = y.shape[2] // 4
    for o in range(y.shape[0]):
        b, mo = bias[o], m[o]
        for th in range(th_lo, th_hi):
            lo = first + (th - th_lo) * tiles_w
            for col in range(6):               # Aᵀ over the rows of the transform domain
                m0, m1, m2 = mo[col, lo:lo + tiles_w], mo[6 + col, lo:lo + tiles_w], \
                    mo[12 + col, lo:lo + tiles_w]
                m3, m4, m5 = mo[18 + col, lo:lo + tiles_w], mo[24 + col, lo:lo + tiles_w], \
                    mo[30 + col, lo:lo + tiles_w]
                s0, s1, s2, s3 = s[col], s[6 + col], s[12 + col], s[18 + col]
                for tw in range(tiles_w):
                    s0[tw], s1[tw], s2[tw], s3[tw] = _a_t(
                        m0[tw], m1[tw], m2[tw], m3[tw], m4[tw], m5[tw], two, four, eight)
            for i in range(4):                 # then A along the columns, plus the bias
                row = y[o, 4 * (th - row0) + i]
                c0, c1, c2 = s[6 * i], s[6 * i + 1], s[6 * i + 2]
                c3, c4, c5 = s[6 * i + 3], s[6 * i + 4], s[6 * i + 5]
                for tw in range(tiles_w):
                    y0, y1, y2, y3 = _a_t(c0[tw], c1[tw], c2[tw], c3[tw], c4[tw], c5[tw],
                                          two, four, eight)
                    j = 4 * tw
                    row[j], row[j + 1], row[j + 2], row[j + 3] = y0 + b, y1 + b, y2 + b, y3 + b


@jit(nogil=True, error_model="numpy")
def _a_t(m0, m1, m2, m3, m4, m5, two, four, eight):
    """Aᵀ m for one 6-vector m (a column, then a row of the transform domain)."""
    p12, d12, p34, d34 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + p12 + p34, d12 + two * d34, p12 + four * p34, d12 + eight * d34 + m5


@jit(nogil=True, error_model="numpy")
def unsafe_tiles(xp, n, th_lo, th_hi, out_h, out_w, ratio, bad, a):
    """Mark the tiles of tile rows th_lo ≤ th < th_hi of sample n of xp (N, C, 4·tiles_h + 2,
    4·tiles_w + 2) whose outputs Winograd would not compute within its error bound:
    bad[n, th, tw] = True unless every value of the tile's 6×6×C window is finite and

        max over the window of a  ≤  ratio · min over the tile's outputs q of (max of a over q's
                                                                                3×3 field),

    with a(p) = max_c |xp[n, c, p]| (outputs beyond (out_h, out_w), the tile rounding, do not
    count). Returns how many tiles it marked. ``a`` is scratch of shape (≥ 4·(th_hi − th_lo) + 2,
    4·tiles_w + 2)."""
    width = xp.shape[3]
    tiles_w = (width - 2) // 4
    rows = 4 * (th_hi - th_lo) + 2
    r0 = 4 * th_lo
    inf = np.inf
    for h in range(rows):
        for w in range(width):
            a[h, w] = 0.0
    for c in range(xp.shape[1]):
        for h in range(rows):
            src, dst = xp[n, c, r0 + h], a[h]
            for w in range(width):
                v = abs(src[w])
                if not v <= inf:               # NaN: counts as non-finite
                    v = inf
                if v > dst[w]:
                    dst[w] = v
    count = 0
    for th in range(th_lo, th_hi):
        top = 4 * (th - th_lo)
        for tw in range(tiles_w):
            left = 4 * tw
            big = 0.0
            for i in range(6):
                for j in range(6):
                    big = max(big, a[top + i, left + j])
            small = inf
            for i in range(min(4, out_h - 4 * th)):
                for j in range(min(4, out_w - left)):
                    field = 0.0
                    for u in range(3):
                        for v in range(3):
                            field = max(field, a[top + i + u, left + j + v])
                    small = min(small, field)
            unsafe = big == inf or big > ratio * small
            bad[n, th, tw] = unsafe
            count += unsafe
    return count


@jit(nogil=True, error_model="numpy")
def direct_tile(xp, n, th, tw, w, bias, y, row0):
    """The 4×4 block of tile (th, tw) of sample n computed directly, as im2col would (float64
    sums of the float products): y[o, 4·(th − row0) + i, 4·tw + j] = bias[o] +
    Σ_c Σ_ab w[o, c, a, b]·xp[n, c, 4·th + i + a, 4·tw + j + b], for the rows and columns y has.
    w is (O, C, 3, 3) in xp's dtype; y is (O, rows, cols)."""
    top, left = 4 * th, 4 * tw
    for o in range(w.shape[0]):
        for i in range(min(4, y.shape[1] - 4 * (th - row0))):
            out = y[o, 4 * (th - row0) + i]
            for j in range(min(4, y.shape[2] - left)):
                s = 0.0
                for c in range(w.shape[1]):
                    for u in range(3):
                        for v in range(3):
                            s += w[o, c, u, v] * xp[n, c, top + i + u, left + j + v]
                out[left + j] = s + bias[o]
