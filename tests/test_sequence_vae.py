"""The recurrent VAE of chapter 8 (vae_lib.sequence_vae) against step-by-step computations."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from vae_lib import evaluate, fit, iwae_bound
from vae_lib.distributions import diagonal_gaussian_log_prob, standard_normal_log_prob
from vae_lib.sequence_vae import (
    SequenceVAE,
    SequenceVAEConfig,
    active_latent_units,
    character_matches,
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
    torch.testing.assert_close(iwae_bound(model, (tokens, lengths), 10), out.elbo)
    with pytest.raises(ValueError, match="no encoder"):
        model.encode(tokens, lengths)


@torch.no_grad()
def test_the_one_sample_bound_is_the_monte_carlo_elbo_at_the_same_draw():
    model = small()
    tokens, lengths = VOCAB.encode(WORDS)
    out = model(tokens, lengths, generator=torch.Generator().manual_seed(5))
    mu, logvar = model.encode(tokens, lengths)
    manual = (
        out.reconstruction
        + standard_normal_log_prob(out.z)
        - diagonal_gaussian_log_prob(out.z, mu, logvar)
    )
    bound = iwae_bound(model, (tokens, lengths), 1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(bound, manual)


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
    bound = iwae_bound(model, (tokens, lengths), 4000, generator=g)
    torch.testing.assert_close(bound, log_px, atol=0.05, rtol=0)
    kl = model(tokens, lengths).kl
    assert (kl > 0.1).all()
    draws = 4000  # one-sample bounds average log p(x) - KL
    one = iwae_bound(model, (tokens.repeat(draws, 1), lengths.repeat(draws)), 1, generator=g)
    torch.testing.assert_close(one.view(draws, -1).mean(0), log_px - kl, atol=0.1, rtol=0)


@torch.no_grad()
def test_the_bound_scores_8192_word_sample_pairs_at_a_time(monkeypatch):
    # the chunking of the book's measurements: at most 8192 (word, sample) pairs per decoder call
    model = small()
    tokens, lengths = VOCAB.encode(WORDS)
    sizes = []
    score = model.log_likelihood

    def counted(batch, z):
        sizes.append(tuple(z.shape[:2]))
        return score(batch, z)

    monkeypatch.setattr(model, "log_likelihood", counted)
    bound = iwae_bound(model, (tokens, lengths), 2000, generator=torch.Generator().manual_seed(1))
    assert sizes == [(8192 // 5, 5), (2000 - 8192 // 5, 5)]
    assert bound.shape == (5,) and torch.isfinite(bound).all()


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
    history = fit(
        model,
        words,
        epochs=30,
        val=words[:4],
        batch_size=64,
        lr=1e-2,
        word_dropout=0.5,
        progress=False,
    )
    assert history.train_elbo[-1] > history.train_elbo[0] + 5
    assert history.settings["lr_schedule"] == "cosine" and history.settings["n_train"] == 256
    tokens, lengths = VOCAB.encode(words[:4])
    mu, _ = model.eval().encode(tokens, lengths)
    assert VOCAB.decode(model.greedy_decode(mu)) == words[:4]
    assert history.val_active_units[-1] >= 1
    assert len(history.val_elbo) == len(history.val_kl) == 30


@torch.no_grad()
def test_evaluate_averages_the_one_sample_elbo_without_word_dropout():
    model = small().train()
    parts = evaluate(model, WORDS, generator=torch.Generator().manual_seed(3))
    tokens, lengths = VOCAB.encode(WORDS)
    out = model(tokens, lengths, generator=torch.Generator().manual_seed(3))
    assert parts["elbo"] == pytest.approx(out.elbo.mean().item(), abs=1e-5)
    assert parts["reconstruction"] == pytest.approx(out.reconstruction.mean().item(), abs=1e-5)
    assert parts["kl"] == pytest.approx(out.kl.mean().item(), abs=1e-5)
    assert parts["active_units"] == active_latent_units(out.mu)
    assert model.training  # the model's mode is restored
    lm = evaluate(small(latent_dim=0), WORDS)
    assert lm["kl"] == 0 and lm["active_units"] == 0 and lm["elbo"] == lm["reconstruction"]
    assert evaluate(small(), ["cat"])["active_units"] == 0  # one word: nothing varies


def test_the_options_have_the_trainers_defaults_and_are_checked_by_name():
    options = SequenceVAE.Options()
    assert (options.batch_size, options.lr, options.lr_schedule) == (128, 1e-3, "cosine")
    assert (options.beta, options.kl_warmup_epochs, options.free_bits) == (1.0, 0, 0.0)
    assert options.word_dropout == 0.0
    model = small()
    with pytest.raises(ValueError, match="word_droput"):
        fit(model, WORDS, epochs=1, progress=False, word_droput=0.5)
    for name, value in [
        ("word_dropout", 1.5),
        ("kl_warmup_epochs", 2.5),
        ("free_bits", -1.0),
        ("beta", float("nan")),
        ("lr_schedule", "linear"),
    ]:
        with pytest.raises(ValueError, match=name):
            fit(model, WORDS, epochs=1, progress=False, **{name: value})


@torch.no_grad()
def test_the_loss_weighs_the_kl_by_the_warm_up_at_the_step_being_taken():
    from vae_lib.training import Run

    model = small()
    tokens, lengths = VOCAB.encode(WORDS)
    options = SequenceVAE.Options(beta=2.0, kl_warmup_epochs=1)
    for step, weight in [(0, 2.0 * 1 / 4), (2, 2.0 * 3 / 4), (9, 2.0)]:
        run = Run(options, torch.Generator().manual_seed(0), n_batches=4, step=step)
        loss, parts = model.loss((tokens, lengths), run)
        out = model(tokens, lengths, generator=torch.Generator().manual_seed(0))
        expected = -out.reconstruction.mean() + weight * out.kl.mean()
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(parts["elbo"], out.reconstruction - out.kl)
    run = Run(SequenceVAE.Options(free_bits=0.5), torch.Generator().manual_seed(0))
    loss, _ = model.loss((tokens, lengths), run)
    out = model(tokens, lengths, generator=torch.Generator().manual_seed(0))
    floor = out.kl_per_dim.mean(0).clamp(min=0.5).sum()
    torch.testing.assert_close(loss, -out.reconstruction.mean() + floor)


def test_the_model_trains_and_scores_on_each_device(device):
    torch.manual_seed(0)
    model = SequenceVAE(
        SequenceVAEConfig(embedding_dim=4, hidden_dim=8, decoder_hidden_dim=8, latent_dim=2)
    ).to(device)
    history = fit(model, WORDS * 4, epochs=2, val=WORDS, batch_size=8, progress=False)
    assert history.settings["device"].startswith(device.type)
    g = torch.Generator(device).manual_seed(0)
    bound = iwae_bound(model, VOCAB.encode(WORDS), 20, generator=g)  # CPU tokens are moved
    assert bound.device.type == device.type and torch.isfinite(bound).all()
    tokens, lengths = (t.to(device) for t in VOCAB.encode(WORDS))
    mu, _ = model.encode(tokens, lengths)
    words = VOCAB.decode(model.greedy_decode(mu, sample=True, generator=g).cpu())
    assert len(words) == len(WORDS)


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
    assert small().greedy_decode(torch.zeros(0, 3)).shape == (0, 2)


def test_active_units_count_dimensions_whose_mean_varies():
    mu = torch.cat([torch.randn(500, 2), torch.full((500, 1), 0.3)], dim=1)
    assert active_latent_units(mu) == 2
    assert active_latent_units(torch.zeros(5, 0)) == 0
    with pytest.raises(ValueError, match="mu"):
        active_latent_units(torch.zeros(5))


# -- what the public methods refuse ----------------------------------------------------------
TOK, LEN = VOCAB.encode(["cat", "house", "a"])  # [1 c a t 2 0 0], [1 h o u s e 2], [1 a 2 0...]


def _edit(row, col, value):
    tokens = TOK.clone()
    tokens[row, col] = value
    return tokens


# each a batch whose lengths disagree with its tokens (reliability review SW4): before, each was
# scored as given (pads scored, letters skipped, specials read as letters)
DISAGREEING = {
    "length too short": (TOK, torch.tensor([3, 7, 3]), r"lengths\[0\] = 3 disagrees"),
    "length too long": (TOK, torch.tensor([7, 7, 3]), r"lengths\[0\] = 7 disagrees"),
    "fractional length": (TOK, torch.tensor([5.6, 7.0, 3.0]), "integer tensor"),
    "pad inside a word": (_edit(1, 3, 0), LEN, r"tokens\[1\] has the pad token 0 at position 3"),
    "end inside a word": (_edit(0, 2, 2), LEN, r"tokens\[0\] has the end token 2 at position 2"),
    "start inside a word": (_edit(0, 1, 1), LEN, r"tokens\[0\] has the start token"),
    "no start token": (_edit(0, 0, 5), LEN, r"tokens\[0\] does not begin with the start"),
    "a letter after the end": (
        _edit(2, 4, 5),
        LEN,
        r"tokens\[2\] has the letter token 5 at position 4, after",
    ),
}


@pytest.mark.parametrize("case", list(DISAGREEING))
@pytest.mark.parametrize("method", ["forward", "encode", "log_px_given_z"])
def test_words_whose_lengths_disagree_with_their_tokens_are_refused(case, method):
    tokens, lengths, match = DISAGREEING[case]
    model = small()
    call = {
        "forward": lambda: model(tokens, lengths),
        "encode": lambda: model.encode(tokens, lengths),
        "log_px_given_z": lambda: model.log_px_given_z(tokens, lengths, torch.zeros(3, 3)),
    }[method]
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("case", list(DISAGREEING))
@pytest.mark.parametrize("latent_dim", [0, 3])
def test_the_bound_refuses_words_whose_lengths_disagree_with_their_tokens(case, latent_dim):
    tokens, lengths, match = DISAGREEING[case]
    with pytest.raises(ValueError, match=match):
        iwae_bound(small(latent_dim), (tokens, lengths), 5)


@pytest.mark.parametrize(
    "tokens, lengths, match",
    [
        (torch.tensor([[1, 5, 2]]), torch.tensor([4]), "lengths"),
        (torch.tensor([[1, 99, 2]]), torch.tensor([3]), "lie in"),
        (torch.tensor([[1.0, 5.0, 2.0]]), torch.tensor([3]), "int64"),
        (torch.tensor([[1, 5, 2]]), torch.tensor([3, 3]), "one per word"),
        (torch.tensor([[1]]), torch.tensor([1]), "T >= 2"),
    ],
)
def test_bad_batches_are_refused(tokens, lengths, match):
    with pytest.raises(ValueError, match=match):
        small()(tokens, lengths)


def test_a_batch_for_the_bound_must_be_tokens_and_lengths():
    with pytest.raises(ValueError, match=r"\(tokens, lengths\)"):
        iwae_bound(small(), TOK, 5)


@torch.no_grad()
def test_an_empty_batch_gives_empty_results():
    empty, no_lengths = torch.empty(0, 5, dtype=torch.long), torch.empty(0, dtype=torch.long)
    for model in (small(), small(latent_dim=0)):
        assert model(empty, no_lengths).elbo.shape == (0,)
    mu, logvar = small().encode(empty, no_lengths)
    assert mu.shape == logvar.shape == (0, 3)


@pytest.mark.parametrize("beta", [-1.0, float("nan"), "1"])
def test_forward_checks_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        small()(TOK, LEN, beta=beta)


def test_forward_checks_its_generator():
    with pytest.raises(ValueError, match="generator"):
        small()(TOK, LEN, generator="x")


@pytest.mark.parametrize("words", ["cat", ("cat", 5), iter(["cat"])])
@pytest.mark.parametrize("where", ["data", "val"])
def test_fit_refuses_what_is_not_a_list_of_words(words, where):
    # a string was read as a list of one-letter words (reliability review SW5)
    data, val = (words, None) if where == "data" else (WORDS, words)
    model = small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=f"^{where} must"):
        fit(model, data, val=val, epochs=1, progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_fit_names_an_empty_validation_list():
    with pytest.raises(ValueError, match="^val must be a non-empty list"):
        fit(small(), WORDS, val=[], epochs=1, progress=False)


def test_fit_refuses_words_the_model_cannot_spell():
    model = small(vocab_size=10)  # the tokens of the letters a..g only
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        fit(model, ["cat"], epochs=1, progress=False)


@pytest.mark.parametrize(
    "z, kwargs, match",
    [
        (torch.zeros(2, 3, dtype=torch.float64), {}, "dtype"),
        (torch.full((2, 3), float("nan")), {}, "z"),
        (torch.zeros(2, 4), {}, r"z has shape \(2, 4\); expected \(B, J=3\)"),
        (None, {}, "z must be"),
        (torch.zeros(2, 3), {"sample": "yes"}, "sample"),
        (torch.zeros(2, 3), {"sample": True, "generator": "x"}, "generator"),
        (torch.zeros(2, 3), {"n": 3}, "n=3"),
    ],
)
def test_greedy_decoding_checks_its_arguments(z, kwargs, match):
    with pytest.raises(ValueError, match=match):
        small().greedy_decode(z, max_length=3, **kwargs)


def test_a_language_model_refuses_a_code():
    lm = small(latent_dim=0)
    with pytest.raises(ValueError, match="z=None"):
        lm.greedy_decode(torch.zeros(3, 4), n=2)
    with pytest.raises(ValueError, match="z=None"):
        lm.log_px_given_z(TOK, LEN, torch.zeros(3, 4))


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="latent_dim"):
        SequenceVAEConfig(latent_dim=-1)
    with pytest.raises(ValueError, match="vocab_size"):
        SequenceVAEConfig(vocab_size=2)
    assert math.isfinite(SequenceVAEConfig().vocab_size)


def test_character_matches_counts_exact_words_and_aligned_letters():
    # "cat"/"cat": 3 of 3; "dog"/"dot": 2 of 3; "a"/"ab": 1 of 2 (the extra letter is wrong)
    assert character_matches(["cat", "dog", "a"], ["cat", "dot", "ab"]) == (1, 6, 8)
    with pytest.raises(ValueError, match="2 targets"):
        character_matches(["cat", "dog"], ["cat"])
    with pytest.raises(ValueError, match="decoded must hold strings"):
        character_matches(["cat"], [5])
