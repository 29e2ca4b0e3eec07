"""Checkpoints: a model with its architecture, or only its parameters, in one ``.npz`` file.

:func:`save` / :func:`load` write and read a model with its architecture (its ``spec``, rebuilt
by :func:`layerkit.models.build`); :func:`save_params` / :func:`load_params` only the parameters,
into an existing model.

Checkpoint format (version 2)
-----------------------------
An uncompressed ``.npz`` archive (``np.savez``; read with ``allow_pickle=False``, so no entry is
a Python object) with these entries, each a numpy array:

- ``format``: 0-d str, ``"layerkit-checkpoint"``.
- ``format_version``: 0-d int64, ``2``.
- ``spec``: 0-d str, the model's ``spec`` as JSON (``"null"`` for :func:`save_params`).
- ``meta``: 0-d str, a JSON object of free-form metadata (epochs, metrics, vocabulary, ...).
- ``digest``: 0-d str, 64 lowercase hex digits of SHA-256 (below).
- ``param/<name>``: one entry per key of ``model.params`` (dotted names such as
  ``param/0.weight``), the array with its dtype and shape, C order.
- ``buffer/<name>``: one entry per key of ``model.buffers``: state that is not a parameter but
  changes the output (batch norm's ``running_mean`` and ``running_var``), so a model loads bit
  for bit in ``eval()`` mode too. Version 1 files have none; loading one leaves the model's
  buffers as they are.

JSON is written with ``sort_keys=True`` and no NaN/infinity.

The digest is SHA-256 over a sequence of fields, each written as its length in bytes (8-byte
little-endian unsigned) followed by the bytes: ``b"layerkit-checkpoint"``, the version as ASCII
decimal, the stored spec and meta strings (UTF-8); then for every parameter name in sorted
(code point) order, buffers named ``buffer/<name>`` among them: the name (UTF-8), the dtype
string (``arr.dtype.str``, e.g. ``"<f4"``),
the shape as ASCII (``"3,4"``; ``""`` for a scalar), and the raw C-order bytes of the array.
Reading checks the
archive, the version, the digest and the names, shapes and dtypes against the model before any
parameter is assigned, so a bad file raises ``ValueError`` and leaves the model untouched.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile

import numpy as np

__all__ = ["save", "load", "save_params", "load_params", "FORMAT", "FORMAT_VERSION"]

FORMAT = "layerkit-checkpoint"
FORMAT_VERSION = 2
_PARAM = "param/"
_BUFFER = "buffer/"
_HEADER = ("format", "format_version", "spec", "meta", "digest")


def _field(h, data: bytes) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _digest(version: int, spec_json: str, meta_json: str, params: dict) -> str:
    """SHA-256 of the checkpoint's contents, as documented in the module docstring."""
    h = hashlib.sha256()
    for text in (FORMAT, str(version), spec_json, meta_json):
        _field(h, text.encode("utf-8"))
    for name in sorted(params):
        a = np.ascontiguousarray(params[name])
        _field(h, name.encode("utf-8"))
        _field(h, a.dtype.str.encode("ascii"))
        _field(h, ",".join(str(d) for d in a.shape).encode("ascii"))
        _field(h, a.tobytes())
    return h.hexdigest()


def _json(who: str, what: str, value) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{who}: {what} must be JSON-serialisable, got {value!r} "
                         f"({err})") from None


def _model_params(who: str, model) -> dict:
    if callable(getattr(model, "to_arrays", None)) and not hasattr(model, "params"):
        return model.to_arrays()            # a count-based model (NGram): its counts
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError(f"{who}: expected a model with a params dict, got {type(model).__name__}")
    for name, p in params.items():
        if not isinstance(name, str) or not isinstance(p, np.ndarray):
            raise TypeError(f"{who}: expected params of str names and numpy arrays, got "
                            f"{name!r}: {type(p).__name__}")
    return params


def _model_buffers(model) -> dict:
    """The model's buffers under ``buffer/<name>`` (none for a model without any)."""
    buffers = getattr(model, "buffers", None)
    return {_BUFFER + k: v for k, v in buffers.items()} if isinstance(buffers, dict) else {}


def _write(who: str, model, path, spec, meta) -> None:
    params = {**_model_params(who, model), **_model_buffers(model)}
    spec_json = _json(who, "the model's spec", spec)
    if meta is None:
        meta = getattr(model, "meta", None) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{who}: meta must be a dict, got {type(meta).__name__}")
    meta_json = _json(who, "meta", meta)
    arrays = {name: np.ascontiguousarray(p) for name, p in params.items()}
    entries = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "spec": np.array(spec_json),
        "meta": np.array(meta_json),
        "digest": np.array(_digest(FORMAT_VERSION, spec_json, meta_json, arrays)),
        **{(name if name.startswith(_BUFFER) else _PARAM + name): a
           for name, a in arrays.items()},
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who}: cannot write {path!r}: the folder {folder!r} does not "
                                f"exist (create it first)")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())      # mkstemp's 0600 -> the mode of any new file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save(model, path, *, meta=None) -> None:
    """Write ``model`` with its architecture to ``path`` (a ``.npz`` checkpoint, atomically).

    Parameters
    ----------
    model : object
        Must have ``spec``, a JSON-serialisable dict such as ``{"builder": "lenet5", "kwargs":
        {...}}`` from which :func:`layerkit.models.build` rebuilds it, and ``params`` — or,
        for a count-based model without parameters (``NGram``), ``to_arrays()`` /
        ``from_arrays(arrays)``, whose arrays are stored as the ``param/`` entries.
    path : str or path-like
        Written exactly as given (no suffix is added), via a temporary file in the same folder
        and ``os.replace``, so a crash never leaves a half-written checkpoint.
    meta : dict, optional
        JSON-serialisable metadata (epochs, metrics, vocabulary, ...). None: the model's ``meta``
        attribute if it has one (as set by :func:`load`), else ``{}``.

    The file format is described in the module docstring. A model without
    ``spec`` raises ``ValueError``: use :func:`save_params`.
    """
    who = "save"
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError(f"{who}: {type(model).__name__} has no spec attribute, so load() could "
                         f"not rebuild it; use save_params(model, path) and "
                         f"load_params(model, path) instead")
    if not isinstance(spec, dict):
        raise ValueError(f"{who}: model.spec must be a dict, got {type(spec).__name__}")
    _write(who, model, path, spec, meta)


def save_params(model, path, *, meta=None) -> None:
    """Write only the parameters of ``model`` to ``path`` (same format as :func:`save`, with
    spec ``null``); read them back into a model of the same architecture with
    :func:`load_params`. ``meta`` as in :func:`save`."""
    _write("save_params", model, path, None, meta)


def _read(who: str, path) -> tuple[dict | None, dict, dict, bool]:
    """Read and verify a checkpoint: (spec, meta, params and buffers, whether the file stores
    buffers), or ValueError naming the file."""
    path = os.fspath(path)
    where = f"{who}: checkpoint {path!r}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) == 4 and head != b"PK\x03\x04":          # every .npz is a zip archive
            raise ValueError(f"{where} is not a layerkit checkpoint (not an .npz archive); "
                             f"checkpoints are written by `layerkit train` and save()")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("it holds a single array, not an .npz archive")
            entries = {k: f[k] for k in f.files}
    except Exception as err:
        raise ValueError(f"{where} cannot be read: it is corrupted, truncated or not a layerkit "
                         f"checkpoint ({type(err).__name__}: {err})") from err
    missing = [k for k in _HEADER if k not in entries]
    if missing:
        raise ValueError(f"{where} is not a layerkit checkpoint: it lacks the entries "
                         f"{', '.join(missing)}")
    header = {}
    for k in _HEADER:
        a = entries[k]
        if a.ndim != 0:
            raise ValueError(f"{where}: entry {k!r} must be a scalar, got shape {a.shape}")
        header[k] = a[()]
    if str(header["format"]) != FORMAT:
        raise ValueError(f"{where}: expected format {FORMAT!r}, got {str(header['format'])!r}")
    try:
        version = int(header["format_version"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: format_version must be an integer, got "
                         f"{header['format_version']!r}") from None
    if version not in (1, FORMAT_VERSION):
        hint = " (written by a newer layerkit?)" if version > FORMAT_VERSION else ""
        raise ValueError(f"{where}: unsupported format_version {version}, expected 1 or "
                         f"{FORMAT_VERSION}{hint}")
    spec_json, meta_json = str(header["spec"]), str(header["meta"])
    params = {k[len(_PARAM):]: a for k, a in entries.items() if k.startswith(_PARAM)}
    params.update({k: a for k, a in entries.items() if k.startswith(_BUFFER) and version > 1})
    extra = sorted(k for k in entries if k not in _HEADER and not k.startswith(_PARAM)
                   and not (k.startswith(_BUFFER) and version > 1))
    if extra:
        raise ValueError(f"{where}: unexpected entries {', '.join(extra)}")
    digest = _digest(version, spec_json, meta_json, params)
    if digest != str(header["digest"]):
        raise ValueError(f"{where} is corrupted: its SHA-256 digest does not match its contents "
                         f"(stored {str(header['digest'])[:16]}..., computed {digest[:16]}...)")
    try:
        spec, meta = json.loads(spec_json), json.loads(meta_json)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: spec or meta is not valid JSON ({err})") from None
    return spec, meta, params, version > 1


def _assign(who: str, path, model, params: dict, *, buffers: bool = True) -> None:
    """Check names, shapes and dtypes of every parameter (and buffer, unless the file is of
    version 1), then copy them in place."""
    target = {**_model_params(who, model), **(_model_buffers(model) if buffers else {})}
    problems = []
    missing = sorted(set(target) - set(params))
    unexpected = sorted(set(params) - set(target))
    if missing:
        problems.append(f"missing from the checkpoint: {', '.join(missing)}")
    if unexpected:
        problems.append(f"not parameters of the model: {', '.join(unexpected)}")
    for name in sorted(set(target) & set(params)):
        want, got = target[name], params[name]
        if want.shape != got.shape:
            problems.append(f"{name!r}: model has shape {want.shape}, checkpoint {got.shape}")
        elif want.dtype != got.dtype:
            problems.append(f"{name!r}: model has dtype {want.dtype}, checkpoint {got.dtype}")
    if problems:
        raise ValueError(f"{who}: checkpoint {os.fspath(path)!r} does not match the model "
                         f"({type(model).__name__}); nothing was loaded: " + "; ".join(problems))
    for name, p in target.items():
        if not p.flags.writeable:
            raise ValueError(f"{who}: parameter {name!r} of the model is read-only; "
                             f"nothing was loaded")
    for name, p in target.items():
        p[...] = params[name]


def load(path):
    """Rebuild a model saved with :func:`save` and load its parameters.

    The architecture comes from the stored ``spec`` via :func:`layerkit.models.build`; every
    parameter is checked (format version, SHA-256 digest, names, shapes, dtypes against the
    rebuilt model) before any is assigned.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model
        With ``model.spec`` (the stored spec) and ``model.meta`` (the stored meta dict) set; its
        outputs are bit-identical to the saved model's.

    Raises
    ------
    ValueError
        If the file is corrupted, truncated, of another version, has no spec (written by
        :func:`save_params`), or does not match the rebuilt model; the message names the file
        and what differs.
    FileNotFoundError
        If ``path`` does not exist.
    """
    who = "load"
    spec, meta, params, buffers = _read(who, path)
    if spec is None:
        raise ValueError(f"{who}: checkpoint {os.fspath(path)!r} has no spec (it was written by "
                         f"save_params); build the model yourself and use "
                         f"load_params(model, path)")
    models = importlib.import_module("layerkit.models")
    try:
        model = models.build(spec)
    except Exception as err:
        raise ValueError(f"{who}: cannot rebuild the model of checkpoint {os.fspath(path)!r} "
                         f"from its spec {spec!r}: {type(err).__name__}: {err}") from err
    if callable(getattr(model, "from_arrays", None)) and not hasattr(model, "params"):
        try:                                 # counts: their sizes depend on the data
            model.from_arrays(params)
        except ValueError as err:
            raise ValueError(f"{who}: checkpoint {os.fspath(path)!r} does not match the model "
                             f"({type(model).__name__}): {err}") from err
    else:
        _assign(who, path, model, params, buffers=buffers)
    model.spec = spec
    model.meta = meta
    return model


def load_params(model, path) -> dict:
    """Load the parameters of a checkpoint (from :func:`save_params` or :func:`save`) into
    ``model`` in place.

    Everything is verified first (format version, digest, the same names, shapes and dtypes as
    ``model.params``), so on any ``ValueError`` the model is left unchanged. Parameters are
    copied into the existing arrays, so an optimizer built on the model keeps working.

    Returns
    -------
    dict
        The checkpoint's meta.
    """
    who = "load_params"
    _, meta, params, buffers = _read(who, path)
    _assign(who, path, model, params, buffers=buffers)
    return meta
