"""Softmax cross-entropy loss and its gradient in one function (template: write the loss and dx).

Check it:  layerkit gradcheck my_softmax.py:softmax_loss --shape x=5,4 --int y=5:4
"""

import numpy as np


def softmax_loss(x, y):
    """Scores x (N, C), labels y (N,) in [0, C):
    p[n] = softmax(x[n]) (subtract the row max before exp),
    loss = −(1/N) Σ_n log p[n, y[n]],
    dx   = (p − onehot(y)) / N: the −1 at the true class of every row.
    Return (loss, dx)."""
    raise NotImplementedError("softmax_loss: loss, dx = (p - onehot(y)) / N")
