"""Softmax along the last axis, p = exp(x) / Σ exp(x) (template: write forward and backward).

Check it:  layerkit gradcheck my_softmax.py:MySoftmax --input-shape 3,5
"""

import numpy as np


class MySoftmax:
    """p[n, i] = exp(x[n, i]) / Σ_j exp(x[n, j]) over the last axis. No parameters."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        """Subtract the row maximum first (x − max x gives the same p and never overflows),
        then p = exp(x − m) / Σ exp(x − m). Keep p for backward."""
        raise NotImplementedError("forward: stable softmax over the last axis")

    def backward(self, dy):
        """The Jacobian is ∂p_i/∂x_j = p_i (1[i = j] − p_j), so
        dL/dx_j = Σ_i dy_i p_i (1[i = j] − p_j) = p_j (dy_j − Σ_i dy_i p_i)."""
        raise NotImplementedError("backward: dx = p * (dy - (dy * p).sum(-1, keepdims=True))")
