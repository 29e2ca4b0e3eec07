"""Homework written attribute-style: parameters are attributes (W, b), backward(dLdZ) returns
dLdA and leaves the parameter gradients in dLdW, dLdb. Correct solutions, and the classic
mistakes as subclasses that override one method."""

import numpy as np


class Linear:
    """Z = A Wᵀ + 1 bᵀ, W (out, in), b (out, 1); weights drawn from the global np.random."""

    def __init__(self, in_features, out_features):
        self.W = np.random.randn(out_features, in_features)
        self.b = np.random.randn(out_features, 1)

    def forward(self, A):
        self.A = A
        self.ones = np.ones((len(A), 1))
        return A @ self.W.T + self.ones @ self.b.T

    def backward(self, dLdZ):
        self.dLdW = dLdZ.T @ self.A
        self.dLdb = dLdZ.T @ self.ones
        return dLdZ @ self.W


class LinearZeroInit(Linear):
    """The same layer with weights that start at zero (dLdA = dLdZ W is then 0)."""

    def __init__(self, in_features, out_features):
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros((out_features, 1))


class LinearFlatBias(Linear):
    """dLdb of shape (out,) for b of shape (out, 1): the same numbers."""

    def backward(self, dLdZ):
        dLdA = super().backward(dLdZ)
        self.dLdb = dLdZ.sum(axis=0)
        return dLdA


class LinearBatchMean(Linear):
    """A course that averages parameter gradients over the batch."""

    def backward(self, dLdZ):
        dLdA = super().backward(dLdZ)
        self.dLdW = self.dLdW / len(dLdZ)
        self.dLdb = self.dLdb / len(dLdZ)
        return dLdA


class LinearWeightTransposed(Linear):
    def backward(self, dLdZ):
        dLdA = super().backward(dLdZ)
        self.dLdW = self.A.T @ dLdZ
        return dLdA


class Dropout:
    """Inverted dropout with its mask drawn from the global np.random (no parameters)."""

    def __init__(self, p=0.5):
        self.p = p

    def forward(self, x):
        self.mask = np.random.binomial(1, 1 - self.p, size=x.shape) / (1 - self.p)
        return x * self.mask

    def backward(self, delta):
        return delta * self.mask


class NoGradient:
    """W is used by forward, but backward never writes dLdW (nor dW)."""

    def __init__(self, size):
        self.W = np.random.randn(size)

    def forward(self, A):
        return A * self.W

    def backward(self, dLdZ):
        return dLdZ * self.W


class ReLU:
    def forward(self, Z):
        self.A = np.maximum(Z, 0)
        return self.A

    def backward(self, dLdA):
        return dLdA * (self.A > 0)


class Conv1d_stride1:
    """Z[n, o, t] = Σ_c Σ_k W[o, c, k] A[n, c, t + k] + b[o]; weights from np.random."""

    def __init__(self, in_channels, out_channels, kernel_size):
        self.W = np.random.normal(0, 1.0, (out_channels, in_channels, kernel_size))
        self.b = np.zeros(out_channels)

    def forward(self, A):
        self.A = A
        K = self.W.shape[2]
        T = A.shape[2] - K + 1
        return np.stack([np.tensordot(A[:, :, t:t + K], self.W, axes=([1, 2], [1, 2]))
                         for t in range(T)], axis=2) + self.b[None, :, None]

    def backward(self, dLdZ):
        K = self.W.shape[2]
        T = dLdZ.shape[2]
        self.dLdW = np.stack([np.tensordot(dLdZ, self.A[:, :, k:k + T], axes=([0, 2], [0, 2]))
                              for k in range(K)], axis=2)
        self.dLdb = dLdZ.sum(axis=(0, 2))
        # dLdA = full convolution of dLdZ with the kernel flipped in time
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1)))
        W_flipped = self.flip(self.W)
        return np.stack([np.tensordot(padded[:, :, t:t + K], W_flipped, axes=([1, 2], [0, 2]))
                         for t in range(self.A.shape[2])], axis=2)

    @staticmethod
    def flip(W):
        return W[:, :, ::-1]


class Conv1d_stride1_not_flipped(Conv1d_stride1):
    @staticmethod
    def flip(W):
        return W


class Downsample1d:
    def __init__(self, factor):
        self.factor = factor

    def forward(self, A):
        self.width = A.shape[2]
        return A[:, :, ::self.factor]

    def backward(self, dLdZ):
        dLdA = np.zeros(dLdZ.shape[:2] + (self.width,))
        dLdA[:, :, ::self.factor] = dLdZ
        return dLdA


class Conv1d:
    """Strided convolution as a stride-1 convolution (holding the weights) and a downsample."""

    stride1 = Conv1d_stride1

    def __init__(self, in_channels, out_channels, kernel_size, stride):
        self.conv1d_stride1 = self.stride1(in_channels, out_channels, kernel_size)
        self.downsample1d = Downsample1d(stride)

    def forward(self, A):
        return self.downsample1d.forward(self.conv1d_stride1.forward(A))

    def backward(self, dLdZ):
        return self.conv1d_stride1.backward(self.downsample1d.backward(dLdZ))


class Conv1dNotFlipped(Conv1d):
    stride1 = Conv1d_stride1_not_flipped


class BatchNorm1d:
    """Z = BW · (Z_in − μ) / √(σ² + ε) + Bb over the batch; BW, Bb of shape (1, C)."""

    def __init__(self, num_features, alpha=0.9):
        self.alpha, self.eps = alpha, 1e-8
        self.BW = np.ones((1, num_features))
        self.Bb = np.zeros((1, num_features))
        self.running_M = np.zeros((1, num_features))
        self.running_V = np.ones((1, num_features))

    def forward(self, Z):
        self.M = Z.mean(axis=0, keepdims=True)
        self.V = Z.var(axis=0, keepdims=True)
        self.NZ = (Z - self.M) / np.sqrt(self.V + self.eps)
        self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M
        self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V
        return self.BW * self.NZ + self.Bb

    def backward(self, dLdBZ):
        self.dLdBW = (dLdBZ * self.NZ).sum(axis=0, keepdims=True)
        self.dLdBb = dLdBZ.sum(axis=0, keepdims=True)
        dLdNZ = dLdBZ * self.BW
        return (dLdNZ - dLdNZ.mean(axis=0) - self.NZ * (dLdNZ * self.NZ).mean(axis=0)) \
            / np.sqrt(self.V + self.eps)


class RNNCell:
    """h_t = tanh(W_ih x + b_ih + W_hh h_prev + b_hh); gradients in dW_ih, dW_hh, db_ih, db_hh
    (the d prefix); two inputs, backward returns (dx, dh_prev)."""

    def __init__(self, input_size, hidden_size):
        self.W_ih = np.random.randn(hidden_size, input_size)
        self.W_hh = np.random.randn(hidden_size, hidden_size)
        self.b_ih = np.random.randn(hidden_size)
        self.b_hh = np.random.randn(hidden_size)

    def forward(self, x, h_prev_t):
        self.x, self.h_prev = x, h_prev_t
        self.h = np.tanh(x @ self.W_ih.T + self.b_ih + h_prev_t @ self.W_hh.T + self.b_hh)
        return self.h

    def backward(self, delta):
        dz = delta * (1 - self.h ** 2)
        self.dW_ih = dz.T @ self.x
        self.dW_hh = dz.T @ self.h_prev
        self.db_ih = dz.sum(axis=0)
        self.db_hh = dz.sum(axis=0)
        return dz @ self.W_ih, dz @ self.W_hh
