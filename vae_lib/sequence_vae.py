"""A VAE for sequences of discrete symbols: a recurrent encoder, a Gaussian code, and an
autoregressive recurrent decoder (Bowman et al., 2016), here on words as sequences of letters.

The generative model writes a word one token at a time, each token's distribution depending on
the code z and on the tokens before it:

    p(x | z) = prod_t p(x_t | x_<t, z),   p(x_t | x_<t, z) = Categorical(softmax(W h_t)),

with h_t the state of a GRU that reads x_<t (and z at every step) and starts from a state
computed from z. The encoder q(z | x) is a diagonal Gaussian computed from the last state of a
second GRU that reads the whole word. The ELBO, the reparameterization and the KL term are those
of chapters 3 and 4; the log-likelihood is a sum over time steps.

``latent_dim=0`` gives the same decoder without z: a character language model p(x) =
prod_t p(x_t | x_<t), the baseline that explains posterior collapse. A decoder this strong can
model the words without z, and a VAE trained naively lets KL(q(z | x) || p(z)) fall to about zero
(the *posterior collapse* of chapter 5's large beta, here at beta = 1). :func:`fit_sequence_vae`
has the usual remedies: KL annealing (``kl_warmup_epochs``), word dropout (``word_dropout``: the
decoder's input tokens are hidden at random, so it must rely on z), free bits (``free_bits``
nats per latent dimension), and a weaker decoder (a small ``decoder_hidden_dim``).

Tokens follow :class:`vae_lib.words.CharVocabulary`: 0 pads, 1 starts a word, 2 ends it. A batch
is ``tokens (B, T)`` with ``lengths (B,)`` counting the start and end tokens; the model predicts
tokens 1 .. length-1 (the letters and the end token) from those before them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from . import arguments
from .distributions import (
    diagonal_gaussian_log_prob,
    log_mean_exp,
    reparameterize,
    standard_normal_log_prob,
)
from .loop import History, NonFiniteWatch, TrainingState, train_loop
from .training import cosine_schedule, make_adam
from .words import CharVocabulary

PAD, BOS, EOS = CharVocabulary.PAD, CharVocabulary.BOS, CharVocabulary.EOS


@dataclass(frozen=True)
class SequenceVAEConfig:
    """Settings of a :class:`SequenceVAE`.

    Attributes:
        vocab_size: number of tokens, special tokens included (29 for letters).
        embedding_dim: size of each token's embedding (shared by encoder and decoder).
        hidden_dim: state size of the encoder GRU.
        decoder_hidden_dim: state size of the decoder GRU (small for a "weaker decoder").
        latent_dim: J, the dimension of z; 0 makes the model a language model without z.
    """

    vocab_size: int = CharVocabulary().size
    embedding_dim: int = 32
    hidden_dim: int = 128
    decoder_hidden_dim: int = 128
    latent_dim: int = 16

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "hidden_dim", "decoder_hidden_dim"):
            object.__setattr__(self, name, arguments.positive_int(name, getattr(self, name)))
        latent = arguments.integer("latent_dim", self.latent_dim, minimum=0)
        object.__setattr__(self, "latent_dim", latent)
        if self.vocab_size <= EOS:
            raise ValueError("vocab_size must include the pad, start and end tokens")


@dataclass
class SequenceVAEOutput:
    """One forward pass; per-word tensors are ``(B,)`` and in nats.

    Attributes:
        elbo: reconstruction - beta * kl (for a language model: the log-likelihood).
        reconstruction: log p(x | z) at one z ~ q(z | x), summed over the predicted tokens.
        kl: KL(q(z | x) || N(0, I)), closed form (zeros for a language model).
        kl_per_dim: ``(B, J)`` the KL of each latent dimension.
        mu, logvar, z: ``(B, J)`` the encoder's parameters and the sampled code.
        logits: ``(B, T-1, V)`` the decoder's logits of tokens 1 .. T-1.
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    logits: torch.Tensor


class SequenceVAE(nn.Module):
    """GRU encoder -> diagonal Gaussian z -> autoregressive GRU decoder (or, with
    ``latent_dim=0``, the decoder alone: a language model).

    Example::

        vocab = CharVocabulary()
        tokens, lengths = vocab.encode(["cat", "dog"])
        model = SequenceVAE(SequenceVAEConfig())
        out = model(tokens, lengths)          # out.elbo, out.reconstruction, out.kl: (2,)
        words = vocab.decode(model.greedy_decode(torch.zeros(2, 16)))
    """

    def __init__(self, config: SequenceVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else SequenceVAEConfig()
        cfg = self.config
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=PAD)
        j = cfg.latent_dim
        if j:
            self.encoder = nn.GRU(cfg.embedding_dim, cfg.hidden_dim, batch_first=True)
            self.to_posterior = nn.Linear(cfg.hidden_dim, 2 * j)
            self.to_initial_state = nn.Linear(j, cfg.decoder_hidden_dim)
        self.decoder = nn.GRU(cfg.embedding_dim + j, cfg.decoder_hidden_dim, batch_first=True)
        self.to_logits = nn.Linear(cfg.decoder_hidden_dim, cfg.vocab_size)

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check(self, tokens: torch.Tensor, lengths: torch.Tensor) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
            raise ValueError("tokens must be a (B, T) int64 tensor (CharVocabulary.encode)")
        if not isinstance(lengths, torch.Tensor) or lengths.shape != (tokens.shape[0],):
            raise ValueError(f"lengths must be ({tokens.shape[0]},), one per word")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(f"tokens must lie in [0, {self.config.vocab_size})")
        if len(lengths) and (lengths.min() < 2 or lengths.max() > tokens.shape[1]):
            raise ValueError("each length must count the start and end tokens and fit in T")

    # -- the networks -----------------------------------------------------------------------
    def encode(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x): ``tokens (B, T)``, ``lengths (B,)`` -> ``(mu, logvar)``, each
        ``(B, J)``."""
        if not self.latent_dim:
            raise ValueError("a language model (latent_dim=0) has no encoder")
        self._check(tokens, lengths)
        packed = pack_padded_sequence(
            self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, last = self.encoder(packed)  # (1, B, H): the state after each word's last token
        mu, logvar = self.to_posterior(last[0]).chunk(2, dim=-1)
        return mu, logvar

    def decode_logits(
        self,
        tokens: torch.Tensor,
        z: torch.Tensor | None,
        *,
        word_dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits of tokens 1 .. T-1 given tokens 0 .. T-2 and z:
        ``tokens (B, T)``, ``z (B, J)`` (None for a language model) -> ``(B, T-1, V)``.

        ``word_dropout`` replaces each input letter (not the start token) by the pad token,
        whose embedding is zero, with that probability (Bowman et al.'s word dropout).
        """
        inputs = tokens[:, :-1]
        if word_dropout > 0:
            drop = (
                torch.rand(inputs.shape, device=inputs.device, generator=generator) < word_dropout
            )
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, PAD)
        x = self.embedding(inputs)
        if self.latent_dim:
            if z is None or z.shape != (tokens.shape[0], self.latent_dim):
                raise ValueError(f"z must be (B={tokens.shape[0]}, J={self.latent_dim})")
            x = torch.cat([x, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
            h0 = torch.tanh(self.to_initial_state(z)).unsqueeze(0)
            states, _ = self.decoder(x, h0)
        else:
            states, _ = self.decoder(x)
        return self.to_logits(states)

    def log_px_given_z(
        self, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor | None
    ) -> torch.Tensor:
        """log p(x | z) (for a language model log p(x)) of each word in nats, summed over its
        predicted tokens: ``(B,)``."""
        self._check(tokens, lengths)
        return _token_log_likelihood(self.decode_logits(tokens, z), tokens, lengths)

    # -- the objective ----------------------------------------------------------------------
    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        *,
        beta: float = 1.0,
        word_dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> SequenceVAEOutput:
        """One-sample ELBO of each word (see :class:`SequenceVAEOutput`)."""
        self._check(tokens, lengths)
        word_dropout = arguments.probability("word_dropout", word_dropout, allow_one=True)
        b = tokens.shape[0]
        if self.latent_dim:
            mu, logvar = self.encode(tokens, lengths)
            z = reparameterize(mu, logvar, generator=generator)
            kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
        else:
            mu = logvar = z = kl_per_dim = tokens.new_zeros((b, 0), dtype=torch.float32)
        logits = self.decode_logits(
            tokens, z if self.latent_dim else None, word_dropout=word_dropout, generator=generator
        )
        reconstruction = _token_log_likelihood(logits, tokens, lengths)
        kl = kl_per_dim.sum(-1)
        return SequenceVAEOutput(
            elbo=reconstruction - beta * kl,
            reconstruction=reconstruction,
            kl=kl,
            kl_per_dim=kl_per_dim,
            mu=mu,
            logvar=logvar,
            z=z,
            logits=logits,
        )

    # -- using a trained model --------------------------------------------------------------
    @torch.no_grad()
    def greedy_decode(
        self,
        z: torch.Tensor | None,
        max_length: int = 24,
        *,
        n: int | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Write words from codes ``z (B, J)`` (for a language model ``z=None`` and ``n`` words),
        one token at a time: the most probable token (``sample=False``) or a draw from the
        decoder's distribution. Returns ``(B, <= max_length + 1)`` tokens starting with the start
        token; :meth:`CharVocabulary.decode` reads them."""
        max_length = arguments.positive_int("max_length", max_length)
        if self.latent_dim:
            if z is None or z.dim() != 2 or z.shape[1] != self.latent_dim:
                raise ValueError(f"z must be (B, J={self.latent_dim})")
            b, device = z.shape[0], z.device
            h = torch.tanh(self.to_initial_state(z)).unsqueeze(0)
        else:
            b = arguments.positive_int("n", n)
            device = self.device
            h = torch.zeros(1, b, self.config.decoder_hidden_dim, device=device)
        token = torch.full((b, 1), BOS, dtype=torch.long, device=device)
        out, done = [token], torch.zeros(b, dtype=torch.bool, device=device)
        for _ in range(max_length):
            x = self.embedding(token)
            if self.latent_dim:
                x = torch.cat([x, z.unsqueeze(1)], dim=-1)
            state, h = self.decoder(x, h)
            logits = self.to_logits(state[:, -1])
            logits[:, PAD] = -math.inf
            logits[:, BOS] = -math.inf
            if sample:
                token = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            else:
                token = logits.argmax(-1, keepdim=True)
            token = token.masked_fill(done.unsqueeze(1), PAD)
            out.append(token)
            done |= token[:, 0] == EOS
            if done.all():
                break
        return torch.cat(out, dim=1)


def _token_log_likelihood(
    logits: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Sum over t = 1 .. length-1 of log softmax(logits)[t-1, tokens[t]]: ``(..., B)`` nats for
    ``logits (..., B, T-1, V)``."""
    targets = tokens[:, 1:]
    log_p = torch.log_softmax(logits, dim=-1)
    picked = log_p.gather(-1, targets.expand(*log_p.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    steps = torch.arange(targets.shape[1], device=tokens.device)
    mask = steps < (lengths.to(tokens.device) - 1).unsqueeze(1)
    return (picked * mask).sum(-1)


@torch.no_grad()
def sequence_iwae_bound(
    model: SequenceVAE,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
    max_sequences: int = 8192,
) -> torch.Tensor:
    """The importance-weighted bound L_K on log p(x) of each word with K = ``k`` samples of
    q(z | x) (Burda et al., 2015): ``(B,)`` nats. For a language model, the exact log p(x).
    At most ``max_sequences`` (word, sample) pairs go through the decoder at once."""
    k = arguments.positive_int("k", k)
    chunk = max(1, arguments.positive_int("max_sequences", max_sequences) // max(1, len(tokens)))
    device = model.device
    tokens, lengths = tokens.to(device), lengths.to(device)
    if not model.latent_dim:
        return model.log_px_given_z(tokens, lengths, None)
    mu, logvar = model.encode(tokens, lengths)
    log_w = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        z = reparameterize(mu, logvar, generator=generator, n_samples=n)  # (n, B, J)
        b = tokens.shape[0]
        flat_z = z.reshape(n * b, -1)
        rep_tokens, rep_lengths = tokens.repeat(n, 1), lengths.repeat(n)
        log_px = model.log_px_given_z(rep_tokens, rep_lengths, flat_z).reshape(n, b)
        log_w.append(
            log_px + standard_normal_log_prob(z) - diagonal_gaussian_log_prob(z, mu, logvar)
        )
    return log_mean_exp(torch.cat(log_w), dim=0)


def active_latent_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across words: Cov_x(E_q[z_j]) >
    ``threshold`` (Burda et al., 2015), from ``mu (N, J)``."""
    if mu.shape[1] == 0:
        return 0
    return int((mu.var(0) > threshold).sum())


def character_matches(targets: list[str], decoded: list[str]) -> tuple[int, int, int]:
    """How well ``decoded`` words reproduce ``targets``: ``(exact, right, compared)``, the number
    of words decoded exactly, of characters equal position by position, and of positions
    compared (the longer of the two words, so a missing or extra letter counts as wrong)."""
    if len(targets) != len(decoded):
        raise ValueError(f"{len(targets)} targets but {len(decoded)} decoded words")
    exact = sum(t == d for t, d in zip(targets, decoded, strict=True))
    right = sum(
        sum(a == b for a, b in zip(t, d, strict=False))
        for t, d in zip(targets, decoded, strict=True)
    )
    compared = sum(max(len(t), len(d)) for t, d in zip(targets, decoded, strict=True))
    return exact, right, compared


def _word_batches(tokens, lengths, batch_size, generator):
    order = torch.randperm(tokens.shape[0], generator=generator, device=generator.device)
    for start in range(0, tokens.shape[0], batch_size):
        index = order[start : start + batch_size]
        width = int(lengths[index].max())
        yield tokens[index, :width], lengths[index]


@torch.no_grad()
def evaluate_sequence_elbo(
    model: SequenceVAE,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    *,
    batch_size: int = 2000,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Average one-sample ELBO, reconstruction and KL per word, nats; the model in eval mode."""
    was_training = model.training
    model.eval()
    sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
    for start in range(0, tokens.shape[0], batch_size):
        tb, lb = tokens[start : start + batch_size], lengths[start : start + batch_size]
        tb = tb[:, : int(lb.max())].to(model.device)
        out = model(tb, lb.to(model.device), generator=generator)
        for name in sums:
            sums[name] += getattr(out, name).sum().item()
    model.train(was_training)
    return {name: value / tokens.shape[0] for name, value in sums.items()}


def fit_sequence_vae(
    model: SequenceVAE,
    train_words: list[str],
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 1.0,
    kl_warmup_epochs: int = 0,
    free_bits: float = 0.0,
    word_dropout: float = 0.0,
    val_words: list[str] | None = None,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train a :class:`SequenceVAE` (or a language model) with Adam and a cosine learning rate.

    Args:
        model: the model.
        train_words, val_words: lists of words (:func:`vae_lib.words.load_words`).
        epochs, batch_size, lr: the schedule.
        beta: weight of the KL term.
        kl_warmup_epochs: the KL weight rises linearly from 0 to ``beta`` over this many epochs
            (KL annealing; 0: none).
        free_bits: each latent dimension's KL counts as at least this many nats in the loss
            (averaged over the minibatch first, Kingma et al., 2016).
        word_dropout: probability of hiding each input letter of the decoder (Bowman et al.).
        progress, seed, checkpoint, checkpoint_seconds: as in :func:`vae_lib.fit`.

    Returns:
        :class:`vae_lib.History` with ``train_elbo``, ``train_reconstruction``, ``train_kl`` and,
        with validation words, ``val_elbo``, ``val_reconstruction``, ``val_kl`` (the ELBO at
        beta = 1, without word dropout) and ``val_active_units``, nats per word.
    """
    if not isinstance(model, SequenceVAE):
        raise ValueError(f"model must be a SequenceVAE, got {type(model).__name__}")
    epochs = arguments.positive_int("epochs", epochs)
    batch_size = arguments.positive_int("batch_size", batch_size)
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    beta = arguments.real("beta", beta, minimum=0.0)
    kl_warmup_epochs = arguments.integer("kl_warmup_epochs", kl_warmup_epochs, minimum=0)
    free_bits = arguments.real("free_bits", free_bits, minimum=0.0)
    word_dropout = arguments.probability("word_dropout", word_dropout, allow_one=True)
    seed = arguments.seed("seed", seed)
    vocab = CharVocabulary()
    device = model.device
    tokens, lengths = (t.to(device) for t in vocab.encode(list(train_words)))
    val = None
    if val_words is not None:
        val = tuple(t.to(device) for t in vocab.encode(list(val_words)))
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = make_adam(model.parameters(), lr)
    n_batches = math.ceil(tokens.shape[0] / batch_size)
    scheduler = cosine_schedule(optimizer, epochs * n_batches)
    curves = ("train_elbo", "train_reconstruction", "train_kl")
    val_curves = ("val_elbo", "val_reconstruction", "val_kl", "val_active_units") if val else ()
    history = History(
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "lr_schedule": "cosine",
            "beta": beta,
            "kl_warmup_epochs": kl_warmup_epochs,
            "free_bits": free_bits,
            "word_dropout": word_dropout,
            "seed": seed,
            "n_train": int(tokens.shape[0]),
            "device": str(device),
        },
        **{name: [] for name in curves + val_curves},
    )

    def step(batch, epoch: int, batch_index: int, steps_done: int):
        tb, lb = batch
        weight = beta
        if kl_warmup_epochs:
            weight = beta * min(1.0, (steps_done + 1) / (kl_warmup_epochs * n_batches))
        out = model(tb, lb, word_dropout=word_dropout, generator=generator)
        kl_term = out.kl.mean()
        if free_bits > 0 and model.latent_dim:
            kl_term = out.kl_per_dim.mean(0).clamp(min=free_bits).sum()
        loss = -out.reconstruction.mean() + weight * kl_term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            rec, kl = out.reconstruction.sum(), out.kl.sum()
            return loss, torch.stack([rec - kl, rec, kl])

    def evaluate() -> dict[str, float]:
        parts = evaluate_sequence_elbo(model, *val, generator=generator)
        values = {f"val_{name}": value for name, value in parts.items()}
        active = 0
        if model.latent_dim:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                mu = torch.cat(
                    [
                        model.encode(t[:, : int(n.max())], n)[0]
                        for t, n in zip(val[0].split(2000), val[1].split(2000), strict=True)
                    ]
                )
            model.train(was_training)
            active = active_latent_units(mu)
        values["val_active_units"] = float(active)
        return values

    return train_loop(
        TrainingState(model, [optimizer], [scheduler], generator),
        history,
        epochs=epochs,
        batches=lambda: _word_batches(tokens, lengths, batch_size, generator),
        n_batches=n_batches,
        n_examples=int(tokens.shape[0]),
        step=step,
        train_curves=curves,
        evaluate=evaluate if val else None,
        watch=NonFiniteWatch(device, hint=f"try a smaller learning rate (lr={lr})"),
        postfix=lambda values: {
            "ELBO": f"{values['train_elbo']:.2f}",
            "KL": f"{values['train_kl']:.2f}",
        },
        description="sequence VAE" if model.latent_dim else "language model",
        progress=progress,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )


#: Chapter 8's language model: the decoder alone (no z).
WORDS_LM_CONFIG = SequenceVAEConfig(
    embedding_dim=32, hidden_dim=64, decoder_hidden_dim=128, latent_dim=0
)
#: Chapter 8's VAE: a small encoder, the language model's decoder, a 16-dimensional code.
WORDS_VAE_CONFIG = SequenceVAEConfig(
    embedding_dim=32, hidden_dim=64, decoder_hidden_dim=128, latent_dim=16
)
#: The weaker decoder of the remedies: a quarter of the decoder's state.
WORDS_WEAK_DECODER_CONFIG = SequenceVAEConfig(
    embedding_dim=32, hidden_dim=64, decoder_hidden_dim=32, latent_dim=16
)
#: How all of them are trained (plus each remedy's own setting): 30 epochs over the 91,122
#: training words, validated on the 11,390 validation words.
WORDS_TRAINING = {
    "epochs": 30,
    "batch_size": 128,
    "lr": 1e-3,
    "data": "words",
    "train_split": "train",
    "val_split": "val",
}
#: The remedies for posterior collapse, each a change of :data:`WORDS_TRAINING` (or, for the
#: weaker decoder, of the config): name -> (config, recipe changes, description).
WORDS_REMEDIES = {
    "words_vae": (WORDS_VAE_CONFIG, {}, "trained naively"),
    "words_vae_annealed": (WORDS_VAE_CONFIG, {"kl_warmup_epochs": 10}, "KL annealing, 10 epochs"),
    "words_vae_word_dropout": (WORDS_VAE_CONFIG, {"word_dropout": 0.5}, "word dropout 0.5"),
    "words_vae_free_bits": (
        WORDS_VAE_CONFIG,
        {"free_bits": 0.5},
        "free bits, 0.5 nats per dimension",
    ),
    "words_vae_weak_decoder": (WORDS_WEAK_DECODER_CONFIG, {}, "a weaker decoder (32 units)"),
}
