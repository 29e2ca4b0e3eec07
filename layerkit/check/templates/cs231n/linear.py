"""Affine layer as a function pair, out = x.reshape(N, D) w + b (template: write forward and backward).

Check it:  layerkit gradcheck my_affine.py:affine_forward --shape x=5,2,3 --shape w=6,4 --shape b=4
"""

import numpy as np


def affine_forward(x, w, b):
    """x (N, d_1, ..., d_k), w (D, M) with D = d_1 ⋯ d_k, b (M,):
    out = x.reshape(N, D) @ w + b, of shape (N, M).
    Return (out, cache), the cache holding what affine_backward needs (x and w)."""
    raise NotImplementedError("affine_forward: out = x.reshape(len(x), -1) @ w + b")


def affine_backward(dout, cache):
    """With dout = ∂L/∂out of shape (N, M), return (dx, dw, db), in the order of
    affine_forward's arguments:
    dx = (dout @ wᵀ).reshape(x.shape)     (N, d_1, ..., d_k): the shape of x, not (N, D)
    dw = x.reshape(N, D)ᵀ @ dout           (D, M)
    db = Σ_n dout[n]                       (M,)
    """
    raise NotImplementedError("affine_backward: dx, dw, db")
