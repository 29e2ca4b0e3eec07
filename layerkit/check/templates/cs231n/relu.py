"""Rectified linear unit as a function pair, out = max(0, x) (template: write forward and backward).

Check it:  layerkit gradcheck my_relu.py:relu_forward --shape x=4,6
"""

import numpy as np


def relu_forward(x):
    """out = max(0, x) elementwise. Return (out, cache) with cache = x (or the mask x > 0)."""
    raise NotImplementedError("relu_forward: out = np.maximum(x, 0)")


def relu_backward(dout, cache):
    """dx = dout · 1[x > 0] (the subderivative 0 at x = 0); return dx."""
    raise NotImplementedError("relu_backward: dx = dout * (x > 0)")
