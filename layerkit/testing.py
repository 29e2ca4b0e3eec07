"""Public name of :mod:`layerkit.check.testing`:
``from layerkit.testing import assert_gradients_match``."""

from .check.testing import assert_gradients_match

__all__ = ["assert_gradients_match"]
