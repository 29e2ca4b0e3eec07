"""The spec registry: builder names to builders, and :func:`build` from a spec."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from .captioning import CaptionNet
from .gan import DCGAN
from .language import NGram, char_lstm
from .segmentation import SegNet
from .sequence import Seq2Seq, SequenceClassifier
from .vision import alexnet, densenet_bc, lenet5, resnet20, vgg16, vgg_small


BUILDERS = {
    "lenet5": lenet5,
    "vgg_small": vgg_small,
    "char_lstm": char_lstm,
    "ngram": NGram,
    "seq2seq": Seq2Seq,
    "sequence_classifier": SequenceClassifier,
    "vgg16": vgg16,
    "alexnet": alexnet,
    "resnet20": resnet20,
    "densenet_bc": densenet_bc,
    "caption_net": CaptionNet,
    "segnet": SegNet,
    "dcgan": DCGAN,
}


def build(spec: Mapping):
    """Rebuild a model from its ``spec`` ``{"builder": name, "kwargs": {...}}``.

    The result has the same architecture, parameter names, shapes and dtypes as the model the
    spec came from (and the same initial weights when the spec's ``seed`` is an int); load
    trained parameters into ``model.params[name][...]`` by name (``NGram``: ``from_arrays``).

    Raises
    ------
    ValueError
        ``spec`` is not a mapping with a string ``"builder"`` and a mapping ``"kwargs"``, or the
        builder is not one of ``BUILDERS`` (the message lists them), or a kwarg has a bad value.
    TypeError
        ``kwargs`` has an argument the builder does not take, or lacks a required one (the
        message gives the builder's signature).
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("builder"), str):
        raise ValueError(f"build: expected a spec {{'builder': name, 'kwargs': {{...}}}}, got "
                         f"{spec!r}")
    name = spec["builder"]
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"build: spec['kwargs'] must be a mapping of keyword arguments, got "
                         f"{kwargs!r}")
    extra = set(spec) - {"builder", "kwargs"}
    if extra:
        raise ValueError(f"build: unexpected spec keys {sorted(extra)}; a spec has 'builder' "
                         f"and 'kwargs'")
    if name not in BUILDERS:
        raise ValueError(f"build: unknown builder {name!r}; expected one of "
                         f"{', '.join(sorted(BUILDERS))}")
    fn = BUILDERS[name]
    sig = inspect.signature(fn)
    try:
        sig.bind(**kwargs)
    except TypeError as e:
        raise TypeError(f"build: bad kwargs for {name!r}: {e}; {name} takes {sig}") from None
    return fn(**kwargs)
