"""The arguments a ``layerkit gradcheck`` command line describes, by name, and their draws.

Each argument of the checked forward is one of

- a float array ``--shape NAME=d1,d2,...``: standard normal, times ``--scale`` plus ``--offset``;
- an integer array ``--int NAME=d1,...:HIGH``: uniform in [0, HIGH) (labels, ids);
- an array loaded from a file ``--input NAME=file.npy`` (ties and exact values);
- a value ``--arg NAME=JSON`` (a hyperparameter dict such as ``conv_param``), passed as it is;
- ``--forward-kwargs JSON``: keyword arguments, lists turned into arrays;
- or left to its default.

Two draws by default: the first pushes every drawn float at least 0.1 away from 0 (no kink
within a step), the second does not, so a branch taken near 0 is run too.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field

import numpy as np

from .user_files import UsageError

PUSH = 0.1          # first draw: |x| >= PUSH
HOW_TO_GIVE = ("give it with --shape NAME=d1,d2 (float array), --int NAME=d1,...:HIGH (integer "
               "array), --input NAME=file.npy or --arg NAME=JSON")


def parse_shape(text: str, option: str = "--input-shape") -> tuple:
    """'2,3,8,8' -> (2, 3, 8, 8); a UsageError naming ``option`` otherwise."""
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise UsageError(f"{option} takes positive sizes separated by commas, such as "
                         f"2,3,8,8; got {text!r}")
    return shape


def _named(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise UsageError(f"{option} takes NAME=VALUE with NAME an argument of forward, got "
                         f"{text!r}")
    return name, value


def _json(text: str, option: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{option}: not valid JSON ({e.msg} at character {e.pos}): {text!r}"
                         ) from None


def _array_from_json(value):
    """A list (nested) becomes an array: float if any element is, else integer."""
    if isinstance(value, list):
        arr = np.array(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == bool):
            return value
        return arr
    return value


def _per_name(values: list, option: str, default: float) -> dict:
    """``--scale 2`` (every input) or ``--scale x=2`` (one): {name or None: float}."""
    out = {None: default}
    for text in values:
        name, sep, number = text.rpartition("=")
        try:
            out[name if sep else None] = float(number)
        except ValueError:
            raise UsageError(f"{option} takes a number or NAME=number, got {text!r}") from None
    return out


@dataclass
class Feed:
    """Every argument the command line names: float shapes, integer shapes with their bound,
    loaded arrays, fixed values and keyword arguments, plus the scale and offset of draws."""

    shapes: dict = field(default_factory=dict)      # name -> shape
    ints: dict = field(default_factory=dict)        # name -> (shape, high or None)
    files: dict = field(default_factory=dict)       # name -> array
    values: dict = field(default_factory=dict)      # name -> JSON value
    kwargs: dict = field(default_factory=dict)      # forward keyword arguments
    scale: dict = field(default_factory=lambda: {None: 1.0})
    offset: dict = field(default_factory=lambda: {None: 0.0})

    @classmethod
    def from_args(cls, args) -> "Feed":
        feed = cls(scale=_per_name(args.scale, "--scale", 1.0),
                   offset=_per_name(args.offset, "--offset", 0.0))
        for text in args.shape:
            name, value = _named(text, "--shape")
            feed.shapes[name] = parse_shape(value, "--shape")
        for text in args.int:
            name, value = _named(text, "--int")
            dims, _, high = value.partition(":")
            try:
                bound = int(high) if high else None
            except ValueError:
                bound = 0
            if bound is not None and bound < 1:
                raise UsageError(f"--int {text}: HIGH must be a positive integer (values are "
                                 "drawn in [0, HIGH))")
            feed.ints[name] = (parse_shape(dims, "--int"), bound)
        for text in args.input:
            name, path = _named(text, "--input")
            try:
                feed.files[name] = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise UsageError(f"--input {text}: cannot load {path!r} as a .npy array ({e})"
                                 ) from None
        for text in args.arg:
            name, value = _named(text, "--arg")
            feed.values[name] = _json(value, "--arg")
        if args.forward_kwargs is not None:
            kwargs = _json(args.forward_kwargs, "--forward-kwargs")
            if not isinstance(kwargs, dict):
                raise UsageError("--forward-kwargs must be a JSON object, such as "
                                 "'{\"lengths\": [3, 2]}'")
            feed.kwargs = {k: _array_from_json(v) for k, v in kwargs.items()}
        given = [list(d) for d in (feed.shapes, feed.ints, feed.files, feed.values, feed.kwargs)]
        seen, twice = set(), set()
        for names in given:
            twice |= seen & set(names)
            seen |= set(names)
        if twice:
            raise UsageError(f"{', '.join(sorted(twice))} given twice (by --shape, --int, "
                             "--input, --arg or --forward-kwargs)")
        for name in set(feed.scale) | set(feed.offset):
            if name is not None and name not in feed.shapes:
                raise UsageError(f"--scale/--offset {name}=...: {name} is not a --shape input")
        return feed

    def names(self) -> list:
        return [*self.shapes, *self.ints, *self.files, *self.values, *self.kwargs]

    @property
    def draws_differ(self) -> bool:
        """True when a second draw would give other values (some float array is drawn)."""
        return bool(self.shapes)

    def draw(self, rng, dtype, *, near_zero: bool, default_high: int = 10) -> dict:
        """{name: value} for every named argument; floats standard normal (pushed PUSH away
        from 0 unless ``near_zero``), times the scale plus the offset, in ``dtype``."""
        out = {}
        for name, shape in self.shapes.items():
            z = rng.standard_normal(shape)
            if not near_zero:
                z = np.sign(z) * (np.abs(z) + PUSH)
            scale = self.scale.get(name, self.scale[None])
            offset = self.offset.get(name, self.offset[None])
            out[name] = (offset + scale * z).astype(dtype)
        for name, (shape, high) in self.ints.items():
            out[name] = rng.integers(0, high or default_high, size=shape)
        for name, arr in self.files.items():
            out[name] = arr.astype(dtype) if np.issubdtype(arr.dtype, np.floating) else arr
        out.update(self.values)
        out.update({k: v.astype(dtype) if isinstance(v, np.ndarray)
                    and np.issubdtype(v.dtype, np.floating) else v
                    for k, v in self.kwargs.items()})
        return out


def signature_text(fn, display: str) -> str:
    try:
        return f"{display}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return display + "(...)"


def bind(fn, display: str, named: dict) -> tuple[list, dict]:
    """Split ``named`` into forward's positional inputs (its required arguments, in order) and
    keyword arguments (the rest). A UsageError listing the signature for a required argument
    not given or a name forward does not take."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return list(named.values()), {}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    sig = signature_text(fn, display)
    unknown = [n for n in named if n not in params and not takes_kwargs]
    if unknown:
        raise UsageError(f"{sig} has no argument {', '.join(unknown)}")
    required = [n for n, p in params.items() if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    missing = [n for n in required if n not in named]
    if missing:
        raise UsageError(f"{sig} needs {', '.join(missing)}: {HOW_TO_GIVE}")
    return [named[n] for n in required], {n: v for n, v in named.items() if n not in required}


def positional_names(fn) -> list:
    """The names of forward's required positional arguments (after self)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    return [n for n, p in params.items() if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
