"""Find, build and feed a layer named on the command line (``layerkit gradcheck REF ...``).

A reference is a built-in class name (``Conv2D``), a file and a class or function
(``my_layers.py:MyConv``, ``layers.py:conv_forward_naive``) or an importable module and a name
(``package.module:MyConv``). Importing a file runs its top-level code, so the import is bounded
by a timeout. Everything that can go wrong
before the check itself raises :class:`UsageError` with a message meant for the person typing.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import json
import os
import signal
import sys
import sysconfig
import threading
import traceback
from pathlib import Path

import numpy as np


class UsageError(Exception):
    """A mistake in the command (bad path, unknown class, bad JSON, a layer that raises)."""


def load_object(ref: str, *, import_timeout: float | None = None) -> tuple:
    """``(obj, namespace)``: the class or function a reference names (``path.py:Name``,
    ``module:Name`` or a built-in layer's name) and the namespace of the file or module it was
    found in (where a forward function's backward partner is looked up). Importing the user's
    file runs its module-level code: it is bounded by ``import_timeout`` seconds."""
    if ":" not in ref and ref.endswith(".py"):
        module = _module_from_file(Path(ref), ref, import_timeout)
        found = _defined(module)
        raise UsageError(f"name the class or function to check: {ref}:Name"
                         + (f" (defined in {ref}: {', '.join(found)})" if found else ""))
    if ":" not in ref:
        import layerkit
        cls = getattr(layerkit, ref, None)
        if not isinstance(cls, type):
            raise UsageError(f"no built-in layer named {ref!r}; a layer of your own is named "
                             "with its file or module: my_layers.py:MyLayer or package.module:MyLayer")
        return cls, vars(layerkit)
    where, _, name = ref.rpartition(":")
    if not name:
        raise UsageError(f"{ref!r} names no class or function: write {where}:Name")
    module = load_module(where, ref, import_timeout)
    obj = getattr(module, name, None)
    if not (isinstance(obj, type) or inspect.isfunction(obj)):
        found = _defined(module)
        raise UsageError(f"{where} has no class or function {name!r}"
                         + (f"; defined there: {', '.join(found)}" if found else ""))
    return obj, vars(module)


def load_module(where: str, ref: str, import_timeout: float | None = None):
    """The module of a reference's ``where`` part: a file path or an importable module."""
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _module_from_file(Path(where), ref, import_timeout)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())       # a module next to the user, as python -m does
        try:
            module = run_bounded(lambda: importlib.import_module(where), import_timeout,
                                 where)
        except ModuleNotFoundError as e:
            raise UsageError(f"cannot import module {where!r} (from {ref!r}): {e}. Run the "
                             "command from the directory that contains it, or name the file: "
                             f"path/to/{where.split('.')[-1]}.py:{ref.rpartition(':')[2]}"
                             ) from None
        except UsageError:
            raise
        except Exception as e:
            raise _raised(e, f"importing {where}", hint=GUARD_HINT) from None
    return module


def _defined(module) -> list:
    """Names of the classes and functions defined in ``module`` itself (not imported)."""
    return [n for n, v in vars(module).items()
            if (isinstance(v, type) or inspect.isfunction(v)) and not n.startswith("_")
            and v.__module__ == module.__name__]


GUARD_HINT = ('Code at the top level of a file runs when the file is imported; put what '
              'should run only as a script (training, reading input.txt, prints) under '
              '`if __name__ == "__main__":` so that the command can import the file without '
              'running it.')


def run_bounded(fn, seconds: float | None, what: str):
    """``fn()``, stopped with a UsageError after ``seconds`` (None: unbounded), with the
    standard input closed (an ``input()`` at import raises EOFError instead of waiting).

    On the main thread of a POSIX system an interval timer interrupts ``fn`` (it is stopped);
    elsewhere ``fn`` runs on a daemon thread that is abandoned when the time is up."""
    timeout = UsageError(f"importing {what} did not finish within {seconds:g} s "
                         "(--import-timeout). " + GUARD_HINT) if seconds else None
    stdin, sys.stdin = sys.stdin, io.StringIO()
    try:
        if not seconds:
            return fn()
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            def expire(signum, frame):
                raise _ImportTimeout
            previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                return fn()
            except _ImportTimeout:
                raise timeout from None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        result = {}

        def target():
            try:
                result["value"] = fn()
            except BaseException as e:          # handed to the caller's thread
                result["error"] = e
        thread = threading.Thread(target=target, daemon=True, name=f"import {what}")
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            raise timeout
        if "error" in result:
            raise result["error"]
        return result["value"]
    finally:
        sys.stdin = stdin


class _ImportTimeout(BaseException):
    """Raised inside the user's module code by the import timer (not an Exception, so that a
    bare ``except Exception`` in their file does not swallow it)."""


def _module_from_file(path: Path, ref: str, import_timeout: float | None = None):
    if not path.is_file():
        raise UsageError(f"no file {str(path)!r} (from {ref!r})")
    path = path.resolve()
    module_name = f"_layerkit_user_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module                 # dataclasses and pickling look here
    sys.path.insert(0, str(path.parent))              # the file may import its neighbours
    try:
        run_bounded(lambda: spec.loader.exec_module(module), import_timeout, path.name)
    except UsageError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise _raised(e, f"running {path.name}", hint=GUARD_HINT) from None
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
    np.random.seed(seed)          # weights drawn from the global np.random state are reproducible
    try:
        layer = cls(**kwargs)
    except Exception as e:
        raise _raised(e, f"{cls.__name__}(**{json.dumps(init)})") from None
    params = getattr(layer, "params", None)
    if isinstance(params, dict) and any(np.asarray(p).dtype != dtype for p in params.values()) \
            and callable(getattr(layer, "astype", None)):
        layer.astype(dtype)
    return layer


_PACKAGE_DIR = Path(__file__).resolve().parent.parent   # frames inside layerkit are not the user's
_LIBRARY_DIRS = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "purelib",
                                                                    "platlib")}


def _is_user_file(filename: str) -> bool:
    """A frame's file is the user's: not layerkit, not the standard library or an installed
    package (numpy's internals), not ``<string>``-like code."""
    path = Path(filename).resolve()
    parents = set(path.parents)
    return path.is_file() and _PACKAGE_DIR not in parents and not parents & _LIBRARY_DIRS


def _user_frames(e: BaseException) -> list:
    """The traceback's frames in the user's own files, outermost first."""
    return [f for f in traceback.extract_tb(e.__traceback__) if _is_user_file(f.filename)]


def _where(frame) -> str:
    return f"{Path(frame.filename).name}, line {frame.lineno}, in {frame.name}: {frame.line}" \
        if frame.line else f"{Path(frame.filename).name}, line {frame.lineno}, in {frame.name}"


def _raised(e: BaseException, doing: str, hint: str = "") -> UsageError:
    """A UsageError telling where the user's code raised (the deepest frame in their own
    files), keeping the original for --traceback."""
    frames = _user_frames(e)
    where = f" ({_where(frames[-1])})" if frames else ""
    err = UsageError(f"{doing} raised {type(e).__name__}: {e}{where}" + (f". {hint}" if hint
                                                                        else ""))
    err.__cause__ = e
    return err


def readable_name(layer) -> str:
    """The student's name for what is checked: its repr when the class defines one, else the
    class name (never ``<module.Class object at 0x...>``)."""
    if type(layer).__repr__ is not object.__repr__:
        return repr(layer)
    return type(layer).__name__


def raised_in_check(e: BaseException, layer) -> UsageError:
    """Explain an exception that the layer's forward or backward raised during the check,
    naming the student's function (``conv_backward_naive``) or method (``Linear.backward``)
    and the deepest line of their own file."""
    from .adapters import AdapterError

    if isinstance(e, AdapterError):            # the student's function does not fit its format
        err = UsageError(str(e))
        err.__cause__ = e
        return err
    frames = traceback.extract_tb(e.__traceback__)
    method = next((f.name for f in frames if f.name in ("forward", "backward")), None)
    names = getattr(layer, "callable_names", None) or {
        m: f"{readable_name(layer).split('(')[0]}.{m}" for m in ("forward", "backward")}
    user = _user_frames(e)
    last = user[-1] if user else None      # none: a built-in layer rejected its input
    what = names[method] if method else f"checking {readable_name(layer)}"
    if isinstance(e, NotImplementedError) and method:
        at = f" (NotImplementedError at {Path(last.filename).name}, line {last.lineno})" \
            if last else f" ({e})"
        err = UsageError(f"{what} is not implemented yet{at}. Write it, then run this command "
                         "again.")
    else:
        err = UsageError(f"{what} raised {type(e).__name__}: {e}"
                         + (f" ({_where(last)})" if last else ""))
    err.__cause__ = e
    return err
