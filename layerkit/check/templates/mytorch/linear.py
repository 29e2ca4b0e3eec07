"""Linear layer with its weights as attributes, Z = A Wᵀ + 1 bᵀ (template: write forward and backward).

Check it:  layerkit gradcheck my_linear.py:Linear --init '{"in_features": 4, "out_features": 3}' --shape A=5,4
"""

import numpy as np


class Linear:
    """A (N, in_features) -> Z (N, out_features); W (out_features, in_features), b
    (out_features, 1). backward leaves the parameter gradients in self.dLdW and self.dLdb
    (the same shapes as W and b) and returns dLdA."""

    def __init__(self, in_features, out_features):
        self.W = np.random.randn(out_features, in_features) / np.sqrt(in_features)
        self.b = np.zeros((out_features, 1))

    def forward(self, A):
        """Z = A Wᵀ + 1 bᵀ with 1 a column of N ones. Keep A for backward (self.A = A)."""
        raise NotImplementedError("forward: Z = A @ W.T + ones @ b.T")

    def backward(self, dLdZ):
        """With dLdZ of shape (N, out_features):
        self.dLdW = dLdZᵀ A     (out_features, in_features)
        self.dLdb = dLdZᵀ 1     (out_features, 1)
        return dLdA = dLdZ W    (N, in_features)
        """
        raise NotImplementedError("backward: dLdW = dLdZ.T @ A, dLdb = dLdZ.T @ ones, dLdA")
