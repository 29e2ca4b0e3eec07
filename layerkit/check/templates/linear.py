"""Fully connected layer y = x Wᵀ + b (template: write forward and backward).

Check it:  layerkit gradcheck my_linear.py:MyLinear --init '{"in_features": 4, "out_features": 3}' --input-shape 5,4
"""

import numpy as np


class MyLinear:
    """y = x Wᵀ + b for x of shape (N, in_features); W is (out_features, in_features), b is
    (out_features,). The contract: params and grads are dicts with the same keys and shapes;
    backward(dy) returns dL/dx and ADDS dL/dW, dL/db into grads (+=)."""

    def __init__(self, in_features, out_features, *, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(in_features)
        self.params = {
            "weight": rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype),
            "bias": rng.uniform(-bound, bound, out_features).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """y[n, o] = Σ_i x[n, i] W[o, i] + b[o]. Keep x for backward (self.x = x)."""
        raise NotImplementedError("forward: y = x @ W.T + b")

    def backward(self, dy):
        """With δ = dy of shape (N, out_features):
        dL/dW = δᵀ x        (out_features, in_features)   -> grads["weight"] += ...
        dL/db = Σ_n δ[n]    (out_features,)               -> grads["bias"] += ...
        dL/dx = δ W         (N, in_features)              -> return it
        """
        raise NotImplementedError("backward: dW = dy.T @ x, db = dy.sum(0), dx = dy @ W")
