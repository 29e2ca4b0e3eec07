"""One small example of every public layer: how to build it and the input shape it takes.

Shared by the cross-cutting tests (bad dy, empty batches, inputs changed after forward,
threads, fuzzing). ``make(dtype)`` builds the layer with float64 or float32 parameters;
``shape`` is the input's with the batch axis first.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

import layerkit as lk


class Case(NamedTuple):
    name: str
    make: Callable            # make(dtype) -> layer
    shape: tuple              # input shape, batch axis first
    ids: int = 0              # > 0: the input is integer ids below this (Embedding)


def _seq(dt):
    return lk.Sequential(lk.Conv2D(2, 3, 3, padding=1, dtype=dt, seed=0), lk.ReLU(),
                         lk.MaxPool2D(2), lk.Flatten(), lk.Linear(12, 2, dtype=dt, seed=1))


CASES = [
    Case("Linear", lambda dt: lk.Linear(3, 4, dtype=dt, seed=0), (2, 3)),
    Case("Linear3d", lambda dt: lk.Linear(3, 4, dtype=dt, seed=0), (2, 5, 3)),
    Case("Flatten", lambda dt: lk.Flatten(), (2, 3, 2, 2)),
    Case("ReLU", lambda dt: lk.ReLU(), (2, 3, 4)),
    Case("LeakyReLU", lambda dt: lk.LeakyReLU(0.1), (2, 3, 4)),
    Case("Sigmoid", lambda dt: lk.Sigmoid(), (2, 5)),
    Case("Tanh", lambda dt: lk.Tanh(), (2, 5)),
    Case("Softmax", lambda dt: lk.Softmax(), (2, 5)),
    Case("LogSoftmax", lambda dt: lk.LogSoftmax(axis=1), (2, 5, 3)),
    Case("Dropout", lambda dt: lk.Dropout(0.5, seed=0), (2, 6)),
    Case("BatchNorm1D", lambda dt: lk.BatchNorm1D(3, dtype=dt), (4, 3)),
    Case("BatchNorm2D", lambda dt: lk.BatchNorm2D(2, dtype=dt), (3, 2, 3, 3)),
    Case("Conv1D", lambda dt: lk.Conv1D(2, 3, 3, padding=1, dtype=dt, seed=0), (2, 2, 7)),
    Case("Conv2D", lambda dt: lk.Conv2D(2, 3, 3, stride=2, dtype=dt, seed=0), (2, 2, 7, 7)),
    Case("Conv2DWinograd", lambda dt: lk.Conv2D(2, 3, 3, padding=1, dtype=dt, seed=0,
                                                algorithm="winograd"), (2, 2, 6, 6)),
    Case("Conv2DWinogradUnpadded", lambda dt: lk.Conv2D(2, 3, 3, dtype=dt, seed=0,
                                                        algorithm="winograd"), (2, 2, 6, 6)),
    Case("Conv2DGrouped", lambda dt: lk.Conv2D(4, 6, 3, padding=1, groups=2, dtype=dt, seed=0),
         (2, 4, 5, 5)),
    Case("Conv2DDepthwise", lambda dt: lk.Conv2D(3, 3, 3, stride=2, groups=3, dtype=dt, seed=0),
         (2, 3, 7, 7)),
    Case("Conv1DGrouped", lambda dt: lk.Conv1D(4, 2, 3, groups=2, dtype=dt, seed=0), (2, 4, 6)),
    Case("Conv3D", lambda dt: lk.Conv3D(2, 2, 2, dtype=dt, seed=0), (2, 2, 3, 3, 3)),
    Case("ConvTranspose2DGrouped", lambda dt: lk.ConvTranspose2D(4, 2, 3, stride=2, groups=2,
                                                                 dtype=dt, seed=0), (2, 4, 3, 3)),
    Case("ConvTranspose2D", lambda dt: lk.ConvTranspose2D(2, 3, 3, stride=2, dtype=dt, seed=0),
         (2, 2, 3, 3)),
    Case("MaxPool1D", lambda dt: lk.MaxPool1D(2), (2, 2, 6)),
    Case("MaxPool2D", lambda dt: lk.MaxPool2D(2), (2, 2, 4, 4)),
    Case("MaxPool2D3", lambda dt: lk.MaxPool2D(3, stride=2, padding=1), (2, 2, 5, 5)),
    Case("MaxPool3D", lambda dt: lk.MaxPool3D(2), (2, 2, 4, 4, 4)),
    Case("AvgPool1D", lambda dt: lk.AvgPool1D(2), (2, 2, 6)),
    Case("AvgPool2D", lambda dt: lk.AvgPool2D(2, padding=1), (2, 2, 4, 4)),
    Case("AvgPool3D", lambda dt: lk.AvgPool3D(2), (2, 2, 4, 4, 4)),
    Case("GlobalAvgPool", lambda dt: lk.GlobalAvgPool(), (2, 3, 4, 4)),
    Case("ChannelMaxPool", lambda dt: lk.ChannelMaxPool(2), (2, 4, 3)),
    Case("RNN", lambda dt: lk.RNN(3, 4, dtype=dt, seed=0), (2, 5, 3)),
    Case("RNNLast", lambda dt: lk.RNN(3, 4, return_sequences=False, dtype=dt, seed=0), (2, 5, 3)),
    Case("LSTM", lambda dt: lk.LSTM(3, 4, dtype=dt, seed=0), (2, 5, 3)),
    Case("GRU", lambda dt: lk.GRU(3, 4, dtype=dt, seed=0), (2, 5, 3)),
    Case("Bidirectional", lambda dt: lk.Bidirectional(lk.GRU(3, 4, dtype=dt, seed=0)), (2, 5, 3)),
    Case("Embedding", lambda dt: lk.Embedding(7, 4, dtype=dt, seed=0), (2, 5), ids=7),
    Case("Identity", lambda dt: lk.Identity(), (2, 3)),
    Case("Sequential", _seq, (2, 2, 4, 4)),
    Case("Residual", lambda dt: lk.Residual(lk.Linear(3, 3, dtype=dt, seed=0)), (2, 3)),
    Case("ResidualProjection", lambda dt: lk.Residual(lk.Linear(3, 4, dtype=dt, seed=0),
                                                      lk.Linear(3, 4, dtype=dt, seed=1)), (2, 3)),
    Case("Concat", lambda dt: lk.Concat(lk.Identity(), lk.Linear(3, 2, dtype=dt, seed=0),
                                        axis=-1), (2, 3)),
    Case("ConcatSequential", lambda dt: lk.Sequential(lk.Identity(), lk.Linear(3, 2, dtype=dt,
                                                                               seed=0)), (2, 3)),
    Case("LPPool1D", lambda dt: lk.LPPool1D(2, 3, stride=2), (2, 2, 7)),
    Case("LPPool2D", lambda dt: lk.LPPool2D(2, 2), (2, 2, 4, 4)),
    Case("LocalResponseNorm", lambda dt: lk.LocalResponseNorm(3), (2, 4, 3, 3)),
    Case("ZeroPadShortcut", lambda dt: lk.ZeroPadShortcut(2, 4, stride=2), (2, 2, 4, 4)),
    Case("Reshape", lambda dt: lk.Reshape(3, -1), (2, 12)),
    Case("Permute", lambda dt: lk.Permute(2, 3, 1), (2, 3, 4, 5)),
    Case("MinibatchStd", lambda dt: lk.MinibatchStd(), (3, 2, 4, 4)),
]


def example_input(case: Case, rng, dtype=np.float64, shape=None) -> np.ndarray:
    """A random input for ``case`` (``shape`` overrides the case's)."""
    shape = case.shape if shape is None else shape
    if case.ids:
        return rng.integers(0, case.ids, size=shape)
    return rng.standard_normal(shape).astype(dtype)


def output(y):
    """y of a forward that may return (y, states...)."""
    return y[0] if isinstance(y, tuple) else y
