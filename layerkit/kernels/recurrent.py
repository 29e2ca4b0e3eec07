"""Per-time-step kernels of the recurrent layers: the fused elementwise gate math.

The layer does every matrix product with numpy (the input projection of all time steps at once,
and the recurrent product ``h_{t-1} W_hhᵀ`` once per step); these kernels do the elementwise
rest of one step over the whole batch in one pass: adding the recurrent term, the gate
nonlinearities, the state update, and each sample's own length (a step ``t ≥ lengths[n]`` leaves
sample n's state unchanged and gets no gradient).

tanh and σ come from kernels/tanh.py: a vectorisable rational tanh accurate to float32 for
float32 data, libm's for float64 (chosen from the dtype of the ``like`` array at compile time).
Each inner loop reads its inputs into locals, computes, then stores: reading back a value just
stored into another view of the same array kept LLVM from vectorising. The forward kernels are compiled with
``error_model="numpy"`` so that their inner loops vectorise (their only divisions are tanh's,
never by zero).

Each call handles the rows ``n_lo ≤ n < n_hi`` of the batch only: samples are independent
through the whole time loop, so the layer may run the loop for disjoint row blocks in parallel
threads (layerkit/threads.py). The kernels are compiled with ``nogil=True`` for that.

Layout, all C-contiguous, time-major slices of the layer's stacked caches:

- ``gates`` (N, G·H): the step's input projection W_ih x_t + biases, overwritten with the
  activated gates (i, f, g, o or r, z, n), which the layer keeps as its cache;
- ``hh`` (N, G·H): h_{t-1} W_hhᵀ (GRU: its n block without b_hn);
- states (N, H).

Backward kernels take the running ∂L/∂h (``dh``, in place) and produce the pre-activation
gradient ``delta`` (N, G·H) of step t; on exit ``dh`` holds only the part of ∂L/∂h_{t-1} that does
not pass through W_hh (the carried state of padded samples, z ⊙ ∂L/∂h for the GRU), the layer then
adds ``delta W_hh``. ``dy`` (T, N, H) is the time-major output gradient, read only when
``use_dy`` is true.

Each kernel loops over samples and, inside, over j along 1-D row views (``gates[n, k·H:(k+1)·H]``
for gate block k): indexing 2-D arrays at four offsets in the inner loop kept LLVM from
vectorising it (measured 2.3-3.5× slower per step at N = 64, H = 256; the same results bit for
bit).

No BLAS calls here (see DESIGN: np.dot inside numba competes with numpy's BLAS).
"""

from __future__ import annotations

from .config import jit
from .sigmoid_tanh import sigmoid, tanh


# -- shared ---------------------------------------------------------------------------------------
# Explicit loops rather than ``row[:] = other``: numba compiles slice assignment through its
# general broadcasting code, which made a step kernel take seconds to compile.

@jit(nogil=True)
def _copy(src, dst):
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@jit(nogil=True)
def _zero(dst):
    for j in range(dst.shape[0]):
        dst[j] = 0.0


# -- Elman RNN ------------------------------------------------------------------------------------

@jit(error_model="numpy", nogil=True)
def rnn_step_forward(pre, h_prev, h_out, t, lengths, relu, n_lo, n_hi):
    """h_t = f(pre + h_out), where ``h_out`` holds h_{t−1} W_hhᵀ on entry; padded samples keep
    h_{t−1}."""
    hidden = h_prev.shape[1]
    for n in range(n_lo, n_hi):
        out = h_out[n]
        if t >= lengths[n]:
            _copy(h_prev[n], out)
            continue
        a_n = pre[n]
        for j in range(hidden):
            a = a_n[j] + out[j]
            if relu:
                out[j] = a if a > 0.0 else 0.0
            else:
                out[j] = tanh(a, out)


@jit(nogil=True)
def rnn_step_backward(dh, dy, h_t, delta, t, lengths, relu, use_dy, n_lo, n_hi):
    """δ_t = (∂L/∂h_t) ⊙ f'(a_t); ``dh`` becomes the carry (∂L/∂h_t for padded samples, else 0)."""
    hidden = dh.shape[1]
    for n in range(n_lo, n_hi):
        dh_n, d_n = dh[n], delta[n]
        if t >= lengths[n]:
            _zero(d_n)                     # dh_n carries ∂L/∂h_t unchanged
            continue
        dy_n = dy[t, n] if use_dy else dh_n
        h_n = h_t[n]
        for j in range(hidden):
            g = dh_n[j]
            if use_dy:
                g += dy_n[j]
            if relu:
                d_n[j] = g if h_n[j] > 0.0 else 0.0
            else:
                d_n[j] = g * (1.0 - h_n[j] * h_n[j])
            dh_n[j] = 0.0


# -- LSTM -----------------------------------------------------------------------------------------

@jit(error_model="numpy", nogil=True)
def lstm_step_forward(gates, hh, c_prev, c_out, tc_out, h_prev, h_out, t, lengths, n_lo, n_hi):
    """a = gates + hh; i, f, o = σ(a), g = tanh(a) (written back to ``gates``);
    c_t = f ⊙ c_{t−1} + i ⊙ g, tanh(c_t) (``tc_out``, kept for backward), h_t = o ⊙ tanh(c_t).
    Padded samples keep h_{t−1} and c_{t−1} (their gates are never read)."""
    hidden = c_prev.shape[1]
    H = hidden
    for n in range(n_lo, n_hi):
        if t >= lengths[n]:
            _copy(c_prev[n], c_out[n])
            _zero(tc_out[n])
            _copy(h_prev[n], h_out[n])
            continue
        a_i, a_f, a_g, a_o = gates[n, :H], gates[n, H:2 * H], gates[n, 2 * H:3 * H], gates[n, 3 * H:]
        r_i, r_f, r_g, r_o = hh[n, :H], hh[n, H:2 * H], hh[n, 2 * H:3 * H], hh[n, 3 * H:]
        cp, c, tc, h = c_prev[n], c_out[n], tc_out[n], h_out[n]
        for j in range(hidden):
            i = sigmoid(a_i[j] + r_i[j], c)
            f = sigmoid(a_f[j] + r_f[j], c)
            g = tanh(a_g[j] + r_g[j], c)
            o = sigmoid(a_o[j] + r_o[j], c)
            a_i[j], a_f[j], a_g[j], a_o[j] = i, f, g, o
            c[j] = f * cp[j] + i * g
            tc[j] = tanh(c[j], c)                      # of the stored (rounded) c_t
            h[j] = a_o[j] * tc[j]


@jit(nogil=True)
def lstm_step_backward(dh, dc, dy, gates, c_prev, tc, delta, t, lengths, use_dy, n_lo, n_hi):
    """Pre-activation gradients of i, f, g, o; ``dc`` becomes ∂L/∂c_{t-1}, ``dh`` the carry."""
    hidden = dh.shape[1]
    H = hidden
    for n in range(n_lo, n_hi):
        dh_n, dc_n = dh[n], dc[n]
        d_i, d_f, d_g, d_o = delta[n, :H], delta[n, H:2 * H], delta[n, 2 * H:3 * H], delta[n, 3 * H:]
        if t >= lengths[n]:
            _zero(delta[n])                # dh_n and dc_n carry their values unchanged
            continue
        g_i, g_f, g_g, g_o = gates[n, :H], gates[n, H:2 * H], gates[n, 2 * H:3 * H], gates[n, 3 * H:]
        cp, tc_n = c_prev[n], tc[n]
        dy_n = dy[t, n] if use_dy else dh_n
        for j in range(hidden):
            g_h = dh_n[j]
            if use_dy:
                g_h += dy_n[j]
            i, f, g, o, tcj = g_i[j], g_f[j], g_g[j], g_o[j], tc_n[j]
            dct = dc_n[j] + g_h * o * (1.0 - tcj * tcj)
            d_i[j] = dct * g * i * (1.0 - i)
            d_f[j] = dct * cp[j] * f * (1.0 - f)
            d_g[j] = dct * i * (1.0 - g * g)
            d_o[j] = g_h * tcj * o * (1.0 - o)
            dc_n[j] = dct * f
            dh_n[j] = 0.0


# -- GRU ------------------------------------------------------------------------------------------

@jit(error_model="numpy", nogil=True)
def gru_step_forward(gates, hh, b_hn, hn_out, h_prev, h_out, t, lengths, n_lo, n_hi):
    """r = σ(a_r + hh_r), z = σ(a_z + hh_z), hn = hh_n + b_hn (``hn_out``, kept for backward),
    n = tanh(a_n + r ⊙ hn); r, z, n written back to ``gates``; h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.
    Padded samples keep h_{t−1} (hn = 0, gates never read)."""
    hidden = h_prev.shape[1]
    H = hidden
    for n in range(n_lo, n_hi):
        if t >= lengths[n]:
            _zero(hn_out[n])
            _copy(h_prev[n], h_out[n])
            continue
        a_r, a_z, a_n = gates[n, :H], gates[n, H:2 * H], gates[n, 2 * H:]
        r_r, r_z, r_n = hh[n, :H], hh[n, H:2 * H], hh[n, 2 * H:]
        hn, hp, h = hn_out[n], h_prev[n], h_out[n]
        for j in range(hidden):
            r = sigmoid(a_r[j] + r_r[j], h)
            z = sigmoid(a_z[j] + r_z[j], h)
            hn_j = r_n[j] + b_hn[j]
            nn = tanh(a_n[j] + r * hn_j, h)
            a_r[j], a_z[j], a_n[j], hn[j] = r, z, nn, hn_j
            h[j] = (1.0 - z) * nn + z * hp[j]


@jit(nogil=True)
def gru_step_backward(dh, dy, gates, hn, h_prev, dx, dhh, t, lengths, use_dy, n_lo, n_hi):
    """Pre-activation gradients on the input side (``dx``: r, z, n) and the recurrent side
    (``dhh``: r, z, r ⊙ δn); ``dh`` becomes z ⊙ ∂L/∂h_t (valid) or ∂L/∂h_t (padded)."""
    hidden = dh.shape[1]
    H = hidden
    for n in range(n_lo, n_hi):
        dh_n = dh[n]
        if t >= lengths[n]:
            _zero(dx[n])
            _zero(dhh[n])
            continue
        x_r, x_z, x_n = dx[n, :H], dx[n, H:2 * H], dx[n, 2 * H:]
        h_r, h_z, h_n = dhh[n, :H], dhh[n, H:2 * H], dhh[n, 2 * H:]
        g_r, g_z, g_n = gates[n, :H], gates[n, H:2 * H], gates[n, 2 * H:]
        hn_n, hp = hn[n], h_prev[n]
        dy_n = dy[t, n] if use_dy else dh_n
        for j in range(hidden):
            g_h = dh_n[j]
            if use_dy:
                g_h += dy_n[j]
            r, z, nn = g_r[j], g_z[j], g_n[j]
            dn = g_h * (1.0 - z) * (1.0 - nn * nn)
            dz = g_h * (hp[j] - nn) * z * (1.0 - z)
            dr = dn * hn_n[j] * r * (1.0 - r)
            x_r[j] = dr
            x_z[j] = dz
            x_n[j] = dn
            h_r[j] = dr
            h_z[j] = dz
            h_n[j] = dn * r
            dh_n[j] = g_h * z
