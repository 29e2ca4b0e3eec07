"""Rectified linear unit y = max(0, x) (template: write forward and backward).

Check it:  layerkit gradcheck my_relu.py:MyReLU --input-shape 4,6
"""

import numpy as np


class MyReLU:
    """y = max(0, x) elementwise, any shape. No parameters (params and grads are empty dicts)."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        """y = max(0, x). Keep what backward needs (the input, or the mask x > 0)."""
        raise NotImplementedError("forward: y = np.maximum(x, 0)")

    def backward(self, dy):
        """dL/dx = dy · 1[x > 0]  (the subderivative 0 at x = 0)."""
        raise NotImplementedError("backward: dx = dy * (x > 0)")
