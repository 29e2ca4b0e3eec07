"""The standard image sets in their original formats, downloaded once into a cache directory and
verified: full MNIST (IDX files), Fashion-MNIST (IDX files) and CIFAR-10 (python batches).

Cache directory: the ``root`` argument, else the environment variable ``LAYERKIT_DATA``, else
``$XDG_CACHE_HOME/layerkit`` (``~/.cache/layerkit`` when XDG_CACHE_HOME is unset). Each set has
its own folder in it (``mnist/``, ``fashion-mnist/``, ``cifar-10/``) holding the files under
their published names.

A file is used only if its MD5 equals the published checksum (the values torchvision's dataset
code lists). A missing file is downloaded (with a progress bar on stderr) to a temporary name,
checked, then renamed, so an interrupted download never leaves a file that looks complete.
Without network (or with ``download=False``) the error says where to put which file.

Fashion-MNIST is also read, with no download, from Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``). Debian recompressed those ``.gz`` files, so their MD5
differs from the published one; they are checked against the package's own list of MD5 sums
(``/var/lib/dpkg/info/dataset-fashion-mnist.md5sums``) instead.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import float_dtype
from .images import Split

__all__ = ["Remote", "NotCachedError", "ChecksumError", "cache_dir", "fetch", "md5_of",
           "read_idx", "read_cifar_batch", "load_mnist", "load_fashion_mnist", "load_cifar10",
           "MNIST_FILES", "FASHION_MNIST_FILES", "CIFAR10_ARCHIVE", "CIFAR10_BATCHES",
           "CACHE_ENV", "DEBIAN_FASHION_MNIST"]

CACHE_ENV = "LAYERKIT_DATA"

#: Where Debian's dataset-fashion-mnist package puts the four IDX files, and its MD5 list.
DEBIAN_FASHION_MNIST = (Path("/usr/share/datasets/fashion-mnist"),
                        Path("/var/lib/dpkg/info/dataset-fashion-mnist.md5sums"))


@dataclass(frozen=True)
class Remote:
    """One published file: its name, where it is published, and its published MD5."""

    filename: str
    url: str
    md5: str


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

_IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _idx_remotes(base_url: str, md5s: tuple) -> tuple:
    return tuple(Remote(name, base_url + name, md5) for name, md5 in zip(_IDX_NAMES, md5s))


#: The four MNIST files: training images, training labels, test images, test labels.
MNIST_FILES = _idx_remotes(_MNIST_URL, (
    "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
    "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))
#: The four Fashion-MNIST files, in the same order.
FASHION_MNIST_FILES = _idx_remotes(_FASHION_URL, (
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
    "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))
#: The CIFAR-10 archive; it holds the folder ``cifar-10-batches-py`` with the batches below.
CIFAR10_ARCHIVE = Remote("cifar-10-python.tar.gz",
                         "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         "c58f30108f718f92721af3b95e74349a")
#: Batch file name -> published MD5 (five training batches, then the test batch).
CIFAR10_BATCHES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
_CIFAR_FOLDER = "cifar-10-batches-py"

#: The network call; tests replace it (nothing is downloaded in tests).
urlopen = urllib.request.urlopen


class NotCachedError(FileNotFoundError):
    """A file is neither in the cache nor downloadable (no network, or ``download=False``)."""


class ChecksumError(ValueError):
    """A file's MD5 is not the published one."""


def cache_dir(root=None) -> Path:
    """The cache directory: ``root``, else ``$LAYERKIT_DATA``, else ``$XDG_CACHE_HOME/layerkit``
    (``~/.cache/layerkit``). Not created here."""
    if root is not None:
        return Path(os.fspath(root)).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "layerkit"


def md5_of(path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, md5: str, who: str, url: str) -> None:
    got = md5_of(path)
    if got != md5:
        raise ChecksumError(f"{who}: checksum mismatch for {path}: expected MD5 {md5} (the "
                            f"published one), got {got}; the file is damaged or another file; "
                            f"delete it and download it again from {url}")


class _Bar:
    """A byte counter on stderr: tqdm's bar when tqdm is installed, else a line of percents."""

    def __init__(self, name: str, total: int | None, enabled: bool):
        self.done, self.total, self.enabled, self.shown = 0, total, enabled, -1
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                print(f"downloading {name} ...", file=sys.stderr, flush=True)
            else:
                self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=name,
                                file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.total:
            tenth = 10 * self.done // self.total
            if tenth != self.shown:
                self.shown = tenth
                print(f"  {10 * tenth} %", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _download(remote: Remote, target: Path, progress: bool, who: str) -> None:
    tmp = target.with_name(target.name + ".part")
    try:
        with urlopen(remote.url, timeout=30) as response, open(tmp, "wb") as out:
            length = response.headers.get("Content-Length") if response.headers else None
            bar = _Bar(remote.filename, int(length) if length else None, progress)
            try:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
    except OSError as err:                    # URLError, timeouts, refused connections
        tmp.unlink(missing_ok=True)
        raise NotCachedError(_not_cached(who, target, remote) + f" ({err})") from err
    try:
        _verify(tmp, remote.md5, who, remote.url)
    except ChecksumError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def _not_cached(who: str, path: Path, remote: Remote) -> str:
    return (f"{who}: no network and no cached copy at {path}: download {remote.filename} "
            f"from {remote.url} and place it there")


def fetch(remote: Remote, folder, *, download: bool = True, progress: bool = True,
          who: str = "fetch") -> Path:
    """The path of ``remote`` in ``folder``, verified against its published MD5.

    A cached file is checked and returned. A missing one is downloaded when ``download`` is
    true (to ``NAME.part``, checked, renamed). Raises :class:`NotCachedError` when it can be
    neither found nor downloaded, :class:`ChecksumError` when its MD5 is not the published one.
    """
    folder = Path(folder)
    path = folder / remote.filename
    if not path.exists():
        if not download:
            raise NotCachedError(_not_cached(who, path, remote) + " (download=False)")
        folder.mkdir(parents=True, exist_ok=True)
        _download(remote, path, progress, who)
    _verify(path, remote.md5, who, remote.url)
    return path


# -- IDX files --------------------------------------------------------------------------------

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format; gzip-compressed if its name ends in ``.gz``).

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions d, then d big-endian uint32 sizes,
    then the values in C order, big-endian. Returns them in native byte order. A header that
    does not fit or a data size other than the product of the sizes raises ValueError.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    who = f"read_idx({str(path)!r})"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{who}: expected an IDX file (bytes 0, 0, a type code in "
                         f"{sorted(_IDX_TYPES)}, the rank), got the first bytes {raw[:4]!r}")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{who}: expected {ndim} sizes after the magic number, the file has "
                         f"{len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != want:
        raise ValueError(f"{who}: expected {want} bytes of data for shape {shape}, got "
                         f"{len(raw) - header}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _idx_split(paths, flatten: bool, dtype, who: str) -> Split:
    dt = float_dtype(dtype, who)
    x_train, y_train, x_test, y_test = (read_idx(p) for p in paths)
    for x, y, part in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{who}: expected {part} images (N, H, W) and labels (N,), got "
                             f"{x.shape} and {y.shape}")

    def images(x):
        x = x.astype(dt) / dt.type(255)
        return x.reshape(len(x), -1) if flatten else x[:, None]

    return Split(images(x_train), y_train.astype(np.int64), images(x_test),
                 y_test.astype(np.int64))


def load_mnist(*, root=None, download: bool = True, progress: bool = True,
               flatten: bool = False, dtype=np.float32) -> Split:
    """The full MNIST: 60,000 training and 10,000 test digits, 28x28, from the IDX files.

    Files: :data:`MNIST_FILES` in ``cache_dir(root) / "mnist"``, downloaded if missing (see the
    module docstring). Pixels are divided by 255; labels int64 in 0..9.

    Returns
    -------
    Split
        ``x_train`` (60000, 1, 28, 28) (``(60000, 784)`` with ``flatten``), ``y_train``,
        ``x_test`` (10000, 1, 28, 28), ``y_test``, in the files' order.
    """
    who = "load_mnist"
    folder = cache_dir(root) / "mnist"
    paths = [fetch(r, folder, download=download, progress=progress, who=who)
             for r in MNIST_FILES]
    return _idx_split(paths, flatten, dtype, who)


def _debian_fashion_mnist() -> list[Path] | None:
    """The Debian package's four files, checked against the package's MD5 list, or None when
    the package is not installed."""
    folder, sums = DEBIAN_FASHION_MNIST
    paths = [folder / r.filename for r in FASHION_MNIST_FILES]
    if not all(p.is_file() for p in paths) or not sums.is_file():
        return None
    listed = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        md5, _, name = line.partition("  ")
        listed["/" + name.strip()] = md5
    for p in paths:
        if str(p) not in listed:
            return None
        _verify(p, listed[str(p)], "load_fashion_mnist (Debian's dataset-fashion-mnist)",
                "the package (apt-get install --reinstall dataset-fashion-mnist)")
    return paths


def load_fashion_mnist(*, root=None, download: bool = True, progress: bool = True,
                       flatten: bool = False, dtype=np.float32) -> Split:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test 28x28 clothing images,
    ten classes (0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
    7 sneaker, 8 bag, 9 ankle boot).

    Files: :data:`FASHION_MNIST_FILES` in ``cache_dir(root) / "fashion-mnist"`` when all four
    are there; else Debian's ``dataset-fashion-mnist`` package when installed (no download);
    else downloaded into the cache. Same layout and scaling as :func:`load_mnist`.
    """
    who = "load_fashion_mnist"
    folder = cache_dir(root) / "fashion-mnist"
    if not all((folder / r.filename).exists() for r in FASHION_MNIST_FILES):
        debian = _debian_fashion_mnist()
        if debian is not None:
            return _idx_split(debian, flatten, dtype, who)
    paths = [fetch(r, folder, download=download, progress=progress, who=who)
             for r in FASHION_MNIST_FILES]
    return _idx_split(paths, flatten, dtype, who)


# -- CIFAR-10 python batches ------------------------------------------------------------------

_ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"),
                    ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy", "ndarray"), ("numpy", "dtype"),
                    ("_codecs", "encode")}     # bytes in a protocol-2 pickle written by Python 3


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers, strings, numbers and numpy arrays (and ``codecs.encode``,
    which turns a string into bytes); any other global (a function or class a pickle could
    call) raises UnpicklingError."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            if module == "_codecs":
                return codecs.encode
            if name == "_reconstruct":
                return np.ndarray.__reduce__(np.zeros(0))[0]   # numpy's own reconstructor
            return getattr(np, name)
        raise pickle.UnpicklingError(f"CIFAR batch: refusing to load {module}.{name}: a batch "
                                     f"holds only numpy arrays, lists and strings")


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: a pickled dict with ``data`` (N, 3072) uint8 (1,024 red, then
    green, then blue values of a 32x32 image in row-major order) and ``labels`` (N ints).

    Unpickled with a restricted unpickler (numpy arrays, lists, dicts, strings and numbers only;
    nothing else is executed). Returns ``(images (N, 3, 32, 32) uint8, labels (N,) int64)``.
    """
    with open(path, "rb") as f:
        batch = _ArraysOnly(io.BytesIO(f.read()), encoding="latin1").load()
    who = f"read_cifar_batch({str(path)!r})"
    if not isinstance(batch, dict):
        raise ValueError(f"{who}: expected a dict, got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{who}: expected the keys data and labels, got {sorted(batch)}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or labels.shape != (len(data),):
        raise ValueError(f"{who}: expected data (N, 3072) uint8 and labels (N,), got data "
                         f"{data.shape} {data.dtype} and labels {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_batches(root, download: bool, progress: bool, who: str) -> Path:
    """The folder with the six batches, extracted from the verified archive if needed."""
    folder = cache_dir(root) / "cifar-10"
    batches = folder / _CIFAR_FOLDER
    if all((batches / name).exists() for name in CIFAR10_BATCHES):
        return batches
    archive = fetch(CIFAR10_ARCHIVE, folder, download=download, progress=progress, who=who)
    batches.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for name in CIFAR10_BATCHES:              # only these members, under fixed names
            member = tar.extractfile(f"{_CIFAR_FOLDER}/{name}")
            if member is None:
                raise ValueError(f"{who}: {archive} lacks {_CIFAR_FOLDER}/{name}")
            tmp = batches / (name + ".part")
            tmp.write_bytes(member.read())
            os.replace(tmp, batches / name)
    return batches


def load_cifar10(*, root=None, download: bool = True, progress: bool = True,
                 dtype=np.float32) -> Split:
    """CIFAR-10 (Krizhevsky 2009): 50,000 training and 10,000 test 32x32 colour images, ten
    classes (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck).

    Files: the batches of :data:`CIFAR10_BATCHES` in ``cache_dir(root) /
    "cifar-10/cifar-10-batches-py"``, each checked against its published MD5; when they are
    missing, :data:`CIFAR10_ARCHIVE` (in ``cache_dir(root) / "cifar-10"``, downloaded if
    missing, checked) is unpacked there. Each batch is read by :func:`read_cifar_batch`.

    Returns
    -------
    Split
        ``x_train`` (50000, 3, 32, 32) with values in [0, 1] (pixels / 255), ``y_train`` int64,
        ``x_test`` (10000, 3, 32, 32), ``y_test``; data_batch_1 .. 5 in order, then test_batch.
    """
    who = "load_cifar10"
    dt = float_dtype(dtype, who)
    batches = _cifar_batches(root, download, progress, who)
    parts = {}
    for name, md5 in CIFAR10_BATCHES.items():
        path = batches / name
        _verify(path, md5, who, CIFAR10_ARCHIVE.url)
        parts[name] = read_cifar_batch(path)
    train = [parts[n] for n in CIFAR10_BATCHES if n != "test_batch"]
    x_train = np.concatenate([x for x, _ in train]).astype(dt) / dt.type(255)
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = parts["test_batch"]
    return Split(x_train, y_train, x_test.astype(dt) / dt.type(255), y_test)
