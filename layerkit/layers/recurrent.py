"""Recurrent layers: RNN (Elman), LSTM and GRU, with PyTorch's parameter names and gate order.

One base class does what the three share: validation, the input projection of all time steps as
one matrix product, the time loop (one numpy product h_{t-1} W_hhᵀ per step plus a fused numba
kernel for the gate math, :mod:`layerkit.kernels.recurrent`), per-sample lengths, and the
parameter gradients as one product over all time steps at the end of backpropagation through
time.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np

from .. import init
from ..kernels.recurrent import (gru_step_backward, gru_step_forward, lstm_step_backward,
                                 lstm_step_forward, rnn_step_backward, rnn_step_forward)
from ..kernels.recurrent_step import fused_step_pays, gru_cell, lstm_cell, rnn_cell
from ..layer import Layer
from ..threads import run_batch_blocks
from .containers import Container
from ..validation import (allocation, check_array, check_dy, float_dtype, number_in, one_of,
                          positive_int)

_DOC = r"""{title}

    Input x of shape (N, T, D) (batch first), hidden state h of size H. At every step t,

{equations}

    with σ the logistic sigmoid and ⊙ the elementwise product. The same weights are used at every
    step.

    Parameters
    ----------
    input_size, hidden_size : int
        D and H.
{extra_params}    return_sequences : bool, default True
        Return every step's h_t, shape (N, T, H); otherwise only the last one, (N, H) (each
        sequence's own last step when ``lengths`` is given).
    bias : bool, default True
        Learn the biases ``bias_ih`` and ``bias_hh`` (both kept, as in PyTorch: only their sum
        matters except for the GRU's n gate).
    dtype : float32 (default) or float64
        dtype of the parameters.
    seed : int or numpy Generator, optional
        Seed of the initializer.

    Attributes
    ----------
    params : ``weight_ih`` ({G}·H, D), ``weight_hh`` ({G}·H, H), ``bias_ih``, ``bias_hh`` ({G}·H,),
        gate blocks of H rows in the order {gates} (PyTorch's layout: ``state_dict`` tensors
        ``weight_ih_l0`` ... copy over unchanged).
    dh0{dc0_attr} : ndarray (N, H)
        After ``backward``: ∂L/∂h0{dc0_text} (zeros when the initial state was None).

    Initialisation: ``weight_ih`` ~ U(−1/√H, 1/√H) (PyTorch's default); each H×H gate block of
    ``weight_hh`` orthogonal (keeps the recurrent map norm-preserving at the start, which helps
    long sequences); biases zero{forget_init}.

    Shape
    -----
    {signature}

    - x : (N, T, D), float32 or float64; the output dtype follows x.
    - h0{c0_shape} : (N, H), optional (zeros by default).
    - lengths : (N,) integers in [1, T], optional. Steps t ≥ lengths[n] are padding: they do not
      change sample n's state, their output is 0 and they receive no gradient; the final state
      is the state at each sequence's own last step.
    - y : (N, T, H) if ``return_sequences`` else (N, H); h_T{c_T} : (N, H).

    ``backward({bwd_args}) -> dx`` (N, T, D); the final-state gradient(s) may be None (zero).

    Truncated backpropagation through time: feed a long sequence in chunks and pass the previous
    chunk's returned h_T{c_T_tbptt} as ``h0``{c0_tbptt}. They are plain arrays, so the state carries over
    but no gradient flows across the chunk boundary (``dh0`` is simply not used).

    Notes
    -----
    Backpropagation through time, with δ_t the gradient with respect to the pre-activations of
    step t (stacked over t and n into δ_all, rows matching X_all (T·N, D) and H_prev_all (T·N, H),
    the states h_0 … h_{{T−1}}):

{bptt}

    Parameter gradients are sums over time, computed once at the end: ∂L/∂W_ih = δ_allᵀ X_all,
    ∂L/∂W_hh = δ^h_allᵀ H_prev_all, ∂L/∂b_ih = Σ_t,n δ_t, ∂L/∂b_hh = Σ_t,n δ^h_t (δ^h = δ except
    for the GRU's n gate, see above); ∂L/∂x_t = δ_t W_ih. Padded steps have δ_t = 0 and pass
    ∂L/∂h_t (and ∂L/∂c_t) unchanged to step t − 1.

    Implementation: X W_ihᵀ for all steps is one BLAS product; the loop over t does one numpy
    product h_{{t−1}} W_hhᵀ and one fused numba kernel for all the elementwise gate math of the
    step (σ(a) = (1 + tanh(a/2)) / 2; for float32 a vectorised tanh accurate to float32, see
    layerkit/kernels/tanh.py). With several numba threads and enough work per step, the loop
    runs for disjoint blocks of the batch in parallel threads (layerkit/threads.py). The cache
    (overwritten by each forward) holds stacked (T, N, ·) arrays: activated gates and states.
    """

_RNN_EQ = r"""        h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh),        f = tanh or ReLU."""

_LSTM_EQ = r"""        i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)          (input gate)
        f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)          (forget gate)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)       (cell candidate)
        o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)          (output gate)
        c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)"""

_GRU_EQ = r"""        r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)          (reset gate)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)          (update gate)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}"""

_RNN_BPTT = r"""    - ∂L/∂h_t = dy_t + ∂L/∂h_t (from step t + 1), ∂L/∂h_T also gets dh_T.
    - δ_t = ∂L/∂h_t ⊙ f'(a_t): 1 − h_t² for tanh, [h_t > 0] for ReLU.
    - ∂L/∂h_{t−1} (through the recurrence) = δ_t W_hh; ∂L/∂h0 is that at t = 1."""

_LSTM_BPTT = r"""    - With ∂h_t = dy_t + δ_{t+1} W_hh (+ dh_T at t = T) and ∂c_t the carried cell gradient
      (dc_T at t = T):  ∂c_t ← ∂c_t + ∂h_t ⊙ o_t ⊙ (1 − tanh² c_t).
    - δo = ∂h_t ⊙ tanh c_t ⊙ o(1 − o),  δi = ∂c_t ⊙ g ⊙ i(1 − i),
      δf = ∂c_t ⊙ c_{t−1} ⊙ f(1 − f),    δg = ∂c_t ⊙ i ⊙ (1 − g²);  δ_t = [δi, δf, δg, δo].
    - ∂L/∂c_{t−1} = ∂c_t ⊙ f_t,  ∂L/∂h_{t−1} = δ_t W_hh; ∂L/∂h0, ∂L/∂c0 at t = 1."""

_GRU_BPTT = r"""    - With ∂h_t = dy_t + ∂L/∂h_t from step t + 1 (+ dh_T at t = T):
      δn = ∂h_t ⊙ (1 − z) ⊙ (1 − n²),  δz = ∂h_t ⊙ (h_{t−1} − n) ⊙ z(1 − z),
      δr = δn ⊙ (W_hn h_{t−1} + b_hn) ⊙ r(1 − r).
    - Input side δ_t = [δr, δz, δn]; recurrent side δ^h_t = [δr, δz, r ⊙ δn] (the reset gate
      multiplies the recurrent n term only).
    - ∂L/∂h_{t−1} = δ^h_t W_hh + z_t ⊙ ∂h_t; ∂L/∂h0 at t = 1."""


def _doc(title, equations, bptt, G, gates, *, lstm=False, extra_params=""):
    return _DOC.format(
        title=title, equations=equations, bptt=bptt, G=G, gates=gates, extra_params=extra_params,
        dc0_attr=", dc0" if lstm else "", dc0_text=" and ∂L/∂c0" if lstm else "",
        forget_init=(" except the forget-gate block of ``bias_ih``, set to ``forget_bias`` "
                     "(``bias_hh``'s stays 0)") if lstm else "",
        signature=("``forward(x, h0=None, c0=None, lengths=None) -> (y, h_T, c_T)``" if lstm
                   else "``forward(x, h0=None, lengths=None) -> (y, h_T)``"),
        c0_shape=", c0" if lstm else "", c_T=", c_T" if lstm else "",
        c_T_tbptt=" (and c_T)" if lstm else "", c0_tbptt=" (and ``c0``)" if lstm else "",
        bwd_args="dy, dh_T=None, dc_T=None" if lstm else "dy, dh_T=None")


class _RNNCache(NamedTuple):
    """What RNN.backward needs: time-major (T, ·) stacks, the fields LSTM and GRU start with."""

    xt: np.ndarray          # the input, time-major (T, N, D)
    hs: np.ndarray          # the states h_0 … h_T (T + 1, N, H)
    lens: np.ndarray        # each sample's length (N,) int64


class _LSTMCache(NamedTuple):
    """What LSTM.backward needs."""

    xt: np.ndarray          # (T, N, D)
    hs: np.ndarray          # h_0 … h_T (T + 1, N, H)
    lens: np.ndarray        # (N,)
    gates: np.ndarray       # the activated gates i, f, g, o (T, N, 4H)
    cs: np.ndarray          # the cell states c_0 … c_T (T + 1, N, H)
    tcs: np.ndarray         # tanh(c_t) for t = 1 … T (T, N, H)


class _GRUCache(NamedTuple):
    """What GRU.backward needs."""

    xt: np.ndarray          # (T, N, D)
    hs: np.ndarray          # h_0 … h_T (T + 1, N, H)
    lens: np.ndarray        # (N,)
    gates: np.ndarray       # the activated gates r, z, n (T, N, 3H)
    hns: np.ndarray         # W_hn h_{t−1} + b_hn, the term the reset gate scales (T, N, H)


def sequence_lengths(who: str, lengths, n: int, steps: int) -> np.ndarray:
    """``lengths`` (None: every sequence is T long) as int64 (N,) in [1, T]; else a clear error
    naming ``who``."""
    if lengths is None:
        return np.full(n, steps, dtype=np.int64)
    check_array(who, lengths, (n,), name="lengths", kind="int")
    if lengths.size and (lengths.min() < 1 or lengths.max() > steps):
        raise ValueError(f"{who}: lengths must lie in [1, T] = [1, {steps}], got values "
                         f"in [{lengths.min()}, {lengths.max()}]")
    return np.array(lengths, dtype=np.int64)       # a copy: the cache must not follow the caller


class _Recurrent(Layer):
    """Shared machinery of RNN, LSTM and GRU; subclasses set ``n_gates`` and the step loops."""

    n_gates = 1
    has_cell = False

    def __init__(self, input_size: int, hidden_size: int, *, return_sequences: bool = True,
                 bias: bool = True, dtype=np.float32, seed=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = positive_int(name, "hidden_size", hidden_size)
        self.return_sequences = bool(return_sequences)
        self.bias = bool(bias)
        dt = float_dtype(dtype, repr(self))
        rng = np.random.default_rng(seed)
        H, G = self.hidden_size, self.n_gates
        allocation(repr(self), "weight_ih", (G * H, self.input_size), np.float64)   # drawn in f64
        allocation(repr(self), "weight_hh", (G * H, H), np.float64)
        k = 1.0 / math.sqrt(H)
        self.add_param("weight_ih", rng.uniform(-k, k, (G * H, self.input_size)).astype(dt))
        w_hh = np.concatenate([init.orthogonal((H, H), rng=rng, dtype=dt) for _ in range(G)])
        self.add_param("weight_hh", np.ascontiguousarray(w_hh))
        if self.bias:
            self.add_param("bias_ih", init.zeros((G * H,), dtype=dt))
            self.add_param("bias_hh", init.zeros((G * H,), dtype=dt))
        self.dh0 = None
        self.dc0 = None

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        parts += self._extra_parts()
        if not self.return_sequences:
            parts.append("return_sequences=False")
        if not self.bias:
            parts.append("bias=False")
        return ", ".join(parts)

    def _extra_parts(self) -> list:
        return []

    def _time_loop(self, loop, n: int) -> None:
        """Run ``loop(lo, hi)`` (every time step for the batch rows lo:hi) over all n rows: in
        row blocks on parallel threads when a step is large enough, each product on one BLAS
        thread (layerkit.threads). One row's recurrent product costs G·H·H multiply-adds."""
        run_batch_blocks(loop, n, self.n_gates * self.hidden_size * self.hidden_size)

    # -- validation -------------------------------------------------------------------------
    def _check_inputs(self, x, states: dict, lengths):
        who = self    # formatted only for an error message
        check_array(who, x, ("N", "T", self.input_size))
        n, steps = x.shape[:2]
        if steps < 1:
            raise ValueError(f"{who}: expected x of shape (N, T, {self.input_size}) with T ≥ 1, "
                             f"got {x.shape}")
        out = {}
        for name, s in states.items():
            if s is None:
                out[name] = np.zeros((n, self.hidden_size), dtype=x.dtype)
            else:
                check_array(who, s, (n, self.hidden_size), name=name)
                out[name] = s
        return out, sequence_lengths(who, lengths, n, steps)

    def _weights(self, dt):
        """W_ihᵀ, W_hhᵀ (contiguous, dtype dt) and the biases (zeros when bias=False)."""
        p = self.params
        w_ih = p["weight_ih"].astype(dt, copy=False)
        w_hh = p["weight_hh"].astype(dt, copy=False)
        if self.bias:
            b_ih, b_hh = p["bias_ih"].astype(dt, copy=False), p["bias_hh"].astype(dt, copy=False)
        else:
            b_ih = b_hh = np.zeros(self.n_gates * self.hidden_size, dtype=dt)
        return w_ih, w_hh, b_ih, b_hh

    def _project(self, x, w_ih, bias):
        """Time-major X_all (T, N, D) and X_all W_ihᵀ + bias (T, N, G·H): one BLAS product.
        X_all is always a copy (also for N = 1 or T = 1, where the transpose is contiguous): it
        is cached for ∂L/∂W_ih, which must not change when the caller changes x."""
        xt = np.array(x.transpose(1, 0, 2), order="C")
        steps, n, d = xt.shape
        gates = xt.reshape(steps * n, d) @ w_ih.T
        gates += bias
        return xt, gates.reshape(steps, n, w_ih.shape[0])

    def _output(self, hs, lens):
        """y from the stacked states hs (T + 1, N, H): every step (padding zeroed) or the last."""
        if not self.return_sequences:
            return hs[-1].copy()
        y = hs[1:].transpose(1, 0, 2).copy()        # a copy even when N = 1 (no view of hs)
        steps = y.shape[1]
        if np.any(lens < steps):
            y[np.arange(steps)[None, :] >= lens[:, None]] = 0
        return y

    def _check_backward(self, dy, finals: dict, n, steps, dt):
        out_shape = (n, steps, self.hidden_size) if self.return_sequences else (n, self.hidden_size)
        self.check_dy(dy, out_shape)
        out = {}
        for name, g in finals.items():
            if g is None:
                out[name] = np.zeros((n, self.hidden_size), dtype=dt)
            else:
                check_array(self, g, (n, self.hidden_size), name=name)
                out[name] = np.array(g, dtype=dt)          # a copy: the loop updates it in place
        if self.return_sequences:
            dy_t = np.ascontiguousarray(dy.transpose(1, 0, 2), dtype=dt)
        else:
            out["dh_T"] += dy          # y is h_T itself (the state at each own last step)
            dy_t = np.zeros((1, 1, 1), dtype=dt)
        return out, dy_t

    def _param_grads(self, xt, hs, delta_x, delta_h, w_ih):
        """Sums over time as single products; returns ∂L/∂x (N, T, D)."""
        steps, n, d = xt.shape
        gh = delta_x.shape[-1]
        dx2 = delta_x.reshape(steps * n, gh)
        dh2 = delta_h.reshape(steps * n, gh)
        self.grads["weight_ih"] += dx2.T @ xt.reshape(steps * n, d)
        self.grads["weight_hh"] += dh2.T @ hs[:-1].reshape(steps * n, self.hidden_size)
        if self.bias:
            db = dx2.sum(axis=0)
            self.grads["bias_ih"] += db
            self.grads["bias_hh"] += db if delta_h is delta_x else dh2.sum(axis=0)
        dx = (dx2 @ w_ih).reshape(steps, n, d)
        return np.ascontiguousarray(dx.transpose(1, 0, 2))


    # -- one step, for inference ------------------------------------------------------------
    def cell(self) -> "RecurrentCell":
        """The layer's one-step function with its weights as they are now
        (:class:`RecurrentCell`): for loops of many steps (sampling, decoding), which would
        otherwise prepare the weights at every call of :meth:`step`."""
        return RecurrentCell(self)


class RecurrentCell:
    r"""One step of an RNN, LSTM or GRU for inference: exactly the layer's forward at one time
    step (same gates, biases, nonlinearity), from a snapshot of the layer's weights.

    ``RecurrentCell(layer)`` (or ``layer.cell()``) copies the weights once, transposed for the
    step products; later changes to the layer's parameters (an optimizer step) are not seen: take a
    new cell. It keeps no cache and does not touch the layer's (a pending forward/backward pair
    is unaffected).

    ``step(x_t, h=None, c=None)``: x_t (N, D), h and c (N, H) (None: zeros; c only for an
    LSTM), float32 or float64; computed and returned in the layer's dtype: h_t (N, H), for an
    LSTM (h_t, c_t). For up to a few rows the two products and the gate math run in one fused
    numba kernel (:mod:`layerkit.kernels.recurrent_step`), for more rows as in forward: numpy
    products and the forward's gate kernel.
    """

    def __init__(self, layer: _Recurrent):
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"RecurrentCell: expected an RNN, LSTM or GRU, got {layer!r}")
        self.who = f"{layer!r}.step"
        self.kind = type(layer).__name__
        self.input_size, self.hidden_size = layer.input_size, layer.hidden_size
        self.has_cell = layer.has_cell
        self.relu = getattr(layer, "nonlinearity", "tanh") == "relu"
        self.dtype = layer.params["weight_ih"].dtype
        w_ih, w_hh, b_ih, b_hh = layer._weights(self.dtype)
        H = self.hidden_size
        if self.kind == "GRU":
            bias = b_ih.copy()
            bias[:2 * H] += b_hh[:2 * H]           # b_hn stays inside r ⊙ (·), as in forward
            self.b_hn = np.ascontiguousarray(b_hh[2 * H:])
        else:
            bias = b_ih + b_hh
            self.b_hn = None
        self.bias = np.ascontiguousarray(bias)
        self.w_ih_t = np.ascontiguousarray(w_ih.T)
        self.w_hh_t = np.ascontiguousarray(w_hh.T)

    def __repr__(self) -> str:
        return f"RecurrentCell({self.who[:-len('.step')]})"

    def _state(self, name, s, n):
        if s is None:
            return np.zeros((n, self.hidden_size), dtype=self.dtype)
        check_array(self.who, s, (n, self.hidden_size), name=name)
        return np.ascontiguousarray(s, dtype=self.dtype)

    def step(self, x_t: np.ndarray, h=None, c=None):
        """h_t (RNN, GRU) or (h_t, c_t) (LSTM) from x_t (N, D) and the previous state."""
        who = self.who
        check_array(who, x_t, ("N", self.input_size), name="x_t")
        if c is not None and not self.has_cell:
            raise TypeError(f"{who}: a {self.kind} has no cell state; got c")
        n = x_t.shape[0]
        x = np.ascontiguousarray(x_t, dtype=self.dtype)
        h = self._state("h", h, n)
        c = self._state("c", c, n) if self.has_cell else None
        h_out = np.empty_like(h)
        if n == 0:
            return (h_out, np.empty_like(h)) if self.has_cell else h_out
        if fused_step_pays(n):
            return self._fused(x, h, c, h_out)
        return self._numpy(x, h, c, h_out)

    def _fused(self, x, h, c, h_out):
        if self.kind == "LSTM":
            c_out = np.empty_like(c)
            lstm_cell(x, h, c, self.w_ih_t, self.w_hh_t, self.bias, h_out, c_out)
            return h_out, c_out
        if self.kind == "GRU":
            gru_cell(x, h, self.w_ih_t, self.w_hh_t, self.bias, self.b_hn, h_out)
        else:
            rnn_cell(x, h, self.w_ih_t, self.w_hh_t, self.bias, self.relu, h_out)
        return h_out

    def run(self, x: np.ndarray, h=None, c=None, lengths=None):
        """The state after reading the sequences x (N, T, D) from h, c (None: zeros), each row
        stopping at its own last step (``lengths`` (N,) in [1, T], None: all T): h_T (N, H),
        for an LSTM (h_T, c_T). The same as the layer's forward returns for its final state, by
        :meth:`step` at every t, so a short sequence at batch 1 (an encoder before decoding)
        pays no sequence machinery; for many rows the input products run as one product first."""
        who = self.who[:-len(".step")] + ".run"
        check_array(who, x, ("N", "T", self.input_size))
        n, steps = x.shape[:2]
        if steps < 1:
            raise ValueError(f"{who}: expected x of shape (N, T, {self.input_size}) with T ≥ 1, "
                             f"got {x.shape}")
        if c is not None and not self.has_cell:
            raise TypeError(f"{who}: a {self.kind} has no cell state; got c")
        lens = sequence_lengths(who, lengths, n, steps)
        h = self._state("h", h, n)
        c = self._state("c", c, n) if self.has_cell else None
        if n == 0:
            return (h.copy(), c.copy()) if self.has_cell else h.copy()
        xt = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=self.dtype)     # (T, N, D)
        fused = fused_step_pays(n)
        if not fused:
            pre_all = (xt.reshape(steps * n, -1) @ self.w_ih_t).reshape(steps, n, -1)
            pre_all += self.bias
        ragged = bool(np.any(lens < steps))
        for t in range(steps):
            if fused:
                out = self._fused(xt[t], h, c, np.empty_like(h))
            else:
                out = self._numpy(None, h, c, np.empty_like(h), pre=pre_all[t])
            h_new, c_new = out if self.has_cell else (out, None)
            if ragged:
                live = (t < lens)[:, None]
                h_new = np.where(live, h_new, h)
                c_new = np.where(live, c_new, c) if self.has_cell else None
            h, c = h_new, c_new
        return (h, c) if self.has_cell else h

    def _numpy(self, x, h, c, h_out, pre=None):
        """Forward's path at T = 1: numpy products (on one BLAS thread, in row blocks on
        parallel threads when large, layerkit.threads) and forward's gate kernel. ``pre``:
        x W_ihᵀ + bias already computed (x is then not read)."""
        n = h.shape[0]
        gh = self.w_hh_t.shape[1]
        given = pre is not None
        pre = np.array(pre, dtype=self.dtype, order="C") if given else \
            np.empty((n, gh), dtype=self.dtype)
        hh = h_out if self.kind == "RNN" else np.empty((n, gh), dtype=self.dtype)
        lens = np.ones(n, dtype=np.int64)
        c_out = np.empty_like(c) if self.has_cell else None
        scratch = np.empty_like(h)                 # tanh(c') (LSTM), W_hn h + b_hn (GRU)

        def rows(lo, hi):
            if not given:
                np.matmul(x[lo:hi], self.w_ih_t, out=pre[lo:hi])
                pre[lo:hi] += self.bias
            np.matmul(h[lo:hi], self.w_hh_t, out=hh[lo:hi])
            if self.kind == "RNN":
                rnn_step_forward(pre, h, h_out, 0, lens, self.relu, lo, hi)
            elif self.kind == "GRU":
                gru_step_forward(pre, hh, self.b_hn, scratch, h, h_out, 0, lens, lo, hi)
            else:
                lstm_step_forward(pre, hh, c, c_out, scratch, h, h_out, 0, lens, lo, hi)

        run_batch_blocks(rows, n, gh * self.hidden_size)
        return (h_out, c_out) if self.has_cell else h_out

class RNN(_Recurrent):
    __doc__ = _doc("Elman recurrent layer (tanh or ReLU).", _RNN_EQ, _RNN_BPTT, 1, "(one block)",
                   extra_params="""    nonlinearity : {"tanh", "relu"}, default "tanh"
        f.
""")
    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh",
                 return_sequences: bool = True, bias: bool = True, dtype=np.float32, seed=None):
        self.nonlinearity = one_of("RNN", "nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, return_sequences=return_sequences, bias=bias,
                         dtype=dtype, seed=seed)

    def _extra_parts(self) -> list:
        return [] if self.nonlinearity == "tanh" else [f"nonlinearity={self.nonlinearity!r}"]

    def forward(self, x: np.ndarray, h0=None, lengths=None):
        states, lens = self._check_inputs(x, {"h0": h0}, lengths)
        dt = x.dtype
        w_ih, w_hh, b_ih, b_hh = self._weights(dt)
        xt, pre = self._project(x, w_ih, b_ih + b_hh)
        steps, n, _ = pre.shape
        hs = np.empty((steps + 1, n, self.hidden_size), dtype=dt)
        hs[0] = states["h0"]
        w_hh_t = np.ascontiguousarray(w_hh.T)    # NN layout: per-step products ~6-10 % faster
        relu = self.nonlinearity == "relu"

        def loop(lo, hi):              # rows lo:hi of the batch, all steps
            for t in range(steps):
                np.matmul(hs[t, lo:hi], w_hh_t, out=hs[t + 1, lo:hi])
                rnn_step_forward(pre[t], hs[t], hs[t + 1], t, lens, relu, lo, hi)

        self._time_loop(loop, n)
        self._cache = _RNNCache(xt, hs, lens)
        return self._output(hs, lens), hs[-1].copy()

    def backward(self, dy: np.ndarray, dh_T=None) -> np.ndarray:
        cache = self.saved()
        xt, hs, lens = cache.xt, cache.hs, cache.lens
        steps, n, _ = xt.shape
        dt = xt.dtype
        finals, dy_t = self._check_backward(dy, {"dh_T": dh_T}, n, steps, dt)
        w_ih, w_hh, _, _ = self._weights(dt)
        dh = finals["dh_T"]
        delta = np.empty((steps, n, self.hidden_size), dtype=dt)
        relu = self.nonlinearity == "relu"
        use_dy = self.return_sequences

        def loop(lo, hi):
            for t in range(steps - 1, -1, -1):
                rnn_step_backward(dh, dy_t, hs[t + 1], delta[t], t, lens, relu, use_dy, lo, hi)
                dh[lo:hi] += delta[t, lo:hi] @ w_hh

        self._time_loop(loop, n)
        self.dh0 = dh
        return self._param_grads(xt, hs, delta, delta, w_ih)

    def step(self, x_t: np.ndarray, h=None) -> np.ndarray:
        """One step for inference, h_t = f(W_ih x_t + b_ih + W_hh h + b_hh): x_t (N, D), h (N, H)
        (None: zeros) -> h_t (N, H) in the layer's dtype. No cache (see
        :class:`RecurrentCell`; in a loop, ``cell = layer.cell()`` once)."""
        return RecurrentCell(self).step(x_t, h)


class LSTM(_Recurrent):
    __doc__ = _doc("Long short-term memory layer.", _LSTM_EQ, _LSTM_BPTT, 4, "i, f, g, o",
                   lstm=True, extra_params="""    forget_bias : float, default 1.0
        Initial value of the forget-gate block of ``bias_ih`` (a forget gate that starts open
        lets gradients flow through c early in training). Needs ``bias=True`` unless 0.
""")
    n_gates = 4
    has_cell = True

    def __init__(self, input_size: int, hidden_size: int, *, forget_bias: float = 1.0,
                 return_sequences: bool = True, bias: bool = True, dtype=np.float32, seed=None):
        self.forget_bias = number_in("LSTM", "forget_bias", forget_bias, -math.inf, math.inf,
                                     low_open=True, high_open=True)
        super().__init__(input_size, hidden_size, return_sequences=return_sequences, bias=bias,
                         dtype=dtype, seed=seed)
        if self.bias:
            H = self.hidden_size
            self.params["bias_ih"][H:2 * H] = self.forget_bias

    def _extra_parts(self) -> list:
        return [] if self.forget_bias == 1.0 else [f"forget_bias={self.forget_bias:g}"]

    def forward(self, x: np.ndarray, h0=None, c0=None, lengths=None):
        states, lens = self._check_inputs(x, {"h0": h0, "c0": c0}, lengths)
        dt = x.dtype
        w_ih, w_hh, b_ih, b_hh = self._weights(dt)
        H = self.hidden_size
        xt, gates = self._project(x, w_ih, b_ih + b_hh)
        steps, n, _ = gates.shape
        hs = np.empty((steps + 1, n, H), dtype=dt)
        cs = np.empty((steps + 1, n, H), dtype=dt)
        tcs = np.empty((steps, n, H), dtype=dt)
        hs[0], cs[0] = states["h0"], states["c0"]
        hh = np.empty((n, 4 * H), dtype=dt)
        w_hh_t = np.ascontiguousarray(w_hh.T)    # NN layout: per-step products ~6-10 % faster

        def loop(lo, hi):              # rows lo:hi of the batch, all steps
            for t in range(steps):
                np.matmul(hs[t, lo:hi], w_hh_t, out=hh[lo:hi])
                lstm_step_forward(gates[t], hh, cs[t], cs[t + 1], tcs[t], hs[t], hs[t + 1], t, lens,
                                  lo, hi)

        self._time_loop(loop, n)
        self._cache = _LSTMCache(xt, hs, lens, gates, cs, tcs)
        return self._output(hs, lens), hs[-1].copy(), cs[-1].copy()

    def backward(self, dy: np.ndarray, dh_T=None, dc_T=None) -> np.ndarray:
        cache = self.saved()
        xt, hs, lens, gates, cs, tcs = (cache.xt, cache.hs, cache.lens, cache.gates, cache.cs,
                                        cache.tcs)
        steps, n, _ = xt.shape
        dt = xt.dtype
        finals, dy_t = self._check_backward(dy, {"dh_T": dh_T, "dc_T": dc_T}, n, steps, dt)
        w_ih, w_hh, _, _ = self._weights(dt)
        dh, dc = finals["dh_T"], finals["dc_T"]
        delta = np.empty_like(gates)
        use_dy = self.return_sequences

        def loop(lo, hi):
            for t in range(steps - 1, -1, -1):
                lstm_step_backward(dh, dc, dy_t, gates[t], cs[t], tcs[t], delta[t], t, lens, use_dy,
                                   lo, hi)
                dh[lo:hi] += delta[t, lo:hi] @ w_hh

        self._time_loop(loop, n)
        self.dh0, self.dc0 = dh, dc
        return self._param_grads(xt, hs, delta, delta, w_ih)

    def step(self, x_t: np.ndarray, h=None, c=None):
        """One step for inference (the gate equations above at one t): x_t (N, D), h, c (N, H)
        (None: zeros) -> (h_t, c_t), each (N, H) in the layer's dtype. No cache (see
        :class:`RecurrentCell`; in a loop, ``cell = layer.cell()`` once)."""
        return RecurrentCell(self).step(x_t, h, c)


class GRU(_Recurrent):
    __doc__ = _doc("Gated recurrent unit layer (PyTorch's formulation).", _GRU_EQ, _GRU_BPTT, 3,
                   "r, z, n")
    n_gates = 3

    def forward(self, x: np.ndarray, h0=None, lengths=None):
        states, lens = self._check_inputs(x, {"h0": h0}, lengths)
        dt = x.dtype
        H = self.hidden_size
        w_ih, w_hh, b_ih, b_hh = self._weights(dt)
        folded = b_ih.copy()
        folded[:2 * H] += b_hh[:2 * H]          # b_hr, b_hz add directly; b_hn stays inside r ⊙ (.)
        xt, gates = self._project(x, w_ih, folded)
        b_hn = np.ascontiguousarray(b_hh[2 * H:])
        steps, n, _ = gates.shape
        hs = np.empty((steps + 1, n, H), dtype=dt)
        hns = np.empty((steps, n, H), dtype=dt)
        hs[0] = states["h0"]
        hh = np.empty((n, 3 * H), dtype=dt)
        w_hh_t = np.ascontiguousarray(w_hh.T)    # NN layout: per-step products ~6-10 % faster

        def loop(lo, hi):              # rows lo:hi of the batch, all steps
            for t in range(steps):
                np.matmul(hs[t, lo:hi], w_hh_t, out=hh[lo:hi])
                gru_step_forward(gates[t], hh, b_hn, hns[t], hs[t], hs[t + 1], t, lens, lo, hi)

        self._time_loop(loop, n)
        self._cache = _GRUCache(xt, hs, lens, gates, hns)
        return self._output(hs, lens), hs[-1].copy()

    def backward(self, dy: np.ndarray, dh_T=None) -> np.ndarray:
        cache = self.saved()
        xt, hs, lens, gates, hns = cache.xt, cache.hs, cache.lens, cache.gates, cache.hns
        steps, n, _ = xt.shape
        dt = xt.dtype
        finals, dy_t = self._check_backward(dy, {"dh_T": dh_T}, n, steps, dt)
        w_ih, w_hh, _, _ = self._weights(dt)
        dh = finals["dh_T"]
        delta_x = np.empty_like(gates)
        delta_h = np.empty_like(gates)
        use_dy = self.return_sequences

        def loop(lo, hi):
            for t in range(steps - 1, -1, -1):
                gru_step_backward(dh, dy_t, gates[t], hns[t], hs[t], delta_x[t], delta_h[t], t, lens,
                                  use_dy, lo, hi)
                dh[lo:hi] += delta_h[t, lo:hi] @ w_hh

        self._time_loop(loop, n)
        self.dh0 = dh
        return self._param_grads(xt, hs, delta_x, delta_h, w_ih)

    def step(self, x_t: np.ndarray, h=None) -> np.ndarray:
        """One step for inference (the gate equations above at one t): x_t (N, D), h (N, H)
        (None: zeros) -> h_t (N, H) in the layer's dtype. No cache (see
        :class:`RecurrentCell`; in a loop, ``cell = layer.cell()`` once)."""
        return RecurrentCell(self).step(x_t, h)


class _BidirectionalCache(NamedTuple):
    """What Bidirectional.backward needs."""

    idx: np.ndarray | None  # _reversal_index (N, T), or None when there is nothing to reverse
    hidden: int             # H, where dy splits into the two directions
    y_shape: tuple          # the output's, which dy must have


def _reversal_index(lens: np.ndarray, steps: int) -> np.ndarray:
    """idx[n, t] = len_n − 1 − t for t < len_n, else t: reverses each sequence within its own
    length and leaves the padding where it is. The permutation is its own inverse."""
    t = np.arange(steps)[None, :]
    return np.where(t < lens[:, None], lens[:, None] - 1 - t, t)


class Bidirectional(Container):
    r"""Run a recurrent layer left to right and a second one right to left; join their outputs.

        y_t = [ →h_t ; ←h_t ],   →h = forward_layer(x),   ←h = backward_layer(reverse(x))

    where reverse flips each sequence within its own length (padding stays at the end), and ←h
    is flipped back so that y_t sees the whole sequence: the past through →h_t, the future
    through ←h_t. With ``return_sequences=False`` the two final states are joined:
    [→h at each sequence's last step ; ←h after reading the sequence back to its first step].

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The left-to-right layer.
    backward_layer : same kind, optional
        The right-to-left layer. Default: a copy of ``layer`` — the same initial weights, which
        then train independently (the two directions see different inputs, so they diverge).

    Attributes
    ----------
    params : ``forward_layer.<name>`` and ``backward_layer.<name>`` for every parameter of each.

    Shape
    -----
    x : (N, T, D); y : (N, T, 2H), or (N, 2H) without ``return_sequences``. Both directions
    start from zero states. ``forward(x, lengths=None)`` returns y only.

    Notes
    -----
    δ splits into its two halves; each layer backpropagates its half through time (the backward
    half flipped like its input), and ∂L/∂x = ∂L/∂x from →h + reverse(∂L/∂x_reversed from ←h).
    """

    def __init__(self, layer, backward_layer=None):
        # No Layer.__init__: params and grads are views of the two children.
        self.training, self._cache = True, None
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional: expected an RNN, LSTM or GRU, got {layer!r}")
        if backward_layer is None:
            backward_layer = copy.deepcopy(layer)
        if (type(backward_layer) is not type(layer)
                or backward_layer.input_size != layer.input_size
                or backward_layer.hidden_size != layer.hidden_size
                or backward_layer.return_sequences != layer.return_sequences):
            raise ValueError(f"Bidirectional: backward_layer {backward_layer!r} must be of the same "
                             f"kind, sizes and return_sequences as {layer!r}")
        self.forward_layer, self.backward_layer = layer, backward_layer

    def _named_children(self) -> list:
        return [("forward_layer", self.forward_layer), ("backward_layer", self.backward_layer)]

    def __repr__(self) -> str:
        return f"Bidirectional({self.forward_layer!r})"

    def forward(self, x: np.ndarray, lengths=None) -> np.ndarray:
        check_array(self, x, ("N", "T", self.forward_layer.input_size))
        n, steps = x.shape[:2]
        lens = sequence_lengths(self, lengths, n, steps)
        idx = _reversal_index(lens, steps) if lengths is not None or steps > 1 else None
        x_rev = np.take_along_axis(x, idx[:, :, None], axis=1) if idx is not None else x
        y_f = self.forward_layer.forward(x, lengths=lengths)[0]
        y_b = self.backward_layer.forward(x_rev, lengths=lengths)[0]
        if self.forward_layer.return_sequences and idx is not None:
            y_b = np.take_along_axis(y_b, idx[:, :, None], axis=1)
        y = np.concatenate([y_f, y_b], axis=-1)
        self._cache = _BidirectionalCache(idx, y_f.shape[-1], y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self.saved()
        check_dy(self, dy, cache.y_shape)
        idx, h = cache.idx, cache.hidden
        dy_f, dy_b = dy[..., :h], dy[..., h:]
        if self.forward_layer.return_sequences and idx is not None:
            dy_b = np.take_along_axis(dy_b, idx[:, :, None], axis=1)
        dx = self.forward_layer.backward(np.ascontiguousarray(dy_f))
        dx_rev = self.backward_layer.backward(np.ascontiguousarray(dy_b))
        if idx is not None:
            dx_rev = np.take_along_axis(dx_rev, idx[:, :, None], axis=1)
        return dx + dx_rev
