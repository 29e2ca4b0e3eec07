"""Find, build and feed a layer named on the command line (``layerkit gradcheck REF ...``).

A reference is a built-in class name (``Conv2D``), a file and a class (``my_layers.py:MyConv``)
or an importable module and a class (``package.module:MyConv``). Everything that can go wrong
before the check itself raises :class:`UsageError` with a message meant for the person typing.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np


class UsageError(Exception):
    """A mistake in the command (bad path, unknown class, bad JSON, a layer that raises)."""


def load_class(ref: str):
    """The class a reference names: ``path.py:Class``, ``module:Class`` or a built-in name."""
    if ":" not in ref and ref.endswith(".py"):
        module = _module_from_file(Path(ref), ref)
        found = _classes(module)
        raise UsageError(f"name the class to check: {ref}:ClassName"
                         + (f" (classes defined in {ref}: {', '.join(found)})" if found else ""))
    if ":" not in ref:
        import layerkit
        cls = getattr(layerkit, ref, None)
        if not isinstance(cls, type):
            raise UsageError(f"no built-in layer named {ref!r}; a layer of your own is named "
                             "with its file or module: my_layers.py:MyLayer or package.module:MyLayer")
        return cls
    where, _, name = ref.rpartition(":")
    if not name:
        raise UsageError(f"{ref!r} names no class: write {where}:ClassName")
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _module_from_file(Path(where), ref)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())       # a module next to the user, as python -m does
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise UsageError(f"cannot import module {where!r} (from {ref!r}): {e}. Run the "
                             "command from the directory that contains it, or name the file: "
                             f"path/to/{where.split('.')[-1]}.py:{name}") from None
        except Exception as e:
            raise _raised(e, f"importing {where}") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        found = _classes(module)
        raise UsageError(f"{where} has no class {name!r}"
                         + (f"; classes defined there: {', '.join(found)}" if found else ""))
    return cls


def _classes(module) -> list:
    return [n for n, v in vars(module).items()
            if isinstance(v, type) and v.__module__ == module.__name__]


def _module_from_file(path: Path, ref: str):
    if not path.is_file():
        raise UsageError(f"no file {str(path)!r} (from {ref!r})")
    path = path.resolve()
    module_name = f"_layerkit_user_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module                 # dataclasses and pickling look here
    sys.path.insert(0, str(path.parent))              # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise _raised(e, f"running {path.name}") from None
    return module


def parse_init(text: str | None) -> dict:
    """The ``--init`` JSON object of constructor keyword arguments."""
    if text is None:
        return {}
    try:
        init = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--init is not valid JSON ({e.msg} at character {e.pos}): {text!r}; "
                         "write an object such as '{\"in_features\": 4, \"out_features\": 3}'"
                         ) from None
    if not isinstance(init, dict):
        raise UsageError(f"--init must be a JSON object of keyword arguments, got {text!r}")
    return init


def build_layer(cls, init: dict, dtype: np.dtype, seed: int):
    """``cls(**init)``, adding ``dtype`` (and ``seed``) when the constructor takes them, then
    ``astype(dtype)`` if its parameters still have another dtype and it has ``astype``."""
    kwargs = dict(init)
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = {}
    if "dtype" in accepted and "dtype" not in kwargs:
        kwargs["dtype"] = dtype
    if "seed" in accepted and "seed" not in kwargs:
        kwargs["seed"] = seed
    try:
        if accepted:
            inspect.signature(cls).bind(**kwargs)
    except TypeError as e:
        required = [p.name for p in accepted.values() if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        raise UsageError(f"cannot build {cls.__name__} from --init {json.dumps(init)}: {e}. "
                         f"Its constructor takes ({', '.join(accepted)})"
                         + (f" and needs {', '.join(required)}" if required else "")) from None
    try:
        layer = cls(**kwargs)
    except Exception as e:
        raise _raised(e, f"{cls.__name__}(**{json.dumps(init)})") from None
    params = getattr(layer, "params", None)
    if isinstance(params, dict) and any(np.asarray(p).dtype != dtype for p in params.values()) \
            and callable(getattr(layer, "astype", None)):
        layer.astype(dtype)
    return layer


def parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise UsageError(f"--input-shape takes positive sizes separated by commas, such as "
                         f"2,3,8,8; got {text!r}")
    return shape


def make_inputs(layer, shapes, dtypes, dtype, rng) -> tuple:
    """Random inputs: floats are standard normal pushed at least 0.1 away from 0 (no ReLU kink
    within the step); integers are uniform in [0, K) with K the layer's ``num_embeddings`` or
    ``num_classes`` if it has one, else 10."""
    if not shapes:
        raise UsageError(f"{type(layer).__name__}: say what to feed it with --input-shape, "
                         "e.g. --input-shape 2,3,8,8 (repeat it for a layer with several inputs)")
    if len(dtypes) > len(shapes):
        raise UsageError(f"{len(dtypes)} --input-dtype for {len(shapes)} --input-shape")
    dtypes = list(dtypes) + ["float"] * (len(shapes) - len(dtypes))
    inputs = []
    for shape, kind in zip(shapes, dtypes):
        if kind in ("float", "float64", "float32"):
            x = rng.standard_normal(shape)
            inputs.append((np.sign(x) * (np.abs(x) + 0.1)).astype(dtype))
        elif kind in ("int", "int64", "int32"):
            high = getattr(layer, "num_embeddings", None) or getattr(layer, "num_classes", None) or 10
            inputs.append(rng.integers(0, int(high), size=shape).astype(
                np.int32 if kind == "int32" else np.int64))
        else:
            raise UsageError(f"--input-dtype must be float, float32, float64, int, int32 or "
                             f"int64, got {kind!r}")
    return tuple(inputs)


_PACKAGE_DIR = Path(__file__).resolve().parent.parent   # frames inside layerkit are not the user's


def _user_frames(e: BaseException) -> list:
    """The traceback's frames outside layerkit itself: where the user's code is."""
    return [f for f in traceback.extract_tb(e.__traceback__)
            if _PACKAGE_DIR not in Path(f.filename).resolve().parents]


def _raised(e: BaseException, doing: str) -> UsageError:
    """A UsageError telling where the user's code raised, keeping the original for --traceback."""
    where = ""
    frames = _user_frames(e)
    if frames:
        f = frames[-1]
        where = f" ({Path(f.filename).name}, line {f.lineno}, in {f.name})"
    err = UsageError(f"{doing} raised {type(e).__name__}: {e}{where}")
    err.__cause__ = e
    return err


def raised_in_check(e: BaseException, layer) -> UsageError:
    """Explain an exception that the layer's forward or backward raised during the check."""
    name = type(layer).__name__
    frames = traceback.extract_tb(e.__traceback__)
    method = next((f.name for f in frames if f.name in ("forward", "backward")), None)
    user = _user_frames(e)
    last = user[-1] if user else None      # none: a built-in layer rejected its input
    where = f"{Path(last.filename).name}, line {last.lineno}" if last else ""
    if isinstance(e, NotImplementedError) and method:
        err = UsageError(f"{name}.{method} is not implemented yet (NotImplementedError at "
                         f"{where}). Write it, then run this command again.")
    else:
        what = f"{name}.{method}" if method else f"checking {name}"
        err = UsageError(f"{what} raised {type(e).__name__}: {e}"
                         + (f" ({where}, in {last.name})" if last else ""))
    err.__cause__ = e
    return err
