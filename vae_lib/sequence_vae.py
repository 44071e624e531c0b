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
(the *posterior collapse* of chapter 5's large beta, here at beta = 1). :func:`vae_lib.fit`
trains it on a list of words with the usual remedies (:class:`SequenceOptions`): KL annealing
(``kl_warmup_epochs``), word dropout (``word_dropout``: the decoder's input tokens are hidden at
random, so it must rely on z), free bits (``free_bits`` nats per latent dimension); a weaker
decoder is a small ``decoder_hidden_dim``::

    history = fit(model, load_words("train"), epochs=30, val=load_words("val"), word_dropout=0.5)
    evaluate(model, load_words("test"))                 # one-sample ELBO, nats per word
    iwae_bound(model, vocab.encode(words), k=100)       # L_100 of each word (exact for an LM)

Tokens follow :class:`vae_lib.words.CharVocabulary`: 0 pads, 1 starts a word, 2 ends it. A batch
is ``tokens (B, T)`` with ``lengths (B,)`` counting the start and end tokens; the model predicts
tokens 1 .. length-1 (the letters and the end token) from those before them. Every public method
checks that the two agree (a start token first, letters, the end token at ``length - 1``, pads
after it), so a wrong length cannot silently score pads or skip letters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from . import arguments
from .checks import check_finite
from .distributions import reparameterize
from .estimators import StandardNormalPrior
from .losses import LatentOutput, _elbo_parts
from .training import FitOptions, Run, Trainable, _check_kl_options, free_bits_kl, kl_weight
from .words import CharVocabulary

PAD, BOS, EOS = CharVocabulary.PAD, CharVocabulary.BOS, CharVocabulary.EOS
#: The first letter's token; tokens below it are the pad, start and end tokens.
FIRST_LETTER = EOS + 1
_SPECIAL = {PAD: "pad", BOS: "start", EOS: "end"}


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


@dataclass(frozen=True)
class SequenceOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`SequenceVAE` (the defaults of the trainer
    that made the book's checkpoints: batches of 128 words, Adam at 1e-3, a cosine schedule).

    Attributes:
        beta: weight of the KL term (1 gives the ELBO).
        kl_warmup_epochs: the KL weight rises linearly from 0 to ``beta`` over this many whole
            epochs, updated every step (KL annealing; 0: none).
        free_bits: each latent dimension's KL, averaged over the minibatch, counts as at least
            this many nats in the loss (Kingma et al., 2016; 0: none; no effect on a language
            model).
        word_dropout: probability of hiding each input letter of the decoder (Bowman et al.,
            2016), in [0, 1].
    """

    lr_schedule: str | None = "cosine"
    beta: float = 1.0
    kl_warmup_epochs: int = 0
    free_bits: float = 0.0
    word_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_kl_options(self, whole_epochs=True)
        self._set(
            "word_dropout",
            arguments.probability("word_dropout", self.word_dropout, allow_one=True),
        )


@dataclass
class SequenceVAEOutput(LatentOutput):
    """One forward pass; per-word tensors are ``(B,)`` and in nats.

    Attributes:
        elbo: reconstruction - beta * kl (for a language model: the log-likelihood).
        reconstruction: log p(x | z) at one z ~ q(z | x), summed over the predicted tokens.
        kl: KL(q(z | x) || N(0, I)), closed form (zeros for a language model).
        z, mu, logvar: ``(B, J)`` the sampled code and the encoder's parameters.
        kl_per_dim: ``(B, J)`` the KL of each latent dimension.
        logits: ``(B, T-1, V)`` the decoder's logits of tokens 1 .. T-1.
    """

    kl_per_dim: torch.Tensor
    logits: torch.Tensor


class SequenceVAE(Trainable, StandardNormalPrior):
    """GRU encoder -> diagonal Gaussian z -> autoregressive GRU decoder (or, with
    ``latent_dim=0``, the decoder alone: a language model).

    Trained by :func:`vae_lib.fit` on a list of words (:class:`SequenceOptions`); its bound is
    :func:`vae_lib.iwae_bound` with the batch ``(tokens, lengths)``.

    Example::

        vocab = CharVocabulary()
        tokens, lengths = vocab.encode(["cat", "dog"])
        model = SequenceVAE(SequenceVAEConfig())
        out = model(tokens, lengths)          # out.elbo, out.reconstruction, out.kl: (2,)
        words = vocab.decode(model.greedy_decode(torch.zeros(2, 16)))
    """

    Options = SequenceOptions
    curves = ("elbo", "reconstruction", "kl")
    #: Numbers per (word, sample) pair for :func:`vae_lib.iwae_bound`'s chunking: with its
    #: 2**23 numbers at once, 8192 (word, sample) pairs go through the decoder together.
    iwae_cost: ClassVar[int] = 1024
    Config = SequenceVAEConfig

    def __init__(self, config: SequenceVAEConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=PAD)
        j = cfg.latent_dim
        if j:
            self.encoder = nn.GRU(cfg.embedding_dim, cfg.hidden_dim, batch_first=True)
            self.to_posterior = nn.Linear(cfg.hidden_dim, 2 * j)
            self.to_initial_state = nn.Linear(j, cfg.decoder_hidden_dim)
        self.decoder = nn.GRU(cfg.embedding_dim + j, cfg.decoder_hidden_dim, batch_first=True)
        self.to_logits = nn.Linear(cfg.decoder_hidden_dim, cfg.vocab_size)

    # -- argument checks (public methods only; the training steps use the unchecked twins) ---
    def _check_tokens(self, tokens: object, name: str = "tokens") -> torch.Tensor:
        """``tokens`` must be a ``(B, T)`` int64 tensor on the model's device, T >= 2, every
        token in [0, vocab_size)."""
        v = self.config.vocab_size
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
            got = (
                f"a {tokens.dtype} tensor of shape {tuple(tokens.shape)}"
                if isinstance(tokens, torch.Tensor)
                else type(tokens).__name__
            )
            raise ValueError(
                f"{name} must be a (B, T) int64 tensor (CharVocabulary.encode), got {got}"
            )
        if tokens.shape[1] < 2:
            raise ValueError(
                f"{name} has shape {tuple(tokens.shape)}; a word needs T >= 2 columns (its start "
                "and end tokens)"
            )
        arguments.on_device(name, tokens, self.device)
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= v):
            raise ValueError(
                f"{name} must lie in [0, {v}), the model's vocabulary; got "
                f"{int(tokens.min())}..{int(tokens.max())}"
            )
        return tokens

    def _check_words(
        self,
        tokens: object,
        lengths: object,
        tokens_name: str = "tokens",
        lengths_name: str = "lengths",
    ) -> None:
        """``(tokens, lengths)`` must be words as :meth:`CharVocabulary.encode` writes them:
        row i holds the start token, letters, the end token at ``lengths[i] - 1`` and pads after
        it (``lengths`` integers in [2, T], on any device)."""
        self._check_tokens(tokens, tokens_name)
        b, t = tokens.shape
        if not isinstance(lengths, torch.Tensor) or lengths.shape != (b,):
            got = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else lengths
            raise ValueError(f"{lengths_name} must be ({b},), one per word, got {got!r}")
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise ValueError(
                f"{lengths_name} must be an integer tensor (CharVocabulary.encode), got "
                f"{lengths.dtype}"
            )
        if not b:
            return
        lengths = lengths.to(tokens.device)
        if lengths.min() < 2 or lengths.max() > t:
            raise ValueError(
                f"each of {lengths_name} must count the start and end tokens and fit in "
                f"T={t}: got {int(lengths.min())}..{int(lengths.max())}"
            )
        steps = torch.arange(t, device=tokens.device)
        last = (lengths - 1).unsqueeze(1)
        problems = (  # by priority: a row's first problem in this order is the one reported
            (steps == 0) & (tokens != BOS),
            (steps == last) & (tokens != EOS),
            (steps > 0) & (steps < last) & (tokens < FIRST_LETTER),
            (steps > last) & (tokens != PAD),
        )
        wrong = torch.stack([p.any(1) for p in problems], dim=1)  # (B, 4)
        if not bool(wrong.any()):
            return
        row = int(wrong.any(1).nonzero()[0])
        kind = int(wrong[row].nonzero()[0])
        col = int(problems[kind][row].nonzero()[0])
        n, token = int(lengths[row]), int(tokens[row, col])
        what = (
            f"the {_SPECIAL[token]} token {token}"
            if token in _SPECIAL
            else f"the letter token {token}"
        )
        where = f"{tokens_name}[{row}]"
        if kind == 0:
            raise ValueError(
                f"{where} does not begin with the start token {BOS} (CharVocabulary.encode adds "
                f"it); it begins with {what}"
            )
        if kind == 1:
            raise ValueError(
                f"{lengths_name}[{row}] = {n} disagrees with {where}: position {col} holds "
                f"{what}, not the end token {EOS} ({lengths_name} count the start and end tokens)"
            )
        if kind == 2:
            raise ValueError(
                f"{where} has {what} at position {col}, inside the word ({lengths_name}[{row}] = "
                f"{n}: positions 1..{n - 2} must be letters)"
            )
        raise ValueError(
            f"{where} has {what} at position {col}, after its end token ({lengths_name}[{row}] = "
            f"{n}); only pads ({PAD}) may follow a word"
        )

    def _check_codes(self, z: object, b: int | None) -> torch.Tensor:
        """Codes ``z (B, J)`` in the model's dtype and on its device (``b``: the B expected)."""
        j = self.latent_dim
        self._check_input("z", z, (j,), sizes=f"J={j}", on_device=True)
        if b is not None and z.shape[0] != b:
            raise ValueError(
                f"z must be ({b}, J={j}), one code per word, got shape {tuple(z.shape)}"
            )
        check_finite("z", z)
        return z

    def _check_code(self, z: object, b: int) -> torch.Tensor | None:
        if not self.latent_dim:
            if z is not None:
                raise ValueError("a language model (latent_dim=0) has no code: pass z=None")
            return None
        if z is None:
            raise ValueError(f"z must be (B={b}, J={self.latent_dim}), got None")
        return self._check_codes(z, b)

    # -- the networks -----------------------------------------------------------------------
    def encode(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x): ``tokens (B, T)``, ``lengths (B,)`` -> ``(mu, logvar)``, each
        ``(B, J)``."""
        if not self.latent_dim:
            raise ValueError("a language model (latent_dim=0) has no encoder")
        self._check_words(tokens, lengths)
        return self._encode(tokens, lengths)

    def _encode(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not tokens.shape[0]:  # pack_padded_sequence refuses an empty batch
            empty = tokens.new_zeros((0, self.latent_dim), dtype=self.dtype)
            return empty, empty.clone()
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
        whose embedding is zero, with that probability (Bowman et al.'s word dropout), drawn
        with ``generator`` (on the model's device).
        """
        self._check_tokens(tokens)
        z = self._check_code(z, tokens.shape[0])
        word_dropout = arguments.probability("word_dropout", word_dropout, allow_one=True)
        arguments.generator("generator", generator, self.device)
        return self._decode_logits(self._decoder_inputs(tokens, word_dropout, generator), z)

    @staticmethod
    def _decoder_inputs(
        tokens: torch.Tensor, word_dropout: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        """The decoder's input tokens 0 .. T-2, ``(B, T-1)``, each letter hidden (replaced by
        the pad token) with probability ``word_dropout``, drawn with ``generator``."""
        inputs = tokens[:, :-1]
        if word_dropout > 0:
            drop = (
                torch.rand(inputs.shape, device=inputs.device, generator=generator) < word_dropout
            )
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, PAD)
        return inputs

    def _decode_logits(self, inputs: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """Logits ``(B, T-1, V)`` of the tokens after ``inputs (B, T-1)``, given ``z``."""
        x = self.embedding(inputs)
        if self.latent_dim:
            x = torch.cat([x, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
            h0 = torch.tanh(self.to_initial_state(z)).unsqueeze(0)
            states, _ = self.decoder(x, h0)
        else:
            states, _ = self.decoder(x)
        return self.to_logits(states)

    def log_px_given_z(
        self, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor | None
    ) -> torch.Tensor:
        """log p(x | z) (for a language model, ``z=None``: log p(x)) of each word in nats, summed
        over its predicted tokens: ``tokens (B, T)``, ``lengths (B,)``, ``z (B, J)`` ->
        ``(B,)``."""
        self._check_words(tokens, lengths)
        z = self._check_code(z, tokens.shape[0])
        return self._log_px_given_z(tokens, lengths, z)

    def _log_px_given_z(
        self, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor | None
    ) -> torch.Tensor:
        return _token_log_likelihood(self._decode_logits(tokens[:, :-1], z), tokens, lengths)

    # -- the latent-variable protocol of vae_lib.iwae_bound ------------------------------------
    def scoring_batch(self, batch: object) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch = (tokens (B, T), lengths (B,))`` checked (as :meth:`forward` checks them)
        and moved to the model's device."""
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise ValueError(
                "batch must be (tokens, lengths) for a sequence VAE (CharVocabulary.encode), "
                f"got {type(batch).__name__}"
            )
        tokens, lengths = batch
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.to(self.device)
        if isinstance(lengths, torch.Tensor):
            lengths = lengths.to(self.device)
        self._check_words(tokens, lengths)
        return tokens, lengths

    def posterior_params(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x), each ``(B, J)`` (what :meth:`encode` gives, unchecked)."""
        return self._encode(*batch)

    def log_likelihood(
        self, batch: tuple[torch.Tensor, torch.Tensor], z: torch.Tensor | None
    ) -> torch.Tensor:
        """log p(x | z) in nats: ``(S, B)`` for ``z (S, B, J)``; for a language model
        (``z=None``) the exact log p(x), ``(B,)``. The S * B (word, code) pairs go through the
        decoder together."""
        tokens, lengths = batch
        if z is None:
            return self._log_px_given_z(tokens, lengths, None)
        s, b = z.shape[0], tokens.shape[0]
        log_px = self._log_px_given_z(tokens.repeat(s, 1), lengths.repeat(s), z.reshape(s * b, -1))
        return log_px.reshape(s, b)

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
        """One-sample ELBO of each word (see :class:`SequenceVAEOutput`): ``tokens (B, T)``,
        ``lengths (B,)`` as :meth:`CharVocabulary.encode` gives them; ``beta`` >= 0 weighs the
        KL term; ``word_dropout`` as in :meth:`decode_logits`; ``generator`` (on the model's
        device) draws z and the dropout."""
        self._check_words(tokens, lengths)
        beta = arguments.real("beta", beta, minimum=0.0)
        word_dropout = arguments.probability("word_dropout", word_dropout, allow_one=True)
        arguments.generator("generator", generator, self.device)
        return self._forward(tokens, lengths, beta, word_dropout, generator)

    def _forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        beta: float,
        word_dropout: float,
        generator: torch.Generator | None,
    ) -> SequenceVAEOutput:
        b = tokens.shape[0]
        if self.latent_dim:
            mu, logvar = self._encode(tokens, lengths)
            z = reparameterize(mu, logvar, generator=generator)
            kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
        else:
            mu = logvar = z = kl_per_dim = tokens.new_zeros((b, 0), dtype=self.dtype)
        inputs = self._decoder_inputs(tokens, word_dropout, generator)
        logits = self._decode_logits(inputs, z if self.latent_dim else None)
        parts = _elbo_parts(
            _token_log_likelihood(logits, tokens, lengths), kl_per_dim.sum(-1), beta
        )
        return SequenceVAEOutput(
            *parts, z=z, mu=mu, logvar=logvar, kl_per_dim=kl_per_dim, logits=logits
        )

    # -- training (vae_lib.fit) -------------------------------------------------------------
    def training_data(
        self, data: object, run: Run, *, name: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A list of words (``data`` or ``val``; :func:`vae_lib.load_words`) checked and
        encoded once: ``(tokens (N, T), lengths (N,))`` on the model's device."""
        vocab = CharVocabulary()
        tokens, lengths = vocab.encode(vocab.check_words(name, data))
        tokens, lengths = tokens.to(self.device), lengths.to(self.device)
        self._check_words(tokens, lengths, f"{name} (encoded)", f"{name} lengths")
        return tokens, lengths

    def batches(
        self, data: tuple[torch.Tensor, torch.Tensor], run: Run
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled minibatches of words, each cut to its longest word (:func:`_word_batches`)."""
        return _word_batches(*data, run.options.batch_size, run.generator)

    def loss(
        self, batch: tuple[torch.Tensor, torch.Tensor], run: Run
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Minus the beta-ELBO of a minibatch of words, with word dropout, the KL weight of the
        run's warm-up and free bits; the parts are the ELBO at beta = 1, its reconstruction and
        KL, ``(B,)`` nats per word."""
        tokens, lengths = batch
        o = run.options
        # This family's warm-up counts the step being taken (run.step + 1), where the image
        # VAEs count the steps done: the shipped checkpoints were trained so.
        weight = kl_weight(o.beta, o.kl_warmup_epochs, run.step + 1, run.n_batches)
        out = self._forward(tokens, lengths, 1.0, o.word_dropout, run.generator)
        rec, kl = out.reconstruction, out.kl
        kl_term = kl.mean()
        if o.free_bits > 0 and self.latent_dim:
            kl_term = free_bits_kl(out.mu, out.logvar, o.free_bits)
        loss = -rec.mean() + weight * kl_term
        return loss, {"elbo": rec - kl, "reconstruction": rec, "kl": kl}

    @torch.no_grad()
    def evaluation(
        self, data: tuple[torch.Tensor, torch.Tensor], run: Run, batch_size: int = 2000
    ) -> dict[str, float]:
        """Mean one-sample ELBO (beta = 1, no word dropout), reconstruction and KL per word in
        nats, over chunks of ``batch_size`` words (each cut to its longest word), and
        ``active_units``: :func:`active_latent_units` of the posterior means (0 for a language
        model)."""
        tokens, lengths = data
        sums = dict.fromkeys(self.curves, 0.0)
        mus = []
        for tb, lb in zip(tokens.split(batch_size), lengths.split(batch_size), strict=True):
            out = self._forward(tb[:, : int(lb.max())], lb, 1.0, 0.0, run.generator)
            for name in self.curves:
                sums[name] += getattr(out, name).sum().item()
            mus.append(out.mu)
        values = {name: value / tokens.shape[0] for name, value in sums.items()}
        values["active_units"] = float(active_latent_units(torch.cat(mus)))
        return values

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
        decoder's distribution (with ``generator``, on the model's device). At most
        ``max_length`` letters and end tokens per word. Returns ``(B, <= max_length + 1)``
        tokens starting with the start token; :meth:`CharVocabulary.decode` reads them."""
        max_length = arguments.positive_int("max_length", max_length)
        sample = arguments.boolean("sample", sample)
        arguments.generator("generator", generator, self.device)
        device = self.device
        if self.latent_dim:
            z = self._check_codes(z, None)
            b = z.shape[0]
            if n is not None and arguments.integer("n", n, minimum=0) != b:
                raise ValueError(f"n={n} but z holds {b} codes; a VAE writes one word per code")
            h = torch.tanh(self.to_initial_state(z)).unsqueeze(0)
        else:
            if z is not None:
                raise ValueError(
                    "a language model (latent_dim=0) writes words without a code: pass z=None "
                    "and the number of words n"
                )
            b = arguments.positive_int("n", n)
            h = torch.zeros(1, b, self.config.decoder_hidden_dim, device=device, dtype=self.dtype)
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


def active_latent_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across words: Cov_x(E_q[z_j]) >
    ``threshold`` (Burda et al., 2015), from ``mu (N, J)`` (0 when J = 0, or N = 1: one word
    shows no variation)."""
    arguments.float_tensor("mu", mu, shape="(N, J)")
    if mu.dim() != 2:
        raise ValueError(f"mu must be (N, J), one row per word, got shape {tuple(mu.shape)}")
    threshold = arguments.real("threshold", threshold, minimum=0.0)
    check_finite("mu", mu)
    if mu.shape[1] == 0 or mu.shape[0] < 2:
        return 0
    return int((mu.var(0) > threshold).sum())


def character_matches(targets: list[str], decoded: list[str]) -> tuple[int, int, int]:
    """How well ``decoded`` words reproduce ``targets``: ``(exact, right, compared)``, the number
    of words decoded exactly, of characters equal position by position, and of positions
    compared (the longer of the two words, so a missing or extra letter counts as wrong)."""
    for name, words in (("targets", targets), ("decoded", decoded)):
        if isinstance(words, str) or not isinstance(words, list | tuple):
            raise ValueError(f"{name} must be a list of words, got {type(words).__name__}")
        bad = [w for w in words if not isinstance(w, str)]
        if bad:
            raise ValueError(f"{name} must hold strings, got {type(bad[0]).__name__} {bad[0]!r}")
    if len(targets) != len(decoded):
        raise ValueError(f"{len(targets)} targets but {len(decoded)} decoded words")
    exact = sum(t == d for t, d in zip(targets, decoded, strict=True))
    right = sum(
        sum(a == b for a, b in zip(t, d, strict=False))
        for t, d in zip(targets, decoded, strict=True)
    )
    compared = sum(max(len(t), len(d)) for t, d in zip(targets, decoded, strict=True))
    return exact, right, compared


def _word_batches(
    tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of minibatches ``(tokens (b, width), lengths (b,))`` in an order drawn with
    ``generator`` (on the data's device), each cut to its longest word's ``width``."""
    order = torch.randperm(tokens.shape[0], generator=generator, device=generator.device)
    for start in range(0, tokens.shape[0], batch_size):
        index = order[start : start + batch_size]
        width = int(lengths[index].max())
        yield tokens[index, :width], lengths[index]
