"""Elman RNN, h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), trained by BPTT (template: write forward and backward).

Check it:  layerkit gradcheck my_rnn.py:MyRNN --init '{"input_size": 3, "hidden_size": 4}' --input-shape 2,5,3
"""

import numpy as np


class MyRNN:
    """x is (N, T, D); forward returns every hidden state h of shape (N, T, H), with h_0 = 0:
    h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b). W_ih is (H, D), W_hh is (H, H), b is (H,)."""

    def __init__(self, input_size, hidden_size, *, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)
        shapes = {"weight_ih": (hidden_size, input_size), "weight_hh": (hidden_size, hidden_size),
                  "bias": (hidden_size,)}
        self.params = {k: rng.uniform(-bound, bound, s).astype(dtype) for k, s in shapes.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """Loop t = 0 .. T−1: a_t = x_t W_ihᵀ + h_{t−1} W_hhᵀ + b, h_t = tanh(a_t).
        Keep x and all h_t (and h_{−1} = 0) for backward."""
        raise NotImplementedError("forward: the recurrence over t, returning h of shape (N, T, H)")

    def backward(self, dy):
        """Backpropagation through time, t = T−1 down to 0, with g = 0 at the start:
        g      = dy_t + g_next                 (dL/dh_t: from the output and from step t+1)
        da_t   = g · (1 − h_t²)                (tanh' written with its output)
        dW_ih += da_tᵀ x_t,  dW_hh += da_tᵀ h_{t−1},  db += Σ_n da_t
        dx_t   = da_t W_ih,  g_next = da_t W_hh   (carried to step t−1; stopping early is the
                                                   classic BPTT bug)"""
        raise NotImplementedError("backward: BPTT from t = T-1 down to 0")
