"""Layer families, one module each."""

from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import Concat, Container, Identity, Residual, Sequential
from .conv import Conv1D, Conv2D, Conv3D, ConvTranspose2D
from .embedding import Embedding
from .linear import Flatten, Linear
from .pooling import (AvgPool1D, AvgPool2D, AvgPool3D, ChannelMaxPool, GlobalAvgPool, MaxPool1D,
                      MaxPool2D, MaxPool3D, MaxUnpool2D)
from .recurrent import GRU, LSTM, RNN, Bidirectional, RecurrentCell
from .normalization import BatchNorm1D, BatchNorm2D
from .regularization import Dropout
from .softmax import LogSoftmax, Softmax, softmax_jacobian
from .lppool import LPPool1D, LPPool2D
from .minibatch_std import MinibatchStd
from .response_norm import LocalResponseNorm
from .reshape import Permute, Reshape
from .shortcut import ZeroPadShortcut

__all__ = ["Linear", "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "softmax_jacobian", "Dropout", "Sequential", "Conv1D", "Conv2D", "Conv3D",
           "ConvTranspose2D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D",
           "AvgPool3D", "GlobalAvgPool", "MaxUnpool2D", "ChannelMaxPool",
           "BatchNorm1D", "BatchNorm2D", "Residual", "Concat", "Identity",
           "Embedding", "RNN", "LSTM", "GRU", "Bidirectional", "Container"]
__all__ += ["LPPool1D", "LPPool2D", "LocalResponseNorm", "ZeroPadShortcut", "Reshape",
            "Permute", "RecurrentCell", "MinibatchStd"]
