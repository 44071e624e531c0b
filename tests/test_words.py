"""Chapter 8's word data (vae_lib.words): the checked list, its split and the tokenizer."""

import pytest
import torch

from vae_lib import words as W


def test_the_word_list_is_the_books():
    words = W.word_list()
    assert len(words) == W.WORD_LIST_SIZE
    assert list(words) == sorted(set(words))
    assert all(w and set(w) <= set(W.ALPHABET) for w in words)
    assert {"cat", "zythum", "latent"} <= set(words)


def test_a_different_list_is_refused(monkeypatch):
    import english_words

    W.word_list.cache_clear()
    monkeypatch.setattr(english_words, "get_english_words_set", lambda *a, **k: {"cat", "dog"})
    with pytest.raises(W.WordListError, match="2 words"):
        W.word_list()
    W.word_list.cache_clear()


def test_the_splits_are_disjoint_fixed_and_cover_the_list():
    splits = {name: W.load_words(name) for name in W.SPLIT_SHARES}
    assert sum(map(len, splits.values())) == W.WORD_LIST_SIZE
    assert set().union(*map(set, splits.values())) == set(W.word_list())
    assert len(splits["train"]) == int(0.8 * W.WORD_LIST_SIZE)
    assert splits["val"] == W.load_words("val")  # the same order every time
    short = W.load_words("test", max_length=4)
    assert short and all(len(w) <= 4 for w in short)
    assert set(short) <= set(splits["test"])
    with pytest.raises(ValueError, match="split"):
        W.load_words("everything")


def test_encode_adds_start_and_end_and_pads_and_decode_inverts_it():
    vocab = W.CharVocabulary()
    assert vocab.size == 29
    tokens, lengths = vocab.encode(["cat", "a"])
    c, a, t = (3 + W.ALPHABET.index(ch) for ch in "cat")
    assert tokens.tolist() == [[1, c, a, t, 2], [1, a, 2, 0, 0]]
    assert lengths.tolist() == [5, 3]
    assert tokens.dtype == torch.long
    words = W.load_words("val")[:200]
    assert vocab.decode(vocab.encode(words)[0]) == words
    assert vocab.decode(torch.tensor([[c, a, 2, t]])) == ["ca"]  # stops at the end token


@pytest.mark.parametrize("bad", [[], "cat", ["Cat"], ["c-t"], [""]])
def test_encode_refuses_what_is_not_a_list_of_words(bad):
    with pytest.raises(ValueError):
        W.CharVocabulary().encode(bad)


@pytest.mark.parametrize(
    "bad, match",
    [
        ((w for w in ["cat", "dog"]), "list of words"),  # a generator: was a raw TypeError
        (["cat", 5], "must hold strings"),  # was a raw TypeError
        ("cat", "single string"),
        ({"cat"}, "list of words"),
    ],
)
def test_encode_names_what_is_wrong_with_the_words(bad, match):
    with pytest.raises(ValueError, match=f"^words .*{match}"):
        W.CharVocabulary().encode(bad)


def test_check_words_names_the_argument_and_returns_a_list():
    vocab = W.CharVocabulary()
    assert vocab.check_words("val", ("cat", "dog")) == ["cat", "dog"]
    with pytest.raises(ValueError, match="^val must be a list of words, got the single string"):
        vocab.check_words("val", "cat")
    with pytest.raises(ValueError, match="^train must be non-empty words"):
        vocab.check_words("train", ["cat", "Dog"])


@pytest.mark.parametrize(
    "tokens, match",
    [
        (torch.tensor([[1, 3, -1, 5, 2]]), r"lie in \[0, 29\)"),  # was 'w' (alphabet[-1 - 3])
        (torch.tensor([[1, 3, 29, 5, 2]]), r"lie in \[0, 29\)"),  # was a raw IndexError
        (torch.tensor([[1.0, 3.0, 4.0, 2.0]]), "integer tensor"),  # was a raw TypeError
        (torch.tensor([1, 3, 4, 2]), r"\(B, T\)"),
    ],
)
def test_decode_refuses_what_is_not_tokens(tokens, match):
    with pytest.raises(ValueError, match=match):
        W.CharVocabulary().decode(tokens)
