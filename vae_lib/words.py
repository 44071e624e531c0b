"""English words as sequences of characters: the data of chapter 8.

:func:`word_list` reads the GCIDE word list that the ``english-words`` package ships (MIT
licence; lower-case, letters only) and checks it against :data:`WORD_LIST_SHA256`, so that a
changed list is an error rather than silently different numbers. :func:`load_words` splits it,
with a fixed seed, into training, validation and test words. :class:`CharVocabulary` turns words
into padded integer sequences that start with a start token and end with an end token, and back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import torch

from . import arguments

#: The letters words are made of; every word of the list uses only these.
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
#: sha256 of the word list joined by newlines (sorted, ASCII letters only).
WORD_LIST_SHA256 = "73bf7f09ae138d148601205f1b9c05136c72afdec5f9e9b4fec3954d4fcd4ed3"
#: Number of words in the list.
WORD_LIST_SIZE = 113_903
#: Shares of the words in each split (drawn with :data:`SPLIT_SEED`).
SPLIT_SHARES = {"train": 0.8, "val": 0.1, "test": 0.1}
SPLIT_SEED = 0


class WordListError(RuntimeError):
    """The installed ``english-words`` package gives another list than the one the book uses."""


@lru_cache(maxsize=1)
def word_list() -> tuple[str, ...]:
    """The book's word list: GCIDE's words, lower-case, made of the letters a-z only, sorted.

    Raises:
        WordListError: the list's checksum is not :data:`WORD_LIST_SHA256` (another release of
            ``english-words``).
    """
    try:
        from english_words import get_english_words_set
    except ImportError as err:  # pragma: no cover - a requirement of the book
        raise ImportError(
            "the word list needs the package english-words (pip install english-words)"
        ) from err
    words = sorted(
        w for w in get_english_words_set(["gcide"], alpha=True, lower=True) if _is_word(w)
    )
    digest = hashlib.sha256("\n".join(words).encode()).hexdigest()
    if digest != WORD_LIST_SHA256:
        raise WordListError(
            f"the GCIDE list of the installed english-words has {len(words):,} words and sha256 "
            f"{digest[:12]}..., not the book's {WORD_LIST_SIZE:,} words "
            f"({WORD_LIST_SHA256[:12]}...); install english-words==2.0.2"
        )
    return tuple(words)


def _is_word(w: str) -> bool:
    return bool(w) and all(ch in ALPHABET for ch in w)


def load_words(split: str, max_length: int | None = None) -> list[str]:
    """The words of one split (``"train"``, ``"val"`` or ``"test"``), in a fixed random order.

    The list is shuffled once with a CPU generator seeded :data:`SPLIT_SEED` and cut into
    :data:`SPLIT_SHARES`; ``max_length`` keeps only words of at most that many letters.
    """
    arguments.one_of("split", split, tuple(SPLIT_SHARES))
    words = word_list()
    order = torch.randperm(len(words), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_train = int(SPLIT_SHARES["train"] * len(words))
    n_val = int(SPLIT_SHARES["val"] * len(words))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val)}
    start, stop = bounds.get(split, (n_train + n_val, len(words)))
    chosen = [words[i] for i in order[start:stop].tolist()]
    if max_length is not None:
        max_length = arguments.positive_int("max_length", max_length)
        chosen = [w for w in chosen if len(w) <= max_length]
    return chosen


@dataclass(frozen=True)
class CharVocabulary:
    """Characters and the three special tokens, as integers.

    Token 0 pads sequences to a common length, 1 starts a word, 2 ends it; the letters follow.
    ``encode(["cat"])`` gives ``[[1, c, a, t, 2]]`` and a length of 5 (start and end included).
    """

    letters: str = ALPHABET

    PAD = 0
    BOS = 1
    EOS = 2

    def __post_init__(self) -> None:
        if not isinstance(self.letters, str):
            raise ValueError(
                f"letters must be a string of distinct characters, got "
                f"{type(self.letters).__name__} {self.letters!r}"
            )
        repeated = sorted({ch for ch in self.letters if self.letters.count(ch) > 1})
        if repeated:
            raise ValueError(
                f"letters must be distinct characters (one token each), but {repeated} occur "
                f"more than once in {self.letters!r}"
            )

    @property
    def size(self) -> int:
        """Number of tokens: the letters plus pad, start and end."""
        return len(self.letters) + 3

    def check_words(self, name: str, words: object) -> list[str]:
        """``words`` as a list, if it is a non-empty list or tuple of non-empty strings made of
        :attr:`letters`; else a ``ValueError`` that calls it ``name`` (a single string is
        refused, not read as a list of one-letter words)."""
        if isinstance(words, str | bytes):
            raise ValueError(
                f"{name} must be a list of words, got the single string {words[:30]!r} "
                f"(write [{words[:30]!r}] for one word)"
            )
        if not isinstance(words, list | tuple):
            raise ValueError(
                f"{name} must be a list of words (strings), got {type(words).__name__}"
            )
        if not words:
            raise ValueError(f"{name} must be a non-empty list of words, got an empty one")
        not_str = [w for w in words if not isinstance(w, str)]
        if not_str:
            raise ValueError(
                f"{name} must hold strings, got {type(not_str[0]).__name__} {not_str[0]!r}"
            )
        letters = set(self.letters)
        bad = [w for w in words if not w or not set(w) <= letters]
        if bad:
            raise ValueError(
                f"{name} must be non-empty words of the letters {self.letters!r}: {bad[:3]}"
            )
        return list(words)

    def encode(self, words: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``words`` (a non-empty list of words of :attr:`letters`) -> ``(tokens (B, T) int64,
        lengths (B,) int64)``, with T the longest word's length + 2; shorter words are padded
        with :attr:`PAD` after their end token."""
        words = self.check_words("words", words)
        index = {ch: i + 3 for i, ch in enumerate(self.letters)}
        lengths = torch.tensor([len(w) + 2 for w in words])
        tokens = torch.full((len(words), int(lengths.max())), self.PAD, dtype=torch.long)
        for row, w in enumerate(words):
            tokens[row, : len(w) + 2] = torch.tensor([self.BOS, *(index[ch] for ch in w), self.EOS])
        return tokens, lengths

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """``(B, T)`` integer token sequences -> words: the letters after an optional start
        token, up to the first end or pad token. Tokens must lie in [0, :attr:`size`)."""
        if (
            not isinstance(tokens, torch.Tensor)
            or tokens.dim() != 2
            or tokens.is_floating_point()
            or tokens.is_complex()
            or tokens.dtype == torch.bool
        ):
            got = (
                f"a {tokens.dtype} tensor of shape {tuple(tokens.shape)}"
                if isinstance(tokens, torch.Tensor)
                else type(tokens).__name__
            )
            raise ValueError(f"tokens must be a (B, T) integer tensor, got {got}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.size):
            raise ValueError(
                f"tokens must lie in [0, {self.size}) for {len(self.letters)} letters, got "
                f"{int(tokens.min())}..{int(tokens.max())}"
            )
        words = []
        for row in tokens.tolist():
            if row and row[0] == self.BOS:
                row = row[1:]
            letters = []
            for t in row:
                if t in (self.EOS, self.PAD):
                    break
                if t == self.BOS:
                    continue
                letters.append(self.letters[t - 3])
            words.append("".join(letters))
        return words
