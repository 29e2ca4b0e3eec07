"""Naive 2-D convolution (cross-correlation) as a function pair (template: write forward and backward).

Check it:  layerkit gradcheck my_conv.py:conv_forward_naive --shape x=2,3,7,7 --shape w=4,3,3,3 --shape b=4 --arg conv_param='{"stride": 2, "pad": 1}'
"""

import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param {"stride": s, "pad": P}:
    xp = x with P zeros on each side of H and W,
    out[n, f, i, j] = b[f] + Σ_{c,p,q} w[f, c, p, q] · xp[n, c, i·s + p, j·s + q],
    of shape (N, F, H', W') with H' = 1 + (H + 2P − HH) // s (same for W').
    Return (out, cache) with cache = (x, w, b, conv_param)."""
    raise NotImplementedError("conv_forward_naive: loop over output positions")


def conv_backward_naive(dout, cache):
    """With dout of shape (N, F, H', W'), return (dx, dw, db):
    db[f]          = Σ_{n,i,j} dout[n, f, i, j]
    dw[f, c, p, q] = Σ_{n,i,j} dout[n, f, i, j] · xp[n, c, i·s + p, j·s + q]
    dxp[n, c, i·s + p, j·s + q] += Σ_f w[f, c, p, q] · dout[n, f, i, j]
    (the same windows as forward, with the stride), then dx = dxp without the padding."""
    raise NotImplementedError("conv_backward_naive: dx, dw, db")
