"""Layer skeletons for homework: ``layerkit template NAME > my_layer.py``.

Each template is a standalone file (numpy only) with the constructor and parameters written and
``forward``/``backward`` raising NotImplementedError, their equations in the docstrings. The first
docstring line is the summary; a ``Check it:`` line gives the gradcheck command for the file.
"""

from importlib import resources

_NAMES = ("linear", "relu", "softmax", "conv2d", "maxpool2d", "rnn", "lstm")


def names() -> tuple:
    return _NAMES


def source(name: str) -> str:
    """The template's text (a runnable Python file)."""
    if name not in _NAMES:
        raise ValueError(f"no template named {name!r}; choose from {', '.join(_NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")


def summary(name: str) -> str:
    """The first line of the template's module docstring."""
    first = source(name).split('"""', 2)[1].strip().splitlines()[0]
    return first.replace(" (template: write forward and backward).", "")
