"""Layer skeletons for homework: ``layerkit template NAME [--style STYLE] > my_layer.py``.

Each template is a standalone file (numpy only) with forward and backward raising
NotImplementedError, their equations in the docstrings. Three styles:

- ``layerkit``: a class in layerkit's contract (params and grads dicts, backward adds into
  grads), constructor and parameters written;
- ``cs231n``: a function pair ``foo_forward(...) -> (out, cache)`` and
  ``foo_backward(dout, cache) -> gradients``, or a loss function returning (loss, dx);
- ``mytorch``: a class with its weights as attributes (W, b) whose backward sets dLdW, dLdb.

The first docstring line is the summary; a ``Check it:`` line gives the gradcheck command.
"""

from importlib import resources

STYLES = {
    "layerkit": ("linear", "relu", "softmax", "conv2d", "maxpool2d", "rnn", "lstm"),
    "cs231n": ("linear", "relu", "softmax", "conv2d"),
    "mytorch": ("linear", "relu"),
}


def names(style: str = "layerkit") -> tuple:
    return STYLES[style]


def _path(name: str, style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"no template style {style!r}; choose from {', '.join(STYLES)}")
    if name not in STYLES[style]:
        other = [s for s, found in STYLES.items() if name in found]
        raise ValueError(f"no template named {name!r} in the {style} style; choose from "
                         f"{', '.join(STYLES[style])}"
                         + (f" ({name} exists in: {', '.join(other)})" if other else ""))
    return f"{name}.py" if style == "layerkit" else f"{style}/{name}.py"


def source(name: str, style: str = "layerkit") -> str:
    """The template's text (a runnable Python file)."""
    return resources.files(__name__).joinpath(_path(name, style)).read_text(encoding="utf-8")


def summary(name: str, style: str = "layerkit") -> str:
    """The first line of the template's module docstring."""
    first = source(name, style).split('"""', 2)[1].strip().splitlines()[0]
    return first.replace(" (template: write forward and backward).", "") \
        .replace(" (template: write the loss and dx).", "")
