"""The configurations ``layerkit gradcheck`` runs over every built-in layer and loss.

Each case builds a float64 layer and an input chosen so the check is meaningful: away from
kinks (|x| ≥ 0.1 for ReLU-like layers), gradients not all zero, randomness frozen by the checker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import layers as L
from .. import losses
from .finite_differences import LossAsLayer

F64 = np.float64


@dataclass(frozen=True)
class Case:
    name: str        # the class name, used to select cases on the command line
    config: str      # a short description of this configuration
    build: Callable  # build(rng) -> (layer, inputs) or (layer, inputs, forward_kwargs)


def _normal(rng, *shape):
    return rng.standard_normal(shape)


def _off_zero(rng, *shape, margin=0.1):
    x = rng.standard_normal(shape)
    return np.sign(x) * (np.abs(x) + margin)


def _distinct(rng, *shape, gap=0.01):
    """Distinct values at least ``gap`` apart in random order: no ties in any max window."""
    return rng.permutation(np.arange(np.prod(shape)) * gap - 1.0).reshape(shape)


def _unpool(rng):
    _, idx = L.MaxPool2D(2, return_indices=True)(_distinct(rng, 2, 2, 4, 4))
    return L.MaxUnpool2D(2), (_normal(rng, 2, 2, 2, 2), idx)


def _dropout_train(rng):
    return L.Dropout(0.3, seed=1), _normal(rng, 4, 6)


def _bn_train(cls, *shape):
    def build(rng):
        bn = cls(shape[1], dtype=F64)
        bn.params["weight"][...] = rng.uniform(0.5, 2.0, shape[1])
        bn.params["bias"][...] = rng.standard_normal(shape[1])
        return bn, _normal(rng, *shape)
    return build


def _bn_eval(rng):
    bn = L.BatchNorm2D(3, dtype=F64)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2.0, 3)
    bn.params["weight"][...] = rng.uniform(0.5, 2.0, 3)
    return bn.eval(), _normal(rng, 2, 3, 4, 4)


def _resnet_block(rng):
    block = L.Sequential(L.Linear(4, 6, dtype=F64, seed=1), L.Tanh(),
                         L.Linear(6, 3, dtype=F64, seed=2))
    return L.Residual(block, L.Linear(4, 3, dtype=F64, seed=3)), _normal(rng, 5, 4)


def _dense_block(rng):
    block = L.Sequential(L.Linear(4, 3, dtype=F64, seed=1), L.Tanh())
    return L.Concat(L.Identity(), block, axis=-1), _normal(rng, 2, 3, 4)


def _recurrent(cls, seq=True, lengths=False, **kw):
    def build(rng):
        layer = cls(3, 4, return_sequences=seq, dtype=F64, seed=0, **kw)
        for p in layer.params.values():          # nonzero biases too: every tensor non-vacuous
            p[...] = 0.5 * rng.standard_normal(p.shape)
        fk = {"h0": _normal(rng, 2, 4)}
        if cls is L.LSTM:
            fk["c0"] = _normal(rng, 2, 4)
        if lengths:
            fk["lengths"] = np.array([4, 2])
        return layer, _normal(rng, 2, 4, 3), fk    # forward_kwargs: initial states are checked
    return build


def _mlp(rng):
    net = L.Sequential(L.Linear(4, 6, dtype=F64, seed=1), L.Tanh(),
                       L.Linear(6, 3, dtype=F64, seed=2), L.Softmax())
    return net, _normal(rng, 5, 4)


def _ce_ids(rng):
    return LossAsLayer(losses.CrossEntropy(), rng.integers(0, 5, size=4)), _normal(rng, 4, 5)


def _ce_probs(rng):
    t = rng.random((4, 5))
    return LossAsLayer(losses.CrossEntropy(), t / t.sum(-1, keepdims=True)), _normal(rng, 4, 5)


def _ce_seq(rng):
    loss = losses.CrossEntropy(reduction="batchmean")
    return LossAsLayer(loss, rng.integers(0, 4, size=(2, 3))), _normal(rng, 2, 3, 4)


CASES = [
    Case("Linear", "4->5, x (3, 4)", lambda r: (L.Linear(4, 5, dtype=F64, seed=0), _normal(r, 3, 4))),
    Case("Linear", "4->3 no bias, x (2, 3, 4)",
         lambda r: (L.Linear(4, 3, bias=False, dtype=F64, seed=0), _normal(r, 2, 3, 4))),
    Case("Flatten", "x (2, 3, 4, 5)", lambda r: (L.Flatten(), _normal(r, 2, 3, 4, 5))),
    Case("ReLU", "x (4, 6), |x| >= 0.1", lambda r: (L.ReLU(), _off_zero(r, 4, 6))),
    Case("LeakyReLU", "slope 0.1, x (4, 6)", lambda r: (L.LeakyReLU(0.1), _off_zero(r, 4, 6))),
    Case("Sigmoid", "x (4, 6) in [-8, 8]", lambda r: (L.Sigmoid(), r.uniform(-8, 8, (4, 6)))),
    Case("Tanh", "x (4, 6)", lambda r: (L.Tanh(), _normal(r, 4, 6))),
    Case("Softmax", "axis -1, x (3, 5)", lambda r: (L.Softmax(), 2 * _normal(r, 3, 5))),
    Case("Softmax", "axis 1, x (2, 4, 3)", lambda r: (L.Softmax(axis=1), _normal(r, 2, 4, 3))),
    Case("LogSoftmax", "axis -1, x (3, 5)", lambda r: (L.LogSoftmax(), 2 * _normal(r, 3, 5))),
    Case("Dropout", "p 0.3, train (mask frozen)", _dropout_train),
    Case("Dropout", "p 0.3, eval", lambda r: (L.Dropout(0.3).eval(), _normal(r, 4, 6))),
    Case("Sequential", "Linear-Tanh-Linear-Softmax", _mlp),
    Case("Conv1D", "2->3, k 3, stride 2, pad 1, x (2, 2, 9)",
         lambda r: (L.Conv1D(2, 3, 3, stride=2, padding=1, dtype=F64, seed=0), _normal(r, 2, 2, 9))),
    Case("Conv2D", "2->3, k 3, x (2, 2, 6, 6)",
         lambda r: (L.Conv2D(2, 3, 3, dtype=F64, seed=0), _normal(r, 2, 2, 6, 6))),
    Case("Conv2D", "2->2, k (2, 3), stride 2, pad 1, dilation (1, 2), x (1, 2, 7, 8)",
         lambda r: (L.Conv2D(2, 2, (2, 3), stride=2, padding=1, dilation=(1, 2), dtype=F64, seed=0),
                    _normal(r, 1, 2, 7, 8))),
    Case("Conv2D", "1->2, k 3, padding 'same', no bias, x (2, 1, 5, 5)",
         lambda r: (L.Conv2D(1, 2, 3, padding="same", bias=False, dtype=F64, seed=0),
                    _normal(r, 2, 1, 5, 5))),
    Case("Conv2D", "3->4, k 3, pad 1, Winograd F(4x4, 3x3), x (2, 3, 6, 7)",
         lambda r: (L.Conv2D(3, 4, 3, padding=1, algorithm="winograd", dtype=F64, seed=0),
                    _normal(r, 2, 3, 6, 7))),
    Case("Conv2D", "4->6, k 3, pad 1, groups 2, x (2, 4, 4, 5)",
         lambda r: (L.Conv2D(4, 6, 3, padding=1, groups=2, dtype=F64, seed=0),
                    _normal(r, 2, 4, 4, 5))),
    Case("Conv2D", "3->6, k 3, stride 2, depthwise (groups 3), x (2, 3, 5, 5)",
         lambda r: (L.Conv2D(3, 6, 3, stride=2, groups=3, dtype=F64, seed=0),
                    _normal(r, 2, 3, 5, 5))),
    Case("ConvTranspose2D", "4->2, k 3, stride 2, groups 2, x (2, 4, 3, 3)",
         lambda r: (L.ConvTranspose2D(4, 2, 3, stride=2, groups=2, dtype=F64, seed=0),
                    _normal(r, 2, 4, 3, 3))),
    Case("ConvTranspose2D", "2->3, k 3, stride 2, pad 1, output_padding 1, x (2, 2, 3, 4)",
         lambda r: (L.ConvTranspose2D(2, 3, 3, stride=2, padding=1, output_padding=1, dtype=F64,
                                      seed=0), _normal(r, 2, 2, 3, 4))),
    Case("Conv3D", "2->2, k 2, stride (1, 2, 2), x (1, 2, 3, 5, 5)",
         lambda r: (L.Conv3D(2, 2, 2, stride=(1, 2, 2), dtype=F64, seed=0), _normal(r, 1, 2, 3, 5, 5))),
    Case("MaxPool1D", "k 3, stride 2, pad 1, x (2, 2, 9)",
         lambda r: (L.MaxPool1D(3, stride=2, padding=1), _distinct(r, 2, 2, 9))),
    Case("MaxPool2D", "k 2, x (2, 3, 6, 6)", lambda r: (L.MaxPool2D(2), _distinct(r, 2, 3, 6, 6))),
    Case("MaxPool2D", "k (1, 2), stride 1, x (1, 2, 3, 5)",
         lambda r: (L.MaxPool2D((1, 2), stride=1), _distinct(r, 1, 2, 3, 5))),
    Case("MaxPool3D", "k 2, stride (1, 2, 2), x (1, 2, 3, 4, 4)",
         lambda r: (L.MaxPool3D(2, stride=(1, 2, 2)), _distinct(r, 1, 2, 3, 4, 4))),
    Case("AvgPool1D", "k 2, x (2, 2, 7)", lambda r: (L.AvgPool1D(2), _normal(r, 2, 2, 7))),
    Case("AvgPool2D", "k 3, stride 2, pad 1, x (2, 2, 5, 5)",
         lambda r: (L.AvgPool2D(3, stride=2, padding=1), _normal(r, 2, 2, 5, 5))),
    Case("AvgPool3D", "k 2, x (1, 2, 4, 4, 4)", lambda r: (L.AvgPool3D(2), _normal(r, 1, 2, 4, 4, 4))),
    Case("GlobalAvgPool", "x (2, 3, 4, 5)", lambda r: (L.GlobalAvgPool(), _normal(r, 2, 3, 4, 5))),
    Case("MaxUnpool2D", "k 2, indices of MaxPool2D(2) on (2, 2, 4, 4)", _unpool),
    Case("ChannelMaxPool", "groups of 3, x (2, 6, 3)",
         lambda r: (L.ChannelMaxPool(3), _distinct(r, 2, 6, 3))),
    Case("BatchNorm1D", "train, x (6, 3)", _bn_train(L.BatchNorm1D, 6, 3)),
    Case("BatchNorm1D", "train, x (3, 2, 4)", _bn_train(L.BatchNorm1D, 3, 2, 4)),
    Case("BatchNorm2D", "train, x (2, 3, 4, 4)", _bn_train(L.BatchNorm2D, 2, 3, 4, 4)),
    Case("BatchNorm2D", "eval (running stats), x (2, 3, 4, 4)", _bn_eval),
    Case("Residual", "Linear-Tanh-Linear + Linear projection", _resnet_block),
    Case("Concat", "Identity + Linear-Tanh, axis -1, x (2, 3, 4)", _dense_block),
    Case("Identity", "x (2, 3)", lambda r: (L.Identity(), _normal(r, 2, 3))),
    Case("Embedding", "10x4, ids (3, 5) with repeats",
         lambda r: (L.Embedding(10, 4, dtype=F64, seed=0), r.integers(0, 10, size=(3, 5)))),
    Case("Embedding", "6x3, padding_idx 0 (ids avoid it), ids (8,)",
         lambda r: (L.Embedding(6, 3, padding_idx=0, dtype=F64, seed=0), r.integers(1, 6, size=8))),
    Case("RNN", "tanh 3->4, x (2, 4, 3), h0", _recurrent(L.RNN)),
    Case("RNN", "relu 3->4, last step, lengths (4, 2), h0",
         _recurrent(L.RNN, seq=False, lengths=True, nonlinearity="relu")),
    Case("LSTM", "3->4, x (2, 4, 3), h0, c0", _recurrent(L.LSTM)),
    Case("LSTM", "3->4, last step, lengths (4, 2), h0, c0", _recurrent(L.LSTM, seq=False, lengths=True)),
    Case("GRU", "3->4, x (2, 4, 3), h0", _recurrent(L.GRU)),
    Case("GRU", "3->4, lengths (4, 2), h0", _recurrent(L.GRU, lengths=True)),
    Case("Bidirectional", "LSTM 3->4, x (2, 4, 3), lengths (4, 3)",
         lambda r: (L.Bidirectional(_recurrent(L.LSTM)(r)[0]), _normal(r, 2, 4, 3),
                    {"lengths": np.array([4, 3])})),
    Case("CrossEntropy", "class ids, (4, 5)", _ce_ids),
    Case("CrossEntropy", "probabilities, (4, 5)", _ce_probs),
    Case("CrossEntropy", "sequence (2, 3, 4), batchmean", _ce_seq),
    Case("MSE", "(3, 4)", lambda r: (LossAsLayer(losses.MSE(), _normal(r, 3, 4)), _normal(r, 3, 4))),
    Case("BCEWithLogits", "(3, 4)",
         lambda r: (LossAsLayer(losses.BCEWithLogits(), r.random((3, 4))), 2 * _normal(r, 3, 4))),
]


# -- dense predictions and the lectures' remaining layers ----------------------------------------

def _ce_dense(rng):
    target = rng.integers(0, 4, size=(2, 3, 3))
    target[0, 0, :2] = -100
    loss = losses.CrossEntropy(axis=1, ignore_index=-100)
    return LossAsLayer(loss, target), _normal(rng, 2, 4, 3, 3)


def _positive(rng, *shape):
    """|x| + 0.1: every power real and every window sum away from 0 (the LP kink)."""
    return np.abs(rng.standard_normal(shape)) + 0.1


CASES += [
    Case("CrossEntropy", "axis 1, (2, 4, 3, 3), ignore_index -100", _ce_dense),
    Case("LPPool1D", "p 2, k 3, stride 2, ceil_mode, x (2, 2, 8)",
         lambda r: (L.LPPool1D(2, 3, stride=2, ceil_mode=True), _normal(r, 2, 2, 8))),
    Case("LPPool2D", "p 2, k 2, x (2, 3, 4, 6)", lambda r: (L.LPPool2D(2, 2), _normal(r, 2, 3, 4, 6))),
    Case("LPPool2D", "p 3, k (2, 3), stride 1, x >= 0.1 (1, 2, 4, 5)",
         lambda r: (L.LPPool2D(3, (2, 3), stride=1), _positive(r, 1, 2, 4, 5))),
    Case("LocalResponseNorm", "size 3, alpha 0.5, beta 0.75, k 2, x (2, 5, 3, 3)",
         lambda r: (L.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=2.0), 2 * _normal(r, 2, 5, 3, 3))),
    Case("ZeroPadShortcut", "4->8, stride 2, x (2, 4, 5, 5)",
         lambda r: (L.ZeroPadShortcut(4, 8, stride=2), _normal(r, 2, 4, 5, 5))),
    Case("Reshape", "(2, 12) -> (2, 3, -1)", lambda r: (L.Reshape(3, -1), _normal(r, 2, 12))),
    Case("Permute", "(2, 3, 4, 5) -> (2, 4, 5, 3)",
         lambda r: (L.Permute(2, 3, 1), _normal(r, 2, 3, 4, 5))),
    Case("MinibatchStd", "eps 1e-8, x (3, 2, 3, 3)",
         lambda r: (L.MinibatchStd(), _normal(r, 3, 2, 3, 3))),
]


#: Layers whose cases compile the same numba kernels: their cases warm the cache together.
KERNEL_FAMILIES = {"Conv1D": "im2col", "Conv2D": "im2col", "ConvTranspose2D": "im2col",
                   "Conv3D": "im2col", "MaxPool2D": "maxpool", "MaxPool1D": "maxpool",
                   "MaxPool3D": "maxpool", "MaxUnpool2D": "maxpool", "AvgPool1D": "avgpool",
                   "AvgPool2D": "avgpool", "AvgPool3D": "avgpool", "LPPool1D": "lppool",
                   "LPPool2D": "lppool", "Bidirectional": "LSTM", "ReLU": "relu",
                   "LeakyReLU": "relu", "Sigmoid": "sigmoid_tanh", "Tanh": "sigmoid_tanh"}


def kernel_family(case: Case) -> str:
    """The group of cases that share ``case``'s numba kernels (Winograd has its own)."""
    if "Winograd" in case.config:
        return "winograd"
    return KERNEL_FAMILIES.get(case.name, case.name)


def names() -> list[str]:
    """The distinct layer and loss names with built-in cases, in order."""
    return list(dict.fromkeys(c.name for c in CASES))
