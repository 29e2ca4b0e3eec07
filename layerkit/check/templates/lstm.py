"""LSTM with PyTorch's gate order (i, f, g, o), trained by BPTT (template: write forward and backward).

Check it:  layerkit gradcheck my_lstm.py:MyLSTM --init '{"input_size": 3, "hidden_size": 4}' --input-shape 2,5,3
"""

import numpy as np


class MyLSTM:
    """x is (N, T, D); forward returns every hidden state h of shape (N, T, H), h_0 = c_0 = 0:
    a_t = x_t W_ihᵀ + h_{t−1} W_hhᵀ + b, split in four (N, H) blocks a_i, a_f, a_g, a_o;
    i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o);
    c_t = f ⊙ c_{t−1} + i ⊙ g;   h_t = o ⊙ tanh(c_t).
    W_ih is (4H, D), W_hh is (4H, H), b is (4H,)."""

    def __init__(self, input_size, hidden_size, *, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)
        H = hidden_size
        shapes = {"weight_ih": (4 * H, input_size), "weight_hh": (4 * H, H), "bias": (4 * H,)}
        self.params = {k: rng.uniform(-bound, bound, s).astype(dtype) for k, s in shapes.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """Loop over t as in the class docstring. Keep x, the gates i, f, g, o, c_t and
        h_t of every step for backward. σ(a) = 1 / (1 + exp(−a)) (stable: use exp(−|a|))."""
        raise NotImplementedError("forward: the LSTM recurrence, returning h of shape (N, T, H)")

    def backward(self, dy):
        """BPTT, t = T−1 down to 0, with dh_next = dc_next = 0 at the start:
        dh  = dy_t + dh_next
        do  = dh ⊙ tanh(c_t);                       da_o = do ⊙ o(1 − o)
        dc  = dh ⊙ o ⊙ (1 − tanh²(c_t)) + dc_next
        di  = dc ⊙ g;  df = dc ⊙ c_{t−1};  dg = dc ⊙ i
        da_i = di ⊙ i(1 − i);  da_f = df ⊙ f(1 − f);  da_g = dg ⊙ (1 − g²)
        da  = [da_i, da_f, da_g, da_o]              (N, 4H)
        dW_ih += daᵀ x_t;  dW_hh += daᵀ h_{t−1};  db += Σ_n da
        dx_t = da W_ih;  dh_next = da W_hh;  dc_next = dc ⊙ f"""
        raise NotImplementedError("backward: BPTT through the gates and the cell")
