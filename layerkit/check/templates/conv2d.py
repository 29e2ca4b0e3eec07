"""2-D convolution (cross-correlation) with stride and zero padding (template: write forward and backward).

Check it:  layerkit gradcheck my_conv.py:MyConv2D --init '{"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}' --input-shape 2,2,6,6
"""

import numpy as np


class MyConv2D:
    """y[n, o, i, j] = b[o] + Σ_{c,p,q} W[o, c, p, q] · xp[n, c, i·s + p, j·s + q]

    x is (N, C, H, W), W is (O, C, K, K), b is (O,), s the stride, xp is x with `padding` zeros
    on each side of H and W; y is (N, O, H', W') with H' = ⌊(H + 2P − K) / s⌋ + 1 (same for W').
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0,
                 dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        k = kernel_size
        bound = 1.0 / np.sqrt(in_channels * k * k)
        self.stride, self.padding, self.kernel_size = stride, padding, k
        self.params = {
            "weight": rng.uniform(-bound, bound, (out_channels, in_channels, k, k)).astype(dtype),
            "bias": rng.uniform(-bound, bound, out_channels).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        """Pad x with zeros, then for every output position take the window
        xp[:, :, i·s : i·s + K, j·s : j·s + K] and contract it with W over (c, p, q).
        Keep xp for backward."""
        raise NotImplementedError("forward: cross-correlate the padded input with W, add b")

    def backward(self, dy):
        """With δ = dy of shape (N, O, H', W'):
        dL/db[o]          = Σ_{n,i,j} δ[n, o, i, j]
        dL/dW[o, c, p, q] = Σ_{n,i,j} δ[n, o, i, j] · xp[n, c, i·s + p, j·s + q]   (x ⋆ δ)
        dL/dxp[n, c, i·s + p, j·s + q] += Σ_o W[o, c, p, q] · δ[n, o, i, j]
            (for stride 1: the full cross-correlation of δ with W rotated by 180°)
        then dL/dx = dL/dxp without the padded border."""
        raise NotImplementedError("backward: db, dW = x ⋆ δ, dx = δ ⋆ rot180(W), crop padding")
