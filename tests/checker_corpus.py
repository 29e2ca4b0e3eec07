"""A corpus of layers for measuring the gradient checker: broken ones whose mistake a checker
must catch, and correct but numerically awkward ones it must pass.

Each entry is ``(name, make)``, where ``make()`` returns ``(layer, inputs)``: a fresh layer in
the Layer contract (plain numpy, float64) and the inputs to check it at. Used by
tests/test_checker_corpus.py (every broken layer fails, every correct one passes) and by
benchmarks/checker_vs_torch.py (the same set through ``torch.autograd.gradcheck``).
"""

import numpy as np


def _rng(seed):
    return np.random.default_rng(seed)


def _off_zero(rng, shape, margin=0.1):
    x = rng.standard_normal(shape)
    return np.sign(x) * (np.abs(x) + margin)


class Stateless:
    params: dict
    grads: dict

    def __init__(self):
        self.params, self.grads = {}, {}


class Dense:
    """y = x Wᵀ + b; ``bug`` selects a mistake."""

    def __init__(self, bug=None, n_in=4, n_out=3, square=False):
        rng = _rng(3)
        n_out = n_in if square else n_out
        self.params = {"W": rng.standard_normal((n_out, n_in)), "b": rng.standard_normal(n_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug, self.x = bug, None

    def forward(self, x):
        if self.bug != "first call only" or self.x is None:
            self.x = x.copy()
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dy):
        dW, db = dy.T @ self.x, dy.sum(axis=0)
        if self.bug == "transposed":
            dW = dW.T
        if self.bug == "assign":
            self.grads["W"][...] = dW
            self.grads["b"][...] = db
        elif self.bug == "rebind":
            self.grads["W"] = self.grads["W"] + dW
            self.grads["b"] += db
        elif self.bug == "bias shape":
            self.grads["W"] += dW
            self.grads["b"] = (self.grads["b"] + db)[None, :]
        else:
            self.grads["W"] += dW
            self.grads["b"] += db
        dx = dy @ self.params["W"]
        if self.bug == "centre cache":
            self.x -= self.x.mean(axis=0)
        if self.bug == "ignores dy":
            return np.tile(self.params["W"].sum(axis=0), (len(dy), 1))   # f'(x), no dy
        if self.bug == "constant term":
            return dx + 0.1
        return dx


class ReluDense:
    """y = relu(x Wᵀ + b) with b = 0 at first; ``bug`` builds the mask without the bias."""

    def __init__(self, bug=None):
        rng = _rng(5)
        self.params = {"W": rng.standard_normal((3, 4)), "b": np.zeros(3)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug

    def forward(self, x):
        self.x = x.copy()
        self.z = x @ self.params["W"].T + self.params["b"]
        return np.maximum(self.z, 0)

    def backward(self, dy):
        pre = self.x @ self.params["W"].T if self.bug else self.z
        g = dy * (pre > 0)
        self.grads["W"] += g.T @ self.x
        self.grads["b"] += g.sum(axis=0)
        return g @ self.params["W"]


class Relu(Stateless):
    def __init__(self, bug=None):
        super().__init__()
        self.bug = bug

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dy):
        if self.bug == "dy in place":
            dy[self.x <= 0] = 0
            return dy
        if self.bug == "x in place":
            mask = self.x > 0
            np.clip(self.x, -1, 1, out=self.x)
            return dy * mask
        if self.bug == "clears cache":
            x, self.x = self.x, None
            return dy * (x > 0)
        if self.bug == "inverted":
            return dy * (self.x <= 0)
        return dy * (self.x > 0)


class Elementwise(Stateless):
    """y = f(x) with the derivative df (right or wrong)."""

    def __init__(self, f, df):
        super().__init__()
        self.f, self.df = f, df

    def forward(self, x):
        self.x = x.copy()
        return self.f(x)

    def backward(self, dy):
        return dy * self.df(self.x)


class ScaleShift:
    """y = γ (x − mean x) + β over the last axis, γ = 1 and β = 0 at first."""

    def __init__(self, forgets_gamma=False):
        self.params = {"gamma": np.ones(4), "beta": np.zeros(4)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.forgets_gamma = forgets_gamma

    def forward(self, x):
        self.xhat = x - x.mean(axis=-1, keepdims=True)
        return self.params["gamma"] * self.xhat + self.params["beta"]

    def backward(self, dy):
        self.grads["gamma"] += (dy * self.xhat).sum(axis=0)
        self.grads["beta"] += dy.sum(axis=0)
        g = dy if self.forgets_gamma else dy * self.params["gamma"]
        return g - g.mean(axis=-1, keepdims=True)


class LayerNorm:
    """y = γ x̂ + β, x̂ = (x − μ)/sqrt(σ² + ε) over the last axis; ``bug`` drops the x̂ term."""

    def __init__(self, d=6, bug=False):
        self.params = {"gamma": np.linspace(0.5, 1.5, d), "beta": np.linspace(-1, 1, d)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug

    def forward(self, x):
        mu = x.mean(axis=-1, keepdims=True)
        self.inv = 1 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + 1e-12)
        self.xhat = (x - mu) * self.inv
        return self.params["gamma"] * self.xhat + self.params["beta"]

    def backward(self, dy):
        self.grads["gamma"] += (dy * self.xhat).sum(axis=0)
        self.grads["beta"] += dy.sum(axis=0)
        g = dy * self.params["gamma"]
        proj = 0 if self.bug else self.xhat * (g * self.xhat).mean(axis=-1, keepdims=True)
        return self.inv * (g - g.mean(axis=-1, keepdims=True) - proj)


class BatchNorm:
    """Training-mode batch norm over axis 0; ``bug`` leaves out the mean term of dx."""

    def __init__(self, d=3, bug=False):
        self.params = {"gamma": np.ones(d), "beta": np.zeros(d)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug

    def forward(self, x):
        mu = x.mean(axis=0)
        self.inv = 1 / np.sqrt(x.var(axis=0) + 1e-5)
        self.xhat = (x - mu) * self.inv
        return self.params["gamma"] * self.xhat + self.params["beta"]

    def backward(self, dy):
        self.grads["gamma"] += (dy * self.xhat).sum(axis=0)
        self.grads["beta"] += dy.sum(axis=0)
        g = dy * self.params["gamma"]
        mean_term = 0 if self.bug else g.mean(axis=0)
        return self.inv * (g - mean_term - self.xhat * (g * self.xhat).mean(axis=0))


class Softmax(Stateless):
    """y = softmax(x / τ) over the last axis; ``bug`` forgets the 1/τ."""

    def __init__(self, tau=1.0, bug=False):
        super().__init__()
        self.tau, self.bug = tau, bug

    def forward(self, x):
        z = x / self.tau
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        self.y = e / e.sum(axis=-1, keepdims=True)
        return self.y

    def backward(self, dy):
        g = self.y * (dy - (dy * self.y).sum(axis=-1, keepdims=True))
        return g if self.bug else g / self.tau


class RowMax(Stateless):
    """y = max over the last axis; ``share_ties`` routes dy to every maximal element."""

    def __init__(self, share_ties=False):
        super().__init__()
        self.share_ties = share_ties

    def forward(self, x):
        self.x = x.copy()
        return x.max(axis=-1)

    def backward(self, dy):
        winners = self.x == self.x.max(axis=-1, keepdims=True)
        if not self.share_ties:
            first = np.zeros_like(winners)
            np.put_along_axis(first, winners.argmax(axis=-1)[..., None], True, axis=-1)
            winners = first
        return dy[..., None] * winners


class Pool2x2(Stateless):
    """2×2 average pooling, stride 2, on (N, C, H, W); ``bug`` skips the last window row."""

    def __init__(self, bug=False):
        super().__init__()
        self.bug = bug

    def forward(self, x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))

    def backward(self, dy):
        dx = np.repeat(np.repeat(dy, 2, axis=2), 2, axis=3) / 4
        if self.bug:
            dx[:, :, -2:, :] = 0
        return dx


class Correlate1D:
    """y[n, o, t] = Σ_{c,k} W[o, c, k] x[n, c, t + k] (valid); ``bug`` flips the kernel in dx."""

    def __init__(self, bug=False):
        self.params = {"W": _rng(9).standard_normal((2, 2, 3))}
        self.grads = {"W": np.zeros((2, 2, 3))}
        self.bug = bug

    def forward(self, x):
        self.x = x.copy()
        k = self.params["W"].shape[2]
        t_out = x.shape[2] - k + 1
        cols = np.stack([x[:, :, j:j + t_out] for j in range(k)], axis=-1)   # (N, C, T', K)
        return np.einsum("nctk,ock->not", cols, self.params["W"])

    def backward(self, dy):
        W = self.params["W"]
        k = W.shape[2]
        t_out = dy.shape[2]
        cols = np.stack([self.x[:, :, j:j + t_out] for j in range(k)], axis=-1)
        self.grads["W"] += np.einsum("nctk,not->ock", cols, dy)
        Wk = W[:, :, ::-1] if self.bug else W
        dx = np.zeros_like(self.x)
        for j in range(k):
            dx[:, :, j:j + t_out] += np.einsum("not,oc->nct", dy, Wk[:, :, j])
        return dx


class ElmanRNN:
    """h_t = tanh(x_t W_xᵀ + h_{t-1} W_hᵀ), h_0 = 0, output all h (N, T, H); ``bug`` drops the
    gradient carried from step t+1 (no BPTT)."""

    def __init__(self, bug=False):
        rng = _rng(11)
        self.params = {"Wx": rng.standard_normal((3, 2)) * 0.5,
                       "Wh": rng.standard_normal((3, 3)) * 0.5}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug

    def forward(self, x):
        n, t, _ = x.shape
        self.x, h = x.copy(), np.zeros((n, 3))
        hs = []
        for s in range(t):
            h = np.tanh(x[:, s] @ self.params["Wx"].T + h @ self.params["Wh"].T)
            hs.append(h)
        self.h = np.stack(hs, axis=1)
        return self.h

    def backward(self, dy):
        n, t, _ = dy.shape
        dx, dh_next = np.zeros_like(self.x), np.zeros((n, 3))
        for s in reversed(range(t)):
            dh = dy[:, s] + (0 if self.bug else dh_next)
            dz = dh * (1 - self.h[:, s] ** 2)
            h_prev = self.h[:, s - 1] if s else np.zeros((n, 3))
            self.grads["Wx"] += dz.T @ self.x[:, s]
            self.grads["Wh"] += dz.T @ h_prev
            dx[:, s] = dz @ self.params["Wx"]
            dh_next = dz @ self.params["Wh"]
        return dx


class Embedding:
    """y = W[ids] for integer ids; ``bug`` writes dW[ids] += dy with fancy indexing, which does
    not accumulate repeated ids."""

    def __init__(self, bug=False):
        self.params = {"W": _rng(13).standard_normal((6, 3))}
        self.grads = {"W": np.zeros((6, 3))}
        self.bug = bug

    def forward(self, ids):
        self.ids = ids.copy()
        return self.params["W"][ids]

    def backward(self, dy):
        if self.bug:
            self.grads["W"][self.ids] += dy
        else:
            np.add.at(self.grads["W"], self.ids, dy)
        return None


class Dropout(Stateless):
    """Inverted dropout with its own random source; ``bug`` draws a new mask in backward."""

    def __init__(self, source="RandomState", bug=False):
        super().__init__()
        self.bug, self.source = bug, source
        self.sources = [np.random.RandomState(0) if source == "RandomState"
                        else np.random.default_rng(0)]

    def _mask(self, shape):
        if self.source == "global":
            return np.random.rand(*shape) > 0.5
        src = self.sources[0]
        return (src.rand(*shape) if self.source == "RandomState" else src.random(shape)) > 0.5

    def forward(self, x):
        self.mask = self._mask(x.shape)
        return x * self.mask * 2

    def backward(self, dy):
        mask = self._mask(dy.shape) if self.bug else self.mask
        return dy * mask * 2


class Cumsum(Stateless):
    """y = cumulative sum along the last axis; ``bug`` uses a forward cumsum in backward."""

    def __init__(self, bug=False):
        super().__init__()
        self.bug = bug

    def forward(self, x):
        return np.cumsum(x, axis=-1)

    def backward(self, dy):
        if self.bug:
            return np.cumsum(dy, axis=-1)
        return np.flip(np.cumsum(np.flip(dy, -1), axis=-1), -1)


class Product:
    """y = a ⊙ b (two inputs); ``bug`` returns only the gradient of a."""

    input_names = ("a", "b")

    def __init__(self, bug=False):
        self.params, self.grads, self.bug = {}, {}, bug

    def forward(self, a, b):
        self.a, self.b = a.copy(), b.copy()
        return a * b

    def backward(self, dy):
        if self.bug:
            return (dy * self.b,)
        return dy * self.b, dy * self.a


class OffByOne(Elementwise):
    """tanh whose derivative is off by 0.1 % at one element in 500."""

    def __init__(self):
        super().__init__(np.tanh, lambda v: 1 - np.tanh(v) ** 2)

    def backward(self, dy):
        dx = super().backward(dy)
        dx.flat[137] *= 1.001
        return dx


def _tanh_d(v):
    return 1 - np.tanh(v) ** 2


def _sigmoid(v):
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1 / (1 + e), e / (1 + e))


def _ties(rng, shape):
    x = rng.standard_normal(shape)
    x[..., 2] = x.max(axis=-1)
    return x


def _near_ties(rng, shape):
    x = rng.standard_normal(shape)
    x[..., 1] = x.max(axis=-1) - 1e-5
    return x


R = _rng


BROKEN = [
    ("assigned, not accumulated", lambda: (Dense(bug="assign"), R(0).standard_normal((5, 4)))),
    ("grads replaced", lambda: (Dense(bug="rebind"), R(0).standard_normal((5, 4)))),
    ("cache rewritten by backward", lambda: (Dense(bug="centre cache"),
                                             R(0).standard_normal((5, 4)))),
    ("cache from the first call", lambda: (Dense(bug="first call only"),
                                           R(0).standard_normal((5, 4)))),
    ("backward clears its cache", lambda: (Relu("clears cache"), _off_zero(R(1), (4, 5)))),
    ("dy modified in place", lambda: (Relu("dy in place"), _off_zero(R(1), (4, 5)))),
    ("x modified by backward", lambda: (Relu("x in place"), 3 * _off_zero(R(1), (4, 5)))),
    ("dx without γ (γ = 1 at init)", lambda: (ScaleShift(forgets_gamma=True),
                                             R(2).standard_normal((5, 4)))),
    ("mask without the bias (b = 0 at init)", lambda: (ReluDense(bug=True),
                                                       R(2).standard_normal((6, 4)))),
    ("|x| derivative switching at 1e-3", lambda: (
        Elementwise(np.abs, lambda v: np.where(v > 1e-3, 1.0, -1.0)),
        np.array([3e-4, -3e-4, 1.2e-4, -5e-5, 0.7]))),
    ("max routing dy to every tie", lambda: (RowMax(share_ties=True), _ties(R(3), (3, 5)))),
    ("layer norm without the x̂ term, σ = 1e-3", lambda: (
        LayerNorm(bug=True), R(4).standard_normal((4, 6)) * 1e-3)),
    ("batch norm without the mean term", lambda: (BatchNorm(bug=True),
                                                  R(4).standard_normal((6, 3)))),
    ("uniform error 5e-6", lambda: (
        Elementwise(np.tanh, lambda v: _tanh_d(v) + 5e-6), R(5).standard_normal((4, 5)))),
    ("one element in 500 off by 0.1 %", lambda: (OffByOne(), R(5).standard_normal((10, 50)))),
    ("softmax without 1/τ", lambda: (Softmax(0.5, bug=True), R(6).standard_normal((3, 4)))),
    ("leaky slope 0.1 instead of 0.01", lambda: (
        Elementwise(lambda v: np.where(v > 0, v, 0.01 * v), lambda v: np.where(v > 0, 1, 0.1)),
        _off_zero(R(6), (4, 5)))),
    ("sigmoid derivative from x, not y", lambda: (
        Elementwise(_sigmoid, lambda v: v * (1 - v)), R(7).standard_normal((4, 5)))),
    ("weight gradient transposed", lambda: (Dense(bug="transposed", square=True),
                                            R(7).standard_normal((5, 4)))),
    ("kernel flipped in dx", lambda: (Correlate1D(bug=True), R(8).standard_normal((2, 2, 7)))),
    ("last window row skipped", lambda: (Pool2x2(bug=True), R(8).standard_normal((2, 2, 6, 6)))),
    ("ReLU mask inverted", lambda: (Relu("inverted"), _off_zero(R(9), (4, 5)))),
    ("bias gradient of shape (1, C)", lambda: (Dense(bug="bias shape"),
                                               R(9).standard_normal((5, 4)))),
    ("backward ignores dy", lambda: (Dense(bug="ignores dy"), R(10).standard_normal((5, 4)))),
    ("a term independent of dy", lambda: (Dense(bug="constant term"),
                                          R(10).standard_normal((5, 4)))),
    ("gradient of the second input missing", lambda: (
        Product(bug=True), (R(11).standard_normal(4), R(12).standard_normal(4)))),
    ("BPTT without dh from t+1", lambda: (ElmanRNN(bug=True), R(13).standard_normal((2, 4, 2)))),
    ("cumsum backward not reversed", lambda: (Cumsum(bug=True), R(14).standard_normal((3, 5)))),
    ("repeated ids not accumulated", lambda: (Embedding(bug=True),
                                              np.array([[0, 2, 2], [5, 0, 1]]))),
    ("dropout mask drawn again in backward", lambda: (Dropout(bug=True),
                                                      R(15).standard_normal((4, 5)))),
]

CORRECT = [
    ("dense", lambda: (Dense(), R(0).standard_normal((5, 4)))),
    ("dense, square", lambda: (Dense(square=True), R(0).standard_normal((5, 4)))),
    ("relu, off zero", lambda: (Relu(), _off_zero(R(1), (4, 5)))),
    ("relu with exact zeros", lambda: (Relu(), np.array([[0.0, 1.0, -1.0], [0.5, 0.0, -0.5]]))),
    ("relu after a dense, b = 0", lambda: (ReluDense(), R(2).standard_normal((6, 4)))),
    ("scale-shift at γ = 1", lambda: (ScaleShift(), R(2).standard_normal((5, 4)))),
    ("|x| near its kink (3e-4)", lambda: (Elementwise(np.abs, np.sign),
                                          np.array([3e-4, -3e-4, 1.2e-4, -5e-5, 0.7]))),
    ("max with near-ties 1e-5 apart", lambda: (RowMax(), _near_ties(R(3), (3, 5)))),
    ("max with exact ties", lambda: (RowMax(), _ties(R(3), (3, 5)))),
    ("layer norm, σ = 1e-3", lambda: (LayerNorm(), R(4).standard_normal((4, 6)) * 1e-3)),
    ("layer norm, mean 1e4", lambda: (LayerNorm(), 1e4 + R(4).standard_normal((4, 6)))),
    ("batch norm", lambda: (BatchNorm(), R(4).standard_normal((6, 3)))),
    ("softmax of logits ±50", lambda: (
        Softmax(), R(6).choice([-50.0, 50.0], (3, 4)) + R(7).standard_normal((3, 4)))),
    ("softmax, τ = 0.01", lambda: (Softmax(0.01), R(6).standard_normal((3, 4)))),
    ("softmax, τ = 0.5", lambda: (Softmax(0.5), R(6).standard_normal((3, 4)))),
    ("tanh, saturated", lambda: (Elementwise(np.tanh, _tanh_d),
                                 R(8).choice([-1.0, 1.0], (4, 5)) * R(9).choice([5, 8, 16], (4, 5))
                                 + R(10).random((4, 5)))),
    ("exp of large inputs", lambda: (Elementwise(np.exp, np.exp), 30 + R(8).random((3, 4)))),
    ("stable sigmoid of ±40", lambda: (
        Elementwise(_sigmoid, lambda v: _sigmoid(v) * (1 - _sigmoid(v))),
        R(9).choice([-40.0, 40.0], (3, 4)) + R(10).standard_normal((3, 4)))),
    ("average pool 2×2", lambda: (Pool2x2(), R(8).standard_normal((2, 2, 6, 6)))),
    ("1-D correlation", lambda: (Correlate1D(), R(8).standard_normal((2, 2, 7)))),
    ("Elman RNN with BPTT", lambda: (ElmanRNN(), R(13).standard_normal((2, 4, 2)))),
    ("embedding with repeated ids", lambda: (Embedding(), np.array([[0, 2, 2], [5, 0, 1]]))),
    ("dropout, RandomState", lambda: (Dropout("RandomState"), R(15).standard_normal((4, 5)))),
    ("dropout, Generator in a list", lambda: (Dropout("Generator"),
                                             R(15).standard_normal((4, 5)))),
    ("dropout, global np.random", lambda: (Dropout("global"), R(15).standard_normal((4, 5)))),
    ("cumsum", lambda: (Cumsum(), R(14).standard_normal((3, 5)))),
    ("product of two inputs", lambda: (Product(), (R(11).standard_normal(4),
                                                   R(12).standard_normal(4)))),
]
