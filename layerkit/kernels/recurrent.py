"""Per-time-step kernels of the recurrent layers: the fused elementwise gate math.

The layer does every matrix product with numpy (the input projection of all time steps at once,
and the recurrent product ``h_{t-1} W_hhᵀ`` once per step); these kernels do the elementwise
rest for one step over the whole batch: gate arithmetic, state update, and each sample's own
length (a step ``t ≥ lengths[n]`` leaves sample n's state unchanged and gets no gradient).

Transcendentals stay in numpy: numba's scalar ``tanh``/``exp`` are not vectorised in this build
(~19 and ~5 ns per element against numpy's ~2.8 ns float32 ``np.tanh``; see DESIGN), and with
them inside the kernel the LSTM's gate kernel alone took 1.3 ms per step at N = 64, H = 256. So
the sigmoid gates use σ(a) = (1 + tanh(a/2)) / 2: the layer halves the i, f, o (LSTM) and r, z
(GRU) rows of the weights and biases once per forward (exact, a power of two), applies one
``np.tanh`` to the whole gate block, and the kernels map u ↦ (1 + u)/2 while fusing the rest.

Layout, all C-contiguous, time-major slices of the layer's stacked caches:

- ``gates`` (N, G·H): the step's gate block, updated in place until it holds the activated gates
  (i, f, g, o or r, z, n), which the layer keeps as its cache;
- ``hh`` (N, G·H): h_{t-1} W_hhᵀ (GRU; its n block is unscaled);
- states (N, H).

Backward kernels take the running ∂L/∂h (``dh``, in place) and produce the pre-activation
gradient ``delta`` (N, G·H) of step t; on exit ``dh`` holds only the part of ∂L/∂h_{t-1} that does
not pass through W_hh (the carried state of padded samples, z ⊙ ∂L/∂h for the GRU), the layer then
adds ``delta W_hh``. ``dy`` (T, N, H) is the time-major output gradient, read only when
``use_dy`` is true.

No BLAS calls here (see DESIGN: np.dot inside numba competes with numpy's BLAS).
"""

from __future__ import annotations

from .config import jit


# -- shared ---------------------------------------------------------------------------------------

@jit()
def carry_state(prev, out, t, lengths):
    """Padded samples (t ≥ lengths[n]) keep their state: out[n] = prev[n]."""
    n_batch, hidden = prev.shape
    for n in range(n_batch):
        if t >= lengths[n]:
            for j in range(hidden):
                out[n, j] = prev[n, j]


# -- Elman RNN ------------------------------------------------------------------------------------
# Forward is h_t = f(gates_t + hh) in numpy (np.tanh is vectorised) followed by carry_state.

@jit()
def rnn_step_backward(dh, dy, h_t, delta, t, lengths, relu, use_dy):
    """δ_t = (∂L/∂h_t) ⊙ f'(a_t); ``dh`` becomes the carry (∂L/∂h_t for padded samples, else 0)."""
    n_batch, hidden = dh.shape
    for n in range(n_batch):
        valid = t < lengths[n]
        for j in range(hidden):
            g = dh[n, j]
            if use_dy and valid:
                g += dy[t, n, j]
            if valid:
                h = h_t[n, j]
                if relu:
                    delta[n, j] = g if h > 0.0 else 0.0
                else:
                    delta[n, j] = g * (1.0 - h * h)
                dh[n, j] = 0.0
            else:
                delta[n, j] = 0.0
                dh[n, j] = g


# -- LSTM -----------------------------------------------------------------------------------------

@jit()
def lstm_step_forward(gates, c_prev, c_out, t, lengths):
    """From u = tanh(a/2) for i, f, o and g = tanh(a_g) (``gates``, in place): i, f, o = (1 + u)/2
    (that is σ(a)); c_t = f ⊙ c_{t−1} + i ⊙ g; padded samples keep c_{t−1}."""
    n_batch, hidden = c_prev.shape
    for n in range(n_batch):
        if t < lengths[n]:
            for j in range(hidden):
                i = 0.5 + 0.5 * gates[n, j]
                f = 0.5 + 0.5 * gates[n, hidden + j]
                o = 0.5 + 0.5 * gates[n, 3 * hidden + j]
                gates[n, j] = i
                gates[n, hidden + j] = f
                gates[n, 3 * hidden + j] = o
                c_out[n, j] = f * c_prev[n, j] + i * gates[n, 2 * hidden + j]
        else:
            for j in range(hidden):
                c_out[n, j] = c_prev[n, j]


@jit()
def lstm_step_output(gates, tc, h_prev, h_out, t, lengths):
    """h_t = o ⊙ tanh(c_t) (``tc`` = tanh(c_t)); padded samples keep h_{t−1}."""
    n_batch, hidden = h_prev.shape
    for n in range(n_batch):
        if t < lengths[n]:
            for j in range(hidden):
                h_out[n, j] = gates[n, 3 * hidden + j] * tc[n, j]
        else:
            for j in range(hidden):
                h_out[n, j] = h_prev[n, j]


@jit()
def lstm_step_backward(dh, dc, dy, gates, c_prev, tc, delta, t, lengths, use_dy):
    """Pre-activation gradients of i, f, g, o; ``dc`` becomes ∂L/∂c_{t-1}, ``dh`` the carry."""
    n_batch, hidden = dh.shape
    for n in range(n_batch):
        valid = t < lengths[n]
        for j in range(hidden):
            g_h = dh[n, j]
            if not valid:
                dh[n, j] = g_h
                for k in range(4):
                    delta[n, k * hidden + j] = 0.0
                continue
            if use_dy:
                g_h += dy[t, n, j]
            i = gates[n, j]
            f = gates[n, hidden + j]
            g = gates[n, 2 * hidden + j]
            o = gates[n, 3 * hidden + j]
            tcj = tc[n, j]
            dct = dc[n, j] + g_h * o * (1.0 - tcj * tcj)
            delta[n, j] = dct * g * i * (1.0 - i)
            delta[n, hidden + j] = dct * c_prev[n, j] * f * (1.0 - f)
            delta[n, 2 * hidden + j] = dct * i * (1.0 - g * g)
            delta[n, 3 * hidden + j] = g_h * tcj * o * (1.0 - o)
            dc[n, j] = dct * f
            dh[n, j] = 0.0


# -- GRU ------------------------------------------------------------------------------------------

@jit()
def gru_step_forward(gates, hh, b_hn, hn_out, t, lengths):
    """From u = tanh(a/2) in the r, z blocks of ``gates`` (in place): r, z = (1 + u)/2 (σ(a));
    hn = W_hn h_{t−1} + b_hn (``hh``'s n block + b_hn, kept for backward) and the n block
    becomes the pre-activation x-term + r ⊙ hn (the layer then applies tanh)."""
    n_batch = gates.shape[0]
    hidden = hn_out.shape[1]
    for n in range(n_batch):
        if t < lengths[n]:
            for j in range(hidden):
                r = 0.5 + 0.5 * gates[n, j]
                gates[n, j] = r
                gates[n, hidden + j] = 0.5 + 0.5 * gates[n, hidden + j]
                hn = hh[n, 2 * hidden + j] + b_hn[j]
                hn_out[n, j] = hn
                gates[n, 2 * hidden + j] += r * hn
        else:
            for j in range(hidden):
                hn_out[n, j] = 0.0


@jit()
def gru_step_output(gates, h_prev, h_out, t, lengths):
    """h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} (n already tanh'ed); padded samples keep h_{t−1}."""
    n_batch, hidden = h_prev.shape
    for n in range(n_batch):
        if t < lengths[n]:
            for j in range(hidden):
                z = gates[n, hidden + j]
                h_out[n, j] = (1.0 - z) * gates[n, 2 * hidden + j] + z * h_prev[n, j]
        else:
            for j in range(hidden):
                h_out[n, j] = h_prev[n, j]


@jit()
def gru_step_backward(dh, dy, gates, hn, h_prev, dx, dhh, t, lengths, use_dy):
    """Pre-activation gradients on the input side (``dx``: r, z, n) and the recurrent side
    (``dhh``: r, z, r ⊙ δn); ``dh`` becomes z ⊙ ∂L/∂h_t (valid) or ∂L/∂h_t (padded)."""
    n_batch, hidden = dh.shape
    for n in range(n_batch):
        valid = t < lengths[n]
        for j in range(hidden):
            g_h = dh[n, j]
            if not valid:
                for k in range(3):
                    dx[n, k * hidden + j] = 0.0
                    dhh[n, k * hidden + j] = 0.0
                continue
            if use_dy:
                g_h += dy[t, n, j]
            r = gates[n, j]
            z = gates[n, hidden + j]
            nn = gates[n, 2 * hidden + j]
            dn = g_h * (1.0 - z) * (1.0 - nn * nn)
            dz = g_h * (h_prev[n, j] - nn) * z * (1.0 - z)
            dr = dn * hn[n, j] * r * (1.0 - r)
            dx[n, j] = dr
            dx[n, hidden + j] = dz
            dx[n, 2 * hidden + j] = dn
            dhh[n, j] = dr
            dhh[n, hidden + j] = dz
            dhh[n, 2 * hidden + j] = dn * r
            dh[n, j] = g_h * z
