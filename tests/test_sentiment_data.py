"""The synthetic sentiment task (its rule, checked word by word against a plain reading of the
decoded text) and the aclImdb folder reader (on a tiny folder written here)."""

import numpy as np
import pytest

from layerkit import data as D

T = D.SentimentTask


def ids_of(text):
    return np.array([[T.TOKENS.index(w) for w in text.split()]])


def rule_by_hand(words):
    """The documented rule read off the words: +1 positive, -1 negative, flipped after a
    negation."""
    score = 0
    for i, w in enumerate(words):
        s = 1 if w in D.POSITIVE_WORDS else -1 if w in D.NEGATIVE_WORDS else 0
        if i and words[i - 1] in D.NEGATIONS:
            s = -s
        score += s
    return score


@pytest.mark.parametrize("text, score", [
    ("the film was good", 1), ("the film was not good", -1), ("never boring and great", 2),
    ("hardly awful and not superb", 0), ("not the good", 1), ("bad bad not bad", -1)])
def test_polarity_score_hand_worked(text, score):
    assert D.polarity_score(ids_of(text)).tolist() == [score]


def test_sequences_follow_the_rule_and_are_balanced():
    task = D.sentiment_sequences(301, seed=4)
    assert task.ids.shape == (301, 16) and task.ids.dtype == np.int64
    assert np.bincount(task.labels).tolist() == [151, 150]
    assert task.lengths.min() >= 6 and task.lengths.max() <= 16
    negated = 0
    for row, n, label in zip(task.ids, task.lengths, task.labels):
        assert np.all(row[n:] == T.PAD) and np.all(row[:n] != T.PAD)
        words = T.decode(row).split()
        score = rule_by_hand(words)
        assert score != 0 and label == (score > 0)
        negated += any(w in D.NEGATIONS for w in words)
    assert 0.4 < negated / 301 < 0.95                  # negations are common, not universal
    again = D.sentiment_sequences(301, seed=4)
    assert np.array_equal(again.ids, task.ids) and np.array_equal(again.labels, task.labels)


def test_sequences_reject_bad_sizes():
    with pytest.raises(ValueError, match=r"sentiment_sequences: expected 6 <= min_len <= "
                                         r"max_len.*got min_len=8, max_len=7"):
        D.sentiment_sequences(4, min_len=8, max_len=7)
    with pytest.raises(ValueError, match="n"):
        D.sentiment_sequences(0)


def write_reviews(root, split, items):
    for sub, name, text in items:
        folder = root / split / sub
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def test_load_imdb_reviews_reads_the_aclimdb_layout(tmp_path):
    write_reviews(tmp_path, "train", [
        ("pos", "10_9.txt", "Loved it.<br /><br />Again!"), ("pos", "2_7.txt", "Fine film."),
        ("neg", "3_1.txt", "Dreadful."), ("neg", "11_4.txt", "Meh — dull.")])
    write_reviews(tmp_path, "test", [("pos", "0_8.txt", "Good."), ("neg", "0_2.txt", "Bad.")])
    r = D.load_imdb_reviews(tmp_path)
    assert r.texts == ["Dreadful.", "Meh — dull.", "Fine film.", "Loved it.  Again!"]
    assert r.labels.tolist() == [0, 0, 1, 1] and r.ratings.tolist() == [1, 4, 7, 9]
    assert r.ids == ["neg/3", "neg/11", "pos/2", "pos/10"]
    assert D.load_imdb_reviews(tmp_path, "test").texts == ["Bad.", "Good."]
    vocab = D.WordVocab.build(" ".join(r.texts))
    assert vocab.decode(vocab.encode(r.texts[0])) == "dreadful ."


def test_load_imdb_reviews_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected the folder .*train/neg \(aclImdb"):
        D.load_imdb_reviews(tmp_path)
    write_reviews(tmp_path, "train", [("pos", "x.txt", "?"), ("neg", "1_1.txt", "?")])
    with pytest.raises(ValueError, match=r"expected files named <id>_<rating>.txt, got .*x.txt"):
        D.load_imdb_reviews(tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        D.load_imdb_reviews(tmp_path, "valid")
