"""Conditional VAEs: a latent-variable model of p(x | c) for a condition c.

The condition is a vector: a one-hot class label (:func:`one_hot`), to generate the digit one
asks for, or the visible part of an image (:func:`vae_lib.quadrants.observe`), to complete it.
The generative model and the encoder are chapter 3's with every distribution conditioned on c:

    p_theta(x | c) = integral of p_theta(x | z, c) p_theta(z | c) dz,   encoder q_phi(z | x, c),

and the conditional ELBO (Sohn, Lee & Yan, 2015) bounds the conditional log-likelihood,

    log p(x | c) >= E_{q(z|x,c)}[log p(x | z, c)] - KL(q(z | x, c) || p(z | c)).

The prior p(z | c) is the fixed N(0, I) (``prior="standard"``, the usual choice for labels:
c then enters only through the encoder and the decoder) or a diagonal Gaussian whose mean and
log-variance a network computes from c (``prior="learned"``, needed when c alone says much about
z, as the visible quarter of a digit does). The reparameterization is unchanged:
z = mu + sigma * eps.

A ``mask`` restricts the likelihood to the pixels the model has to predict (the missing
quadrants): ``log p(x_mask | z, c)``, summed over the masked pixels only. Without a mask every
pixel counts. The likelihood is Bernoulli; targets may be binary or grey levels in [0, 1] (for
grey levels the "log-likelihood" is minus the binary cross-entropy, as in Pyro's CVAE example).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import arguments
from .checks import check_unit_interval
from .distributions import (
    bernoulli_log_likelihood,
    diagonal_gaussian_kl,
    diagonal_gaussian_log_prob,
    reparameterize,
)
from .elementwise import softplus
from .loop import History, NonFiniteWatch, TrainingState, train_loop
from .quadrants import QUADRANT_COUNTS, observe, paired_minibatches, random_quadrant_counts
from .training import cosine_schedule, make_adam
from .vae import ACTIVATIONS, mlp

#: The two priors p(z | c) a :class:`ConditionalVAE` can have.
PRIORS = ("standard", "learned")


def one_hot(labels: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """Class labels as conditions: ``(B,)`` integers in ``[0, n_classes)`` -> ``(B, n_classes)``
    float32 one-hot vectors on the labels' device."""
    n_classes = arguments.positive_int("n_classes", n_classes)
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (
        torch.int64,
        torch.int32,
        torch.int16,
        torch.uint8,
    ):
        raise ValueError("labels must be an integer tensor of class indices")
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}); got {labels.min()}..{labels.max()}")
    return F.one_hot(labels.long(), n_classes).float()


@dataclass(frozen=True)
class ConditionalVAEConfig:
    """Settings of a :class:`ConditionalVAE` (MLP encoder, decoder and prior network).

    Attributes:
        input_shape: shape of one observation x, e.g. ``(1, 28, 28)``.
        condition_dim: C, the length of the condition vector c (10 for one-hot digit labels,
            784 for :func:`vae_lib.quadrants.observe`).
        hidden_dims: widths of the hidden layers of the encoder and the prior network; the
            decoder mirrors them.
        latent_dim: J, the dimension of z.
        prior: ``"standard"`` (p(z | c) = N(0, I)) or ``"learned"`` (a network of c).
        encoder_sees_condition: the encoder reads (x, c); ``False`` lets it read x alone, for a
            condition that is a function of x (the visible quadrants of x itself), which saves
            the encoder's C input weights.
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    condition_dim: int = 10
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    prior: str = "standard"
    encoder_sees_condition: bool = True
    activation: str = "relu"

    def __post_init__(self) -> None:
        fields = {
            "input_shape": arguments.positive_ints("input_shape", self.input_shape),
            "condition_dim": arguments.positive_int("condition_dim", self.condition_dim),
            "hidden_dims": arguments.positive_ints(
                "hidden_dims", self.hidden_dims, allow_empty=True
            ),
            "latent_dim": arguments.positive_int("latent_dim", self.latent_dim),
            "encoder_sees_condition": arguments.boolean(
                "encoder_sees_condition", self.encoder_sees_condition
            ),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        arguments.one_of("prior", self.prior, PRIORS)
        arguments.one_of("activation", self.activation, tuple(ACTIVATIONS))


@dataclass
class ConditionalVAEOutput:
    """What one forward pass computes; per-example tensors are ``(B,)`` and in nats.

    Attributes:
        elbo: reconstruction - beta * kl, the training objective (maximised).
        reconstruction: log p(x | z, c) at one z ~ q(z | x, c), over the masked pixels.
        kl: KL(q(z | x, c) || p(z | c)), closed form.
        z: ``(B, J)`` the sampled codes.
        mu, logvar: ``(B, J)`` parameters of q(z | x, c).
        prior_mu, prior_logvar: ``(B, J)`` parameters of p(z | c) (zeros for the standard prior).
        decoder_output: ``(B, *input_shape)`` logits of p(x | z, c).
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    prior_mu: torch.Tensor
    prior_logvar: torch.Tensor
    decoder_output: torch.Tensor


class ConditionalVAE(nn.Module):
    """A conditional VAE with MLP networks: q(z | x, c), p(z | c) and p(x | z, c).

    Encoder: (x, c) -> hidden_dims -> (mu, logvar). Prior network (``prior="learned"``):
    c -> hidden_dims -> (mu, logvar). Decoder: (z, c) -> reversed(hidden_dims) -> pixel logits.

    Example::

        model = ConditionalVAE(ConditionalVAEConfig(condition_dim=10))
        c = one_hot(labels)                              # (B, 10)
        out = model(x, c)                                # out.elbo, out.reconstruction, out.kl
        digits = model.sample(one_hot(torch.arange(10)))  # one of each digit, (10, 1, 28, 28)
    """

    likelihood = "bernoulli"

    def __init__(self, config: ConditionalVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ConditionalVAEConfig()
        cfg = self.config
        n_pixels = math.prod(cfg.input_shape)
        n_in = n_pixels + (cfg.condition_dim if cfg.encoder_sees_condition else 0)
        self.encoder = mlp([n_in, *cfg.hidden_dims, 2 * cfg.latent_dim], cfg.activation)
        self.decoder = mlp(
            [cfg.latent_dim + cfg.condition_dim, *reversed(cfg.hidden_dims), n_pixels],
            cfg.activation,
        )
        self.prior_net = (
            mlp([cfg.condition_dim, *cfg.hidden_dims, 2 * cfg.latent_dim], cfg.activation)
            if cfg.prior == "learned"
            else None
        )

    # -- shapes -----------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def condition_dim(self) -> int:
        return int(self.config.condition_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _check_x(self, x: torch.Tensor) -> None:
        expected = f"(B, {', '.join(map(str, self.input_shape))})"
        arguments.float_tensor("x", x, shape=expected, dtype=self.dtype)
        if x.dim() != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected {expected}")

    def _check_c(self, c: torch.Tensor, batch: int | None = None) -> None:
        arguments.float_tensor("c", c, shape=f"(B, {self.condition_dim})", dtype=self.dtype)
        if c.dim() != 2 or c.shape[1] != self.condition_dim:
            raise ValueError(
                f"c has shape {tuple(c.shape)}; expected (B, condition_dim={self.condition_dim})"
            )
        if batch is not None and c.shape[0] != batch:
            raise ValueError(f"c has {c.shape[0]} conditions for {batch} examples")

    def _check_mask(self, mask: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError("mask must be a bool tensor, True at the pixels to predict")
        try:
            return mask.expand(batch, *self.input_shape).reshape(batch, -1)
        except RuntimeError as err:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to "
                f"(B={batch}, {', '.join(map(str, self.input_shape))})"
            ) from err

    # -- the three networks -----------------------------------------------------------------
    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x, c): ``x (B, *input_shape)``, ``c (B, C)`` -> ``(mu, logvar)``,
        each ``(B, J)``."""
        self._check_x(x)
        self._check_c(c, x.shape[0])
        inputs = x.flatten(1)
        if self.config.encoder_sees_condition:
            inputs = torch.cat([inputs, c], dim=1)
        mu, logvar = self.encoder(inputs).chunk(2, dim=-1)
        return mu, logvar

    def prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of p(z | c): ``c (B, C)`` -> ``(mu, logvar)``, each ``(B, J)`` (zeros for
        the standard prior)."""
        self._check_c(c)
        if self.prior_net is None:
            zeros = c.new_zeros(c.shape[0], self.latent_dim)
            return zeros, zeros
        mu, logvar = self.prior_net(c).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Logits of p(x | z, c): ``z (..., B, J)`` and ``c (B, C)`` -> ``(..., B, *input_shape)``
        (``torch.sigmoid`` gives pixel probabilities). Leading dimensions of z (several codes
        per condition) share the condition."""
        self._check_c(c)
        arguments.float_tensor("z", z, shape="(..., B, latent_dim)", dtype=self.dtype)
        if z.dim() < 2 or z.shape[-1] != self.latent_dim or z.shape[-2] != c.shape[0]:
            raise ValueError(
                f"z has shape {tuple(z.shape)}; expected (..., B={c.shape[0]}, "
                f"latent_dim={self.latent_dim})"
            )
        inputs = torch.cat([z, c.expand(*z.shape[:-1], c.shape[1])], dim=-1)
        out = self.decoder(inputs.reshape(-1, inputs.shape[-1]))
        return out.reshape(*z.shape[:-1], *self.input_shape)

    # -- densities --------------------------------------------------------------------------
    def log_px_given_z(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        c: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """log p(x | z, c) in nats, summed over the pixels of ``mask`` (all pixels if None).

        Args:
            x: ``(B, *input_shape)`` targets in [0, 1].
            z: ``(..., B, J)`` codes (leading dimensions: several codes per example).
            c: ``(B, C)`` conditions.
            mask: optional bool tensor broadcasting to ``(B, *input_shape)``.

        Returns:
            ``(..., B)`` log-likelihoods.
        """
        self._check_x(x)
        logits = self.decode(z, c).flatten(start_dim=z.dim() - 1)
        return self._log_likelihood(x, logits, self._check_mask(mask, x.shape[0]))

    @staticmethod
    def _log_likelihood(
        x: torch.Tensor, logits: torch.Tensor, mask_flat: torch.Tensor | None
    ) -> torch.Tensor:
        """Bernoulli log-likelihood of ``x (B, ...)`` under ``logits (..., B, P)``, over the
        pixels of ``mask_flat (B, P)`` (all if None): ``(..., B)``."""
        pixels = x.flatten(1)
        if mask_flat is None:
            return bernoulli_log_likelihood(pixels, logits)
        check_unit_interval("x", pixels, "for a Bernoulli likelihood")
        per_pixel = pixels.to(logits.dtype) * logits - softplus(logits)  # log p of each pixel
        return (per_pixel * mask_flat).sum(-1)

    # -- the objective ----------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> ConditionalVAEOutput:
        """One-sample conditional ELBO of each example; see :class:`ConditionalVAEOutput`.

        Args:
            x: ``(B, *input_shape)`` targets in [0, 1].
            c: ``(B, C)`` their conditions.
            mask: optional bool tensor, True at the pixels scored (broadcasts to x's shape).
            beta: weight of the KL term (1 gives the conditional ELBO).
            generator: optional ``torch.Generator`` on the model's device for the draw of z.
        """
        beta = arguments.real("beta", beta, minimum=0.0)
        arguments.generator("generator", generator, self.device)
        mu, logvar = self.encode(x, c)
        prior_mu, prior_logvar = self.prior(c)
        z = reparameterize(mu, logvar, generator=generator)
        logits = self.decode(z, c)
        mask_flat = self._check_mask(mask, x.shape[0])
        reconstruction = self._log_likelihood(x, logits.flatten(1), mask_flat)
        kl = diagonal_gaussian_kl(mu, logvar, prior_mu, prior_logvar)
        return ConditionalVAEOutput(
            elbo=reconstruction - beta * kl,
            reconstruction=reconstruction,
            kl=kl,
            z=z,
            mu=mu,
            logvar=logvar,
            prior_mu=prior_mu,
            prior_logvar=prior_logvar,
            decoder_output=logits,
        )

    # -- using a trained model --------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        c: torch.Tensor,
        *,
        n_samples: int | None = None,
        mean: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate for each condition: z ~ p(z | c), then x from p(x | z, c).

        Args:
            c: ``(B, C)`` conditions.
            n_samples: draw this many codes per condition (result ``(n_samples, B, ...)``);
                ``None`` draws one (result ``(B, ...)``).
            mean: return pixel probabilities (the usual way to show samples); ``False``
                draws binary pixels from them.
            generator: optional ``torch.Generator`` on the model's device.

        Returns:
            ``(B, *input_shape)`` or ``(n_samples, B, *input_shape)`` on the model's device.
        """
        arguments.boolean("mean", mean)
        arguments.generator("generator", generator, self.device)
        mu, logvar = self.prior(c)
        z = reparameterize(mu, logvar, generator=generator, n_samples=n_samples)
        probs = torch.sigmoid(self.decode(z, c))
        return probs if mean else torch.bernoulli(probs, generator=generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of p(x | z, c) at z = the mean of q(z | x, c), ``(B, ...)``."""
        mu, _ = self.encode(x, c)
        return torch.sigmoid(self.decode(mu, c))


@torch.no_grad()
def conditional_iwae_bound(
    model: ConditionalVAE,
    x: torch.Tensor,
    c: torch.Tensor,
    k: int,
    *,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    max_elements: int = 2**24,
) -> torch.Tensor:
    """Importance-weighted bound on log p(x | c) with K = ``k`` samples of q(z | x, c):

        L_K = log (1/K) sum_i p(x | z_i, c) p(z_i | c) / q(z_i | x, c),   z_i ~ q(z | x, c),

    with p(x | z, c) over the pixels of ``mask``. L_1 is the conditional ELBO; L_K rises
    towards log p(x | c) as K grows (Burda et al., 2015).

    Args:
        model: a :class:`ConditionalVAE`.
        x: ``(B, *input_shape)`` targets (moved to the model's device).
        c: ``(B, C)`` conditions.
        k: importance samples per example (>= 1).
        mask: optional bool tensor of the pixels scored (broadcasts to x's shape).
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on the decoder outputs held at once.

    Returns:
        ``(B,)`` one draw of the bound per example, in nats.
    """
    if not isinstance(model, ConditionalVAE):
        raise ValueError(f"model must be a ConditionalVAE, got {type(model).__name__}")
    k = arguments.positive_int("k", k)
    max_elements = arguments.positive_int("max_elements", max_elements)
    device = model.device
    arguments.generator("generator", generator, device)
    x, c = x.to(device), c.to(device)
    model._check_x(x)
    model._check_c(c, x.shape[0])
    if mask is not None:
        mask = model._check_mask(mask.to(device), x.shape[0]).reshape(x.shape)
    pixels = math.prod(model.input_shape)
    x_chunk = max(1, min(x.shape[0], max_elements // pixels))
    results = []
    for start in range(0, x.shape[0], x_chunk):
        xb, cb = x[start : start + x_chunk], c[start : start + x_chunk]
        mb = None if mask is None else mask[start : start + x_chunk]
        mu, logvar = model.encode(xb, cb)
        prior_mu, prior_logvar = model.prior(cb)
        s_chunk = max(1, min(k, max_elements // (xb.shape[0] * pixels)))
        total = torch.full((xb.shape[0],), -math.inf, device=device, dtype=mu.dtype)
        done = 0
        while done < k:
            n = min(s_chunk, k - done)
            z = reparameterize(mu, logvar, generator=generator, n_samples=n)  # (n, b, J)
            log_w = (
                model.log_px_given_z(xb, z, cb, mb)
                + diagonal_gaussian_log_prob(z, prior_mu, prior_logvar)
                - diagonal_gaussian_log_prob(z, mu, logvar)
            )
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
            done += n
        results.append(total - math.log(k))
    return torch.cat(results)


#: What a :class:`ConditionalVAE` can be trained to condition on (:func:`fit_conditional_vae`):
#: the digit's class, or the visible quadrants of the image itself.
CONDITIONING_TASKS = ("labels", "quadrants")


def _task_batch(task: str, xb: torch.Tensor, yb: torch.Tensor | None, generator):
    """``(c, mask)`` of a minibatch: one-hot labels and no mask, or the visible quadrants (a
    random number per image) and the mask of the missing pixels."""
    if task == "labels":
        return one_hot(yb), None
    c, missing = observe(xb, random_quadrant_counts(xb.shape[0], generator))
    return c, missing


@torch.no_grad()
def evaluate_conditional_elbo(
    model: ConditionalVAE,
    x: torch.Tensor,
    c: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Average one-sample conditional ELBO, reconstruction and KL of ``x (N, ...)`` given
    ``c (N, C)`` (over the pixels of ``mask``), in nats per example; the model in eval mode."""
    if not isinstance(model, ConditionalVAE):
        raise ValueError(f"model must be a ConditionalVAE, got {type(model).__name__}")
    batch_size = arguments.positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    device = model.device
    sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
    for start in range(0, x.shape[0], batch_size):
        stop = start + batch_size
        mb = None if mask is None else mask[start:stop].to(device)
        out = model(
            x[start:stop].to(device), c[start:stop].to(device), mask=mb, generator=generator
        )
        sums["elbo"] += out.elbo.sum().item()
        sums["reconstruction"] += out.reconstruction.sum().item()
        sums["kl"] += out.kl.sum().item()
    model.train(was_training)
    return {name: value / x.shape[0] for name, value in sums.items()}


def fit_conditional_vae(
    model: ConditionalVAE,
    train_x: torch.Tensor,
    train_y: torch.Tensor | None = None,
    *,
    task: str = "labels",
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    binarize: str | None = None,
    val_x: torch.Tensor | None = None,
    val_y: torch.Tensor | None = None,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train ``model`` with Adam (learning rate decaying to 0 along a cosine) on the
    conditional ELBO, one reparameterized z per example.

    Args:
        model: a :class:`ConditionalVAE`.
        train_x: ``(N, *input_shape)`` images in [0, 1].
        train_y: ``(N,)`` digit labels, the conditions of ``task="labels"``.
        task: ``"labels"`` (c = one-hot label, every pixel scored) or ``"quadrants"`` (c = the
            visible quadrants of :func:`vae_lib.quadrants.observe`, a random number of them per
            image and step; only the missing pixels scored; the model's ``condition_dim`` must
            be the number of pixels).
        epochs, batch_size, lr: the schedule.
        binarize: ``None`` (train on ``train_x`` as given, e.g. grey levels as Pyro's example
            does) or ``"dynamic"`` (a fresh binary draw of every batch; validation images are
            then drawn once, with the seed).
        val_x, val_y: optional validation data; after each epoch its ELBO is recorded
            (``val_elbo``, ``val_reconstruction``, ``val_kl``; for quadrants, one set per number
            of given quadrants, e.g. ``val_elbo_1``).
        progress: show a progress bar.
        seed: seeds the data order, binarization, quadrant counts and reparameterization noise.
        checkpoint, checkpoint_seconds: a resumable run, as in :func:`vae_lib.fit`.

    Returns:
        :class:`vae_lib.History` with ``train_elbo``, ``train_reconstruction``, ``train_kl`` and
        the validation curves, in nats per example.
    """
    if not isinstance(model, ConditionalVAE):
        raise ValueError(f"model must be a ConditionalVAE, got {type(model).__name__}")
    task = arguments.one_of("task", task, CONDITIONING_TASKS)
    epochs = arguments.positive_int("epochs", epochs)
    batch_size = arguments.positive_int("batch_size", batch_size)
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    seed = arguments.seed("seed", seed)
    arguments.one_of("binarize", binarize, (None, "dynamic"))
    train_x = arguments.data_set(
        "train_x", train_x, input_shape=model.input_shape, dtype=model.dtype
    )
    check_unit_interval("train_x", train_x, "for a Bernoulli likelihood")
    pixels = math.prod(model.input_shape)
    if task == "labels":
        if train_y is None or (val_x is not None and val_y is None):
            raise ValueError("task='labels' needs train_y (and val_y with val_x)")
        one_hot(train_y, model.condition_dim)  # checks the labels
        if train_y.shape != (train_x.shape[0],):
            raise ValueError(f"train_y must be ({train_x.shape[0]},) labels")
    elif model.condition_dim != pixels:
        raise ValueError(
            f"task='quadrants' needs condition_dim = {pixels} (the pixels), got "
            f"{model.condition_dim}"
        )
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    train_x = train_x.to(device)
    train_y = (
        train_y.to(device)
        if train_y is not None
        else torch.zeros(train_x.shape[0], dtype=torch.long, device=device)
    )
    val_sets: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
    if val_x is not None:
        val_x = arguments.data_set("val_x", val_x, input_shape=model.input_shape, dtype=model.dtype)
        val_x = val_x.to(device)
        if binarize == "dynamic":
            val_x = torch.bernoulli(val_x, generator=generator)
        if task == "labels":
            val_sets[""] = (val_x, one_hot(val_y.to(device), model.condition_dim), None)
        else:
            for n in QUADRANT_COUNTS:
                c, missing = observe(val_x, n)
                val_sets[f"_{n}"] = (val_x, c, missing)
    optimizer = make_adam(model.parameters(), lr)
    n_batches = math.ceil(train_x.shape[0] / batch_size)
    scheduler = cosine_schedule(optimizer, epochs * n_batches)
    curves = ("train_elbo", "train_reconstruction", "train_kl")
    val_curves = tuple(
        f"val_{part}{suffix}" for suffix in val_sets for part in ("elbo", "reconstruction", "kl")
    )
    history = History(
        settings={
            "task": task,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "lr_schedule": "cosine",
            "binarize": binarize,
            "seed": seed,
            "n_train": int(train_x.shape[0]),
            "device": str(device),
        },
        **{name: [] for name in curves + val_curves},
    )

    def step(batch, epoch: int, batch_index: int, steps_done: int):
        xb, yb = batch
        if binarize == "dynamic":
            xb = torch.bernoulli(xb, generator=generator)
        c, mask = _task_batch(task, xb, yb, generator)
        out = model(xb, c, mask=mask, generator=generator)
        loss = -out.elbo.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            rec, kl = out.reconstruction.sum(), out.kl.sum()
            return loss, torch.stack([rec - kl, rec, kl])

    def evaluate() -> dict[str, float]:
        values = {}
        for suffix, (vx, vc, vmask) in val_sets.items():
            parts = evaluate_conditional_elbo(model, vx, vc, mask=vmask, generator=generator)
            values.update({f"val_{part}{suffix}": value for part, value in parts.items()})
        return values

    return train_loop(
        TrainingState(model, [optimizer], [scheduler], generator),
        history,
        epochs=epochs,
        batches=lambda: paired_minibatches((train_x, train_y), batch_size, generator),
        n_batches=n_batches,
        n_examples=int(train_x.shape[0]),
        step=step,
        train_curves=curves,
        evaluate=evaluate,
        watch=NonFiniteWatch(device, hint=f"try a smaller learning rate (lr={lr})"),
        postfix=lambda values: {"train ELBO": f"{values['train_elbo']:.2f}"},
        description="conditional VAE",
        progress=progress,
        values_checked=True,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )


#: The class-conditional VAE of chapter 7: c = the one-hot digit label, fixed N(0, I) prior. Its
#: code is small on purpose: with 8 or 16 dimensions the encoder also keeps the digit's identity
#: in z, and z ~ N(0, I) then contradicts the label asked for in many generations.
DIGITS_CVAE_CONFIG = ConditionalVAEConfig(
    input_shape=(1, 28, 28), condition_dim=10, hidden_dims=(256,), latent_dim=4
)
#: How it is trained: binarized afresh each step, 50,000 training images, 10,000 to validate.
DIGITS_CVAE_TRAINING = {
    "epochs": 60,
    "batch_size": 128,
    "lr": 1e-3,
    "task": "labels",
    "binarize": "dynamic",
    "train_split": "train",
    "val_split": "val",
}
#: The quadrant-completion CVAE of chapter 7: c = the visible quadrants (784 values, -1 where
#: hidden), a learned prior p(z | c), an encoder that reads the whole image.
QUADRANT_CVAE_CONFIG = ConditionalVAEConfig(
    input_shape=(1, 28, 28),
    condition_dim=784,
    hidden_dims=(384,),
    latent_dim=32,
    prior="learned",
    encoder_sees_condition=False,
)
#: How it is trained: grey-level targets as in Pyro's example, 1, 2 or 3 quadrants drawn at
#: random for every image of every minibatch.
QUADRANT_CVAE_TRAINING = {
    "epochs": 100,
    "batch_size": 128,
    "lr": 1e-3,
    "task": "quadrants",
    "binarize": None,
    "train_split": "train",
    "val_split": "val",
}
