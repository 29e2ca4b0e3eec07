"""Homework in layerkit's own contract: params and grads dicts, backward adds into grads."""

import numpy as np


class Bilinear:
    """y = x W h_prev (two named inputs), W of shape (D, H): y[n] = Σ x[n, i] W[i, j] h[n, j]."""

    def __init__(self, D, H, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W": rng.standard_normal((D, H))}
        self.grads = {"W": np.zeros((D, H))}

    def forward(self, x, h_prev):
        self.x, self.h = x, h_prev
        return np.einsum("ni,ij,nj->n", x, self.params["W"], h_prev)

    def backward(self, dy):
        W = self.params["W"]
        self.grads["W"] += np.einsum("n,ni,nj->ij", dy, self.x, self.h)
        return dy[:, None] * (self.h @ W.T), dy[:, None] * (self.x @ W)


class ScaleAssigned:
    """y = w * x; backward assigns grads["w"] instead of adding into it."""

    def __init__(self, size):
        self.params = {"w": np.linspace(0.5, 1.5, size)}
        self.grads = {"w": np.zeros(size)}

    def forward(self, x):
        self.x = x
        return self.params["w"] * x

    def backward(self, dy):
        self.grads["w"] = (dy * self.x).sum(axis=0)
        return dy * self.params["w"]


class MaskedScale:
    """y[n, t] = w · x[n, t] for t < lengths[n], else 0 (a keyword input that is not
    differentiated)."""

    def __init__(self, size):
        self.params = {"w": np.linspace(0.5, 1.5, size)}
        self.grads = {"w": np.zeros(size)}

    def forward(self, x, lengths=None):
        T = x.shape[1]
        lengths = np.full(len(x), T) if lengths is None else lengths
        self.mask = (np.arange(T)[None, :] < np.asarray(lengths)[:, None])[:, :, None]
        self.x = x
        return self.params["w"] * x * self.mask

    def backward(self, dy):
        self.grads["w"] += (dy * self.x * self.mask).sum(axis=(0, 1))
        return dy * self.params["w"] * self.mask
