"""The recurrent VAE of chapter 8 (vae_lib.sequence_vae) against step-by-step computations."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from vae_lib.sequence_vae import (
    SequenceVAE,
    SequenceVAEConfig,
    active_latent_units,
    fit_sequence_vae,
    sequence_iwae_bound,
)
from vae_lib.words import CharVocabulary

VOCAB = CharVocabulary()
WORDS = ["cat", "a", "latent", "zythum", "dog"]


def small(latent_dim=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    cfg = SequenceVAEConfig(
        embedding_dim=5, hidden_dim=7, decoder_hidden_dim=6, latent_dim=latent_dim, **kwargs
    )
    return SequenceVAE(cfg).eval()


def loop_log_likelihood(model, word, z):
    """log p(word | z) by running the decoder's GRU one step at a time."""
    tokens, _ = VOCAB.encode([word])
    cell = torch.nn.GRUCell(model.decoder.input_size, model.decoder.hidden_size)
    cell.weight_ih.data, cell.weight_hh.data = (
        model.decoder.weight_ih_l0,
        model.decoder.weight_hh_l0,
    )
    cell.bias_ih.data, cell.bias_hh.data = model.decoder.bias_ih_l0, model.decoder.bias_hh_l0
    if z is None:
        h = torch.zeros(1, model.decoder.hidden_size)
    else:
        h = torch.tanh(model.to_initial_state(z.view(1, -1)))
    total = 0.0
    for t in range(len(word) + 1):
        x = model.embedding(tokens[:, t])
        if z is not None:
            x = torch.cat([x, z.view(1, -1)], dim=1)
        h = cell(x, h)
        total += Categorical(logits=model.to_logits(h)[0]).log_prob(tokens[0, t + 1])
    return total


@torch.no_grad()
@pytest.mark.parametrize("latent_dim", [0, 3])
def test_the_sequence_likelihood_is_the_step_by_step_sum_of_categoricals(latent_dim):
    model = small(latent_dim)
    tokens, lengths = VOCAB.encode(WORDS)
    z = torch.randn(len(WORDS), latent_dim) if latent_dim else None
    got = model.log_px_given_z(tokens, lengths, z)
    for i, word in enumerate(WORDS):
        want = loop_log_likelihood(model, word, None if z is None else z[i])
        assert got[i].item() == pytest.approx(want.item(), abs=1e-4)


@torch.no_grad()
def test_the_elbo_is_reconstruction_minus_the_closed_form_kl():
    model = small()
    tokens, lengths = VOCAB.encode(WORDS)
    out = model(tokens, lengths, beta=2.0, generator=torch.Generator().manual_seed(0))
    q = Normal(out.mu, (0.5 * out.logvar).exp())
    kl = kl_divergence(q, Normal(torch.zeros_like(out.mu), 1.0))
    torch.testing.assert_close(out.kl_per_dim, kl)
    torch.testing.assert_close(out.elbo, out.reconstruction - 2.0 * kl.sum(-1))
    torch.testing.assert_close(out.reconstruction, model.log_px_given_z(tokens, lengths, out.z))


@torch.no_grad()
def test_a_language_model_has_no_code_and_its_bound_is_its_likelihood():
    model = small(latent_dim=0)
    tokens, lengths = VOCAB.encode(WORDS)
    out = model(tokens, lengths)
    assert out.kl.abs().max() == 0 and out.z.shape == (len(WORDS), 0)
    torch.testing.assert_close(out.elbo, out.reconstruction)
    torch.testing.assert_close(sequence_iwae_bound(model, tokens, lengths, 10), out.elbo)
    with pytest.raises(ValueError, match="no encoder"):
        model.encode(tokens, lengths)


@torch.no_grad()
def test_the_iwae_bound_reaches_log_p_x_when_the_decoder_ignores_z():
    # with every weight from z to the decoder at zero, p(x | z) = p(x), and L_K -> log p(x)
    # as K grows while L_1 = log p(x) - KL on average
    model = small(seed=2)
    model.to_initial_state.weight.zero_()
    model.decoder.weight_ih_l0[:, -model.latent_dim :] = 0
    tokens, lengths = VOCAB.encode(WORDS)
    log_px = model.log_px_given_z(tokens, lengths, torch.zeros(len(WORDS), 3))
    g = torch.Generator().manual_seed(0)
    bound = sequence_iwae_bound(model, tokens, lengths, 4000, generator=g)
    torch.testing.assert_close(bound, log_px, atol=0.05, rtol=0)
    kl = model(tokens, lengths).kl
    assert (kl > 0.1).all()
    draws = 4000  # one-sample bounds average log p(x) - KL
    one = sequence_iwae_bound(model, tokens.repeat(draws, 1), lengths.repeat(draws), 1, generator=g)
    torch.testing.assert_close(one.view(draws, -1).mean(0), log_px - kl, atol=0.1, rtol=0)


@torch.no_grad()
def test_word_dropout_hides_the_letters_from_the_decoder():
    model = small(latent_dim=0)
    tokens, _ = VOCAB.encode(["cat", "dog"])
    g = torch.Generator().manual_seed(0)
    hidden = model.decode_logits(tokens, None, word_dropout=1.0, generator=g)
    torch.testing.assert_close(hidden[0], hidden[1])  # only the start token is left to see
    seen = model.decode_logits(tokens, None)
    assert not torch.allclose(seen[0], seen[1])


def test_a_short_run_learns_to_reconstruct_a_few_words():
    torch.manual_seed(1)
    model = SequenceVAE(
        SequenceVAEConfig(embedding_dim=16, hidden_dim=32, decoder_hidden_dim=32, latent_dim=4)
    )
    words = ["cat", "dog", "latent", "zythum"] * 64
    history = fit_sequence_vae(
        model,
        words,
        epochs=30,
        batch_size=64,
        lr=1e-2,
        word_dropout=0.5,
        val_words=words[:4],
        progress=False,
    )
    assert history.train_elbo[-1] > history.train_elbo[0] + 5
    tokens, lengths = VOCAB.encode(words[:4])
    mu, _ = model.eval().encode(tokens, lengths)
    assert VOCAB.decode(model.greedy_decode(mu)) == words[:4]
    assert history.val_active_units[-1] >= 1


def test_greedy_decoding_writes_words_and_stops_at_their_end():
    model = small(latent_dim=0)
    tokens = model.greedy_decode(None, max_length=6, n=3)
    assert tokens.shape[0] == 3 and tokens.shape[1] <= 7 and (tokens[:, 0] == 1).all()
    words = VOCAB.decode(tokens)
    assert all(set(w) <= set("abcdefghijklmnopqrstuvwxyz") and len(w) <= 6 for w in words)
    sampled = model.greedy_decode(
        None, n=3, sample=True, generator=torch.Generator().manual_seed(0)
    )
    assert sampled.shape[0] == 3


def test_active_units_count_dimensions_whose_mean_varies():
    mu = torch.cat([torch.randn(500, 2), torch.full((500, 1), 0.3)], dim=1)
    assert active_latent_units(mu) == 2
    assert active_latent_units(torch.zeros(5, 0)) == 0


@pytest.mark.parametrize(
    "tokens, lengths, match",
    [
        (torch.tensor([[1, 5, 2]]), torch.tensor([4]), "length"),
        (torch.tensor([[1, 99, 2]]), torch.tensor([3]), "lie in"),
        (torch.tensor([[1.0, 5.0, 2.0]]), torch.tensor([3]), "int64"),
        (torch.tensor([[1, 5, 2]]), torch.tensor([3, 3]), "one per word"),
    ],
)
def test_bad_batches_are_refused(tokens, lengths, match):
    with pytest.raises(ValueError, match=match):
        small()(tokens, lengths)


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="latent_dim"):
        SequenceVAEConfig(latent_dim=-1)
    with pytest.raises(ValueError, match="vocab_size"):
        SequenceVAEConfig(vocab_size=2)
    assert math.isfinite(SequenceVAEConfig().vocab_size)


def test_character_matches_counts_exact_words_and_aligned_letters():
    from vae_lib.sequence_vae import character_matches

    # "cat"/"cat": 3 of 3; "dog"/"dot": 2 of 3; "a"/"ab": 1 of 2 (the extra letter is wrong)
    assert character_matches(["cat", "dog", "a"], ["cat", "dot", "ab"]) == (1, 6, 8)
    with pytest.raises(ValueError, match="2 targets"):
        character_matches(["cat", "dog"], ["cat"])
