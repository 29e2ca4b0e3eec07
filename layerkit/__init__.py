"""layerkit: deep-learning layers with handwritten forward and backward passes.

Every layer follows one contract (see :class:`layerkit.Layer`) and is verified by finite
differences with :func:`layerkit.gradcheck`.
"""

from . import init
from .gradcheck import GradcheckReport, gradcheck
from .layer import Layer
from .layers import (Conv1D, Conv2D, Conv3D, Dropout, Flatten, LeakyReLU, Linear, LogSoftmax, ReLU, Sequential, Sigmoid,
                     Softmax, Tanh, softmax_jacobian)
from .losses import BCEWithLogits, CrossEntropy, MSE
from .optim import SGD, Adam, clip_grad_norm, clip_grad_value

__version__ = "0.1.0"

__all__ = [
    "Layer", "Linear", "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "softmax_jacobian", "Dropout", "Sequential", "Conv1D", "Conv2D", "Conv3D", "CrossEntropy", "MSE", "BCEWithLogits", "SGD",
    "Adam", "clip_grad_norm", "clip_grad_value", "gradcheck", "GradcheckReport", "init",
]
