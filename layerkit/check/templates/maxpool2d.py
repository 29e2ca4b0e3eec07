"""2-D max pooling, K×K windows with stride K (template: write forward and backward).

Check it:  layerkit gradcheck my_pool.py:MyMaxPool2D --init '{"kernel_size": 2}' --input-shape 2,3,6,6
"""

import numpy as np


class MyMaxPool2D:
    """y[n, c, i, j] = max_{0 ≤ p, q < K} x[n, c, i·K + p, j·K + q] for x of shape (N, C, H, W)
    with H and W multiples of K; y is (N, C, H / K, W / K). No parameters."""

    def __init__(self, kernel_size):
        self.kernel_size = kernel_size
        self.params, self.grads = {}, {}

    def forward(self, x):
        """Reshape to (N, C, H/K, K, W/K, K) and take the max over the two window axes;
        remember where each maximum was (the argmax) for backward."""
        raise NotImplementedError("forward: max over each K×K window, keep the argmax")

    def backward(self, dy):
        """The subderivative of a max: the whole upstream gradient goes to the element that was
        the maximum, zero to the others:
        dL/dx[n, c, i·K + p, j·K + q] = dy[n, c, i, j] · 1[(p, q) = argmax of window (i, j)]."""
        raise NotImplementedError("backward: route dy to the argmax of each window")
