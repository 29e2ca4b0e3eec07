"""layerkit: deep-learning layers with handwritten forward and backward passes.

Every layer follows one contract (see :class:`layerkit.Layer`) and is verified by finite
differences with :func:`layerkit.gradcheck`.
"""

from . import init, layers
from .gradcheck import GradcheckReport, gradcheck
from .layer import Layer
from .layers import *  # noqa: F401,F403 - every public layer, listed in layers.__all__
from .losses import BCEWithLogits, CrossEntropy, MSE
from .optim import SGD, Adam, clip_grad_norm, clip_grad_value

from . import checkpoint, data, models, testing, train  # noqa: E402 - they use the above

__version__ = "0.1.0"

__all__ = ["Layer", *layers.__all__, "CrossEntropy", "MSE", "BCEWithLogits", "SGD", "Adam",
           "clip_grad_norm", "clip_grad_value", "gradcheck", "GradcheckReport", "init",
           "checkpoint", "data", "models", "testing", "train"]
