"""Public name of :mod:`layerkit.train.checkpoints`: ``layerkit.checkpoint.save(model, path)``,
``load``, ``save_params``, ``load_params``."""

from .train.checkpoints import FORMAT, FORMAT_VERSION, load, load_params, save, save_params

__all__ = ["save", "load", "save_params", "load_params", "FORMAT", "FORMAT_VERSION"]
