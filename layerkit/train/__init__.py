"""Training: the fit loop, evaluation metrics, progress display, checkpoints and the recipes
behind ``layerkit train``.

:func:`fit` trains any object with ``forward``/``backward`` and ``params``/``grads`` (a layer, a
:class:`~layerkit.layers.containers.Sequential`, a model from :mod:`layerkit.models`) with a loss
from :mod:`layerkit.losses` and an optimizer from :mod:`layerkit.optim`, and returns a
:class:`History` of per-epoch records. :func:`evaluate` computes the loss and metrics of a data
set. Checkpoints (:func:`save`, :func:`load`, :func:`save_params`, :func:`load_params`) live in
:mod:`layerkit.train.checkpoints` (also reachable as :mod:`layerkit.checkpoint`).

Modules: :mod:`~layerkit.train.loop` (``fit``), :mod:`~layerkit.train.metrics` (``evaluate``),
:mod:`~layerkit.train.history`, :mod:`~layerkit.train.progress`,
:mod:`~layerkit.train.checkpoints`, :mod:`~layerkit.train.recipes` (and the recipes of their
own modules, :mod:`~layerkit.train.recipe_caption`, :mod:`~layerkit.train.recipe_segnet`),
:mod:`~layerkit.train.steps` (a run counted in steps), :mod:`~layerkit.train.scores` (BLEU,
IoU).
"""

from .checkpoints import FORMAT, FORMAT_VERSION, load, load_params, save, save_params
from .history import METRICS, History
from .loop import fit
from .metrics import evaluate

__all__ = ["fit", "evaluate", "History", "METRICS", "save", "load", "save_params",
           "load_params", "FORMAT", "FORMAT_VERSION"]
