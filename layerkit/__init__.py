"""layerkit: deep-learning layers with handwritten forward and backward passes.

Every layer follows one contract (see :class:`layerkit.Layer`) and is verified by finite
differences with :func:`layerkit.gradcheck`.
"""

import os as _os

# Two thread pools share the cores: numba's (parallel kernels) and OpenBLAS's (matrix products).
# By default OpenBLAS's workers keep spinning ~0.1 s after each product and OpenMP's workers
# spin while idle, stealing the core the other pool needs next: a LeNet training step ran 2.7x
# slower that way on 2 cores with one of them busy. These defaults make idle workers sleep
# (a value already set in the environment is kept). Libraries read them when they load;
# threads.settle_pools applies them to those loaded before layerkit (numpy or torch first).
for _name, _value in (("OMP_WAIT_POLICY", "PASSIVE"), ("OPENBLAS_THREAD_TIMEOUT", "4")):
    _os.environ.setdefault(_name, _value)

from . import threads as _threads  # noqa: E402
_threads.settle_pools()

from . import jit_notice as _jit_notice  # noqa: E402
_jit_notice.install()        # a cold numba cache: say on stderr that compiling takes a while

from . import init, layers  # noqa: E402
from .check import GradcheckReport, gradcheck
from .grad_mode import enable_grad, grad_enabled, no_grad
from .layer import Layer
from .layers import *  # noqa: F401,F403 - every public layer, listed in layers.__all__
from .losses import BCEWithLogits, CrossEntropy, MSE
from .optim import SGD, Adam, WeightAverage, clip_grad_norm, clip_grad_value

from . import check  # noqa: E402 - it uses the above

# Imported on first use (``layerkit.models``, ``from layerkit import train``): a gradient check
# or a script that builds layers does not pay for the data loaders, recipes and model builders.
_LAZY = ("checkpoint", "data", "interop", "models", "testing", "train")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = ["Layer", *layers.__all__, "CrossEntropy", "MSE", "BCEWithLogits", "SGD", "Adam",
           "WeightAverage", "clip_grad_norm", "clip_grad_value", "gradcheck", "GradcheckReport",
           "no_grad", "enable_grad", "grad_enabled",
           "init", "check", "checkpoint", "data", "models", "testing", "train"]
