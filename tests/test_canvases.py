"""digit_canvases: the documented rule written out again, determinism, train/test separation,
labels against pixels, captions against digits."""

import hashlib
import re

import numpy as np
import pytest

from layerkit.data import DigitCanvases, digit_canvases, load_mnist5k


@pytest.fixture(scope="module")
def mnist():
    return load_mnist5k(dtype=np.float64)


@pytest.fixture(scope="module")
def train():
    return digit_canvases(300, split="train")


@pytest.fixture(scope="module")
def test():
    return digit_canvases(300, split="test")


def K(text):
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def test_the_documented_rule(mnist):
    """Counts, images and columns from the docstring's formulas, for a non-default setting."""
    c = digit_canvases(40, split="test", min_digits=2, max_digits=3, seed=7)
    salt = "layerkit/canvases/0/test/7"
    for i in range(40):
        k = 2 + K(f"{salt}:{i}") % 2
        start = K(f"{salt}:{i}:offset") % (28 * (3 - k) + 1)
        rows = [K(f"{salt}:{i}:{t}") % 1000 for t in range(k)]
        assert c.caption_lengths[i] == k + 2
        assert list(c.sources[i]) == rows + [-1] * (3 - k)
        assert list(c.columns[i]) == [start + 28 * t for t in range(k)] + [-1] * (3 - k)
        assert list(c.digits[i]) == [int(mnist.y_test[r]) for r in rows] + [-1] * (3 - k)


def test_deterministic_and_seeded():
    a, b = digit_canvases(50, seed=3), digit_canvases(50, seed=3)
    for field in ("images", "captions", "caption_lengths", "labels", "digits", "sources"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    other = digit_canvases(50, seed=4)
    assert not np.array_equal(a.sources, other.sources)
    # a longer request starts with the same canvases
    assert np.array_equal(digit_canvases(60, seed=3).images[:50], a.images)


def test_shapes_and_dtypes(train):
    assert len(train) == 300
    assert train.images.shape == (300, 1, 28, 112) and train.images.dtype == np.float32
    assert train.labels.shape == (300, 28, 112) and train.labels.dtype == np.int64
    assert train.captions.shape == (300, 6) and train.captions.dtype == np.int64
    assert digit_canvases(3, dtype=np.float64).images.dtype == np.float64
    assert DigitCanvases.VOCAB_SIZE == len(DigitCanvases.VOCAB) == 13


def test_each_cell_is_its_source_image_and_the_rest_is_blank(train, test, mnist):
    for c, pool in ((train, mnist.x_train), (test, mnist.x_test)):
        for i in range(len(c)):
            covered = np.zeros(112, dtype=bool)
            for row, col in zip(c.sources[i], c.columns[i]):
                if row < 0:
                    break
                np.testing.assert_array_equal(c.images[i, 0, :, col:col + 28],
                                              pool[row, 0].astype(np.float32))
                covered[col:col + 28] = True
            assert np.all(c.images[i, 0][:, ~covered] == 0)


def test_test_canvases_hold_no_training_digit(test, mnist):
    """Every cell of a test canvas is a test image, and no training image equals it."""
    train_images = {img.tobytes() for img in mnist.x_train[:, 0].astype(np.float32)}
    cells = [test.images[i, 0, :, col:col + 28] for i in range(len(test))
             for col in test.columns[i] if col >= 0]
    assert len(cells) > 300
    assert not any(np.ascontiguousarray(cell).tobytes() in train_images for cell in cells)


def test_labels_follow_the_pixels(train):
    stroke = train.images[:, 0].astype(np.float64) >= 0.5
    assert np.array_equal(train.labels > 0, stroke)
    for i in range(len(train)):
        for d, col in zip(train.digits[i], train.columns[i]):
            if d < 0:
                break
            cell = train.labels[i, :, col:col + 28]
            assert set(np.unique(cell)) <= {0, 1 + d}
    assert set(np.unique(train.labels)) == set(range(11))


def test_threshold_changes_the_strokes_only():
    low, high = digit_canvases(20, threshold=0.1), digit_canvases(20, threshold=0.9)
    assert np.array_equal(low.images, high.images)
    assert np.all((high.labels > 0) <= (low.labels > 0))
    assert (high.labels > 0).sum() < (low.labels > 0).sum()
    assert np.array_equal(low.labels > 0, low.images[:, 0] >= 0.1)


def test_captions_match_the_digits(train, mnist):
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    for i in range(len(train)):
        k = train.caption_lengths[i] - 2
        row = train.captions[i]
        assert row[0] == DigitCanvases.BOS and row[k + 1] == DigitCanvases.EOS
        assert np.all(row[k + 2:] == DigitCanvases.PAD)
        assert list(row[1:k + 1] - 3) == list(train.digits[i, :k])
        assert list(train.digits[i, :k]) == [int(mnist.y_train[r]) for r in train.sources[i, :k]]
        assert train.text(i) == " ".join(words[d] for d in train.digits[i, :k])


def test_every_length_and_position_occurs(train):
    assert set(train.caption_lengths - 2) == {1, 2, 3, 4}
    one = train.columns[train.caption_lengths == 3, 0]
    assert one.min() < 20 and one.max() > 64           # single digits anywhere on the canvas
    assert np.all(train.columns[train.caption_lengths == 6, 0] == 0)


def test_decode():
    assert DigitCanvases.decode([1, 10, 5, 12, 2, 0]) == "seven two nine"
    assert DigitCanvases.decode(np.array([3, 2, 4])) == "zero"
    assert DigitCanvases.decode([]) == ""


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), r"^digit_canvases: n must be a positive integer, got 0$"),
    (dict(n=2, split="valid"), r"^digit_canvases: split must be one of 'train', 'test', got "
                               r"'valid'$"),
    (dict(n=2, min_digits=3, max_digits=2), r"^digit_canvases: expected min_digits <= "
                                            r"max_digits, got min_digits=3, max_digits=2$"),
    (dict(n=2, min_digits=0), r"^digit_canvases: min_digits must be a positive integer"),
    (dict(n=2, threshold=0.0), r"^digit_canvases: threshold must be in \(0.0, 1.0\], got 0.0$"),
    (dict(n=2, seed=-1), r"^digit_canvases: seed must be a non-negative integer, got -1$"),
    (dict(n=2, seed=None), r"^digit_canvases: seed must be a non-negative integer, got None$"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        digit_canvases(**kwargs)


def test_bad_dtype():
    with pytest.raises(TypeError, match=re.escape("digit_canvases: dtype must be float32 or "
                                                  "float64, got int64")):
        digit_canvases(2, dtype=np.int64)
