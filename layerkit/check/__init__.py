"""The gradient checker and everything around it.

- :mod:`~layerkit.check.finite_differences`: :func:`gradcheck`, numeric derivatives of ``forward``
  against what ``backward`` returns;
- :mod:`~layerkit.check.report`: the result and its table and plain-words explanations;
- :mod:`~layerkit.check.diagnosis`: named patterns of a wrong gradient (sign, factor, transpose);
- :mod:`~layerkit.check.builtin`: the cases behind ``layerkit gradcheck`` (every built-in layer);
- :mod:`~layerkit.check.adapters`: course formats (function pairs, loss functions,
  attribute-style classes) adapted to the Layer contract, :func:`as_layer`;
- :mod:`~layerkit.check.user_files`: loading a user's class or function from a file or module;
- :mod:`~layerkit.check.inputs`: the arguments a command line names, and their draws;
- :mod:`~layerkit.check.templates`: starting points for writing a layer;
- :mod:`~layerkit.check.testing`: ``assert_gradients_match`` for a test suite.

The checker knows only the Layer contract (``forward``, ``backward``, ``params``, ``grads``): it
never imports models, data or training code.
"""

from .adapters import AttributeLayer, FunctionPair, LossFunction, as_layer
from .finite_differences import ContractError, LossAsLayer, check_contract, gradcheck
from .report import GradcheckReport, Problem, TensorCheck, explain, format_table

__all__ = ["gradcheck", "GradcheckReport", "TensorCheck", "ContractError", "check_contract",
           "explain", "format_table", "LossAsLayer", "Problem", "as_layer", "FunctionPair",
           "LossFunction", "AttributeLayer"]
