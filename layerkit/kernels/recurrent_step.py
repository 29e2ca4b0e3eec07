"""One recurrent step for inference, fused: both small products and the gate math in one call.

For small batches (sampling, greedy decoding) one step of a recurrent layer is a few
matrix-vector products and a handful of elementwise operations; a numpy product per term and a
separate gate kernel pay a call each. These kernels compute, per sample n,

    pre_x = x_n W_ihᵀ + b,   pre_h = h_n W_hhᵀ   (G·H each, accumulated in the data's dtype)

with the weights passed transposed and contiguous (W_ihᵀ (D, G·H), W_hhᵀ (H, G·H)), so that
the products are axpy loops over contiguous rows (``acc[k] += w[d, k] · x[d]``): each output is
its own sum, computed in the order d = 0, 1, …, which vectorises without reassociating any sum
(no fastmath). Then the gate math of the layer's forward kernels (kernels/recurrent.py), the
same expressions in the same order, with tanh and σ from kernels/sigmoid_tanh.py:

- RNN:  h' = f(pre_x + pre_h), f = tanh or ReLU; ``b`` = b_ih + b_hh.
- LSTM: a = pre_x + pre_h; i, f, o = σ(a), g = tanh(a) (blocks i, f, g, o);
  c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'); ``b`` = b_ih + b_hh.
- GRU:  r = σ(a_r), z = σ(a_z) with a = pre_x + pre_h on those blocks; n = tanh(pre_x,n + r ⊙
  (pre_h,n + b_hn)); h' = (1 − z) ⊙ n + z ⊙ h; ``b`` = b_ih with b_hr, b_hz added.

No BLAS calls (see DESIGN: np.dot inside numba competes with numpy's BLAS); no cache is kept.
:func:`fused_step_pays` says when these kernels beat the numpy path of the layer.
"""

from __future__ import annotations

import numpy as np
from numba import config as numba_config

from .config import jit
from .sigmoid_tanh import sigmoid, tanh

#: Largest batch for which the fused kernels beat numpy's products + the gate kernel. The fused
#: cost grows linearly with the rows (each row is a pass of axpys over the weights), the numpy
#: path's has a fixed part; benchmarks/sampling.py measures both: the crossover lies near 8 rows
#: for the char-LSTM's LSTM (E = 64, H = 256) and the Seq2Seq decoder's (E = 32, H = 128).
FUSED_MAX_BATCH = 8


def fused_step_pays(n: int) -> bool:
    """True when a step of ``n`` rows should use the fused kernels: small batches, compiled
    kernels (interpreted, numpy's products are faster by far)."""
    return n <= FUSED_MAX_BATCH and not numba_config.DISABLE_JIT


@jit(error_model="numpy", nogil=True)
def _accumulate(v, w_t, acc):
    """acc += v W (rows n of v (N, K), W = w_t (K, G·H)), each acc[n, k] summed in the order
    k' = 0, 1, …; four weight rows per pass (the same sums, a quarter of the loads and stores
    of acc), each read once for all rows of the batch."""
    depth, gh = v.shape[1], w_t.shape[1]
    d = 0
    while d + 4 <= depth:
        w0, w1, w2, w3 = w_t[d], w_t[d + 1], w_t[d + 2], w_t[d + 3]
        for n in range(v.shape[0]):
            v0, v1, v2, v3 = v[n, d], v[n, d + 1], v[n, d + 2], v[n, d + 3]
            a = acc[n]
            for k in range(gh):
                a[k] = a[k] + w0[k] * v0 + w1[k] * v1 + w2[k] * v2 + w3[k] * v3
        d += 4
    while d < depth:
        w = w_t[d]
        for n in range(v.shape[0]):
            vd = v[n, d]
            a = acc[n]
            for k in range(gh):
                a[k] += w[k] * vd
        d += 1


@jit(error_model="numpy", nogil=True)
def _products(x, h, w_ih_t, w_hh_t, bias, acc_x, acc_h):
    """acc_x = x W_ihᵀ + bias, acc_h = h W_hhᵀ for all rows (axpy over contiguous weight rows)."""
    for n in range(acc_x.shape[0]):
        ax, ah = acc_x[n], acc_h[n]
        for k in range(acc_x.shape[1]):
            ax[k] = 0.0
            ah[k] = 0.0
    _accumulate(x, w_ih_t, acc_x)
    for n in range(acc_x.shape[0]):
        ax = acc_x[n]
        for k in range(acc_x.shape[1]):
            ax[k] += bias[k]
    _accumulate(h, w_hh_t, acc_h)


@jit(error_model="numpy", nogil=True)
def rnn_cell(x, h, w_ih_t, w_hh_t, bias, relu, h_out):
    """h_out = f(x W_ihᵀ + bias + h W_hhᵀ) for every row of x (N, D), h (N, H)."""
    hidden = h.shape[1]
    acc_x = np.empty((x.shape[0], hidden), dtype=h_out.dtype)
    acc_h = np.empty((x.shape[0], hidden), dtype=h_out.dtype)
    _products(x, h, w_ih_t, w_hh_t, bias, acc_x, acc_h)
    for n in range(x.shape[0]):
        out = h_out[n]
        for j in range(hidden):
            a = acc_x[n, j] + acc_h[n, j]
            if relu:
                out[j] = a if a > 0.0 else 0.0
            else:
                out[j] = tanh(a, out)


@jit(error_model="numpy", nogil=True)
def lstm_cell(x, h, c, w_ih_t, w_hh_t, bias, h_out, c_out):
    """(h_out, c_out) = one LSTM step from (h, c) (N, H) with input x (N, D); gates i, f, g, o."""
    H = h.shape[1]
    acc_x = np.empty((x.shape[0], 4 * H), dtype=h_out.dtype)
    acc_h = np.empty((x.shape[0], 4 * H), dtype=h_out.dtype)
    _products(x, h, w_ih_t, w_hh_t, bias, acc_x, acc_h)
    for n in range(x.shape[0]):
        ax, ah = acc_x[n], acc_h[n]
        a_i, a_f, a_g, a_o = ax[:H], ax[H:2 * H], ax[2 * H:3 * H], ax[3 * H:]
        r_i, r_f, r_g, r_o = ah[:H], ah[H:2 * H], ah[2 * H:3 * H], ah[3 * H:]
        cp, cn, hn = c[n], c_out[n], h_out[n]
        for j in range(H):
            i = sigmoid(a_i[j] + r_i[j], cn)
            f = sigmoid(a_f[j] + r_f[j], cn)
            g = tanh(a_g[j] + r_g[j], cn)
            o = sigmoid(a_o[j] + r_o[j], cn)
            a_o[j] = o                                 # rounded to the dtype, as forward's
            cn[j] = f * cp[j] + i * g
            hn[j] = tanh(cn[j], cn)                    # of the stored (rounded) c', rounded
            hn[j] = a_o[j] * hn[j]


@jit(error_model="numpy", nogil=True)
def gru_cell(x, h, w_ih_t, w_hh_t, bias, b_hn, h_out):
    """h_out = one GRU step from h (N, H) with input x (N, D); gates r, z, n (b_hn inside
    r ⊙ (·))."""
    H = h.shape[1]
    acc_x = np.empty((x.shape[0], 3 * H), dtype=h_out.dtype)
    acc_h = np.empty((x.shape[0], 3 * H), dtype=h_out.dtype)
    _products(x, h, w_ih_t, w_hh_t, bias, acc_x, acc_h)
    for n in range(x.shape[0]):
        a_r, a_z, a_n = acc_x[n, :H], acc_x[n, H:2 * H], acc_x[n, 2 * H:]
        r_r, r_z, r_n = acc_h[n, :H], acc_h[n, H:2 * H], acc_h[n, 2 * H:]
        hp, ho = h[n], h_out[n]
        for j in range(H):
            r = sigmoid(a_r[j] + r_r[j], ho)
            z = sigmoid(a_z[j] + r_z[j], ho)
            hn_j = r_n[j] + b_hn[j]
            nn = tanh(a_n[j] + r * hn_j, ho)
            ho[j] = (1.0 - z) * nn + z * hp[j]
