"""The variational autoencoder: a Gaussian encoder q(z|x) and a decoder p(x|z).

:class:`VAE` uses multilayer perceptrons. The shared machinery (ELBO, sampling, log p(x|z))
lives in :class:`VAEBase`, which :class:`vae_lib.conv_vae.ConvVAE` reuses with convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import arguments
from .checks import check_finite, check_unit_interval
from .distributions import bernoulli_log_likelihood, gaussian_log_likelihood, reparameterize
from .elementwise import ELU, Softplus
from .estimators import StandardNormalPrior
from .losses import LIKELIHOODS, LatentOutput, _elbo
from .training import (
    BinarizedImages,
    FitOptions,
    Run,
    _check_kl_options,
    check_binarize,
    free_bits_kl,
    kl_weight,
)

#: Hidden-layer nonlinearities by name. ELU and softplus are :mod:`vae_lib.elementwise`'s
#: layers: the same functions as ``nn.ELU`` and ``nn.Softplus``, several times faster on a CPU.
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": ELU, "softplus": Softplus}


@dataclass
class VAEOutput(LatentOutput):
    """What one forward pass computes; per-example tensors are ``(B,)`` and in nats.

    Attributes:
        elbo: reconstruction - beta * kl, the per-example training objective (maximised).
        reconstruction: log p(x|z) at one z ~ q(z|x).
        kl: KL(q(z|x) || p(z)), closed form.
        z: ``(B, D)`` the sampled latent codes.
        mu, logvar: ``(B, D)`` parameters of q(z|x).
        decoder_output: ``(B, *input_shape)`` logits (Bernoulli) or means (Gaussian) at z.
    """

    decoder_output: torch.Tensor


def _check_likelihood(config) -> None:
    """Check (and store as plain Python values) a config's likelihood fields."""
    arguments.one_of("likelihood", config.likelihood, LIKELIHOODS)
    obs_std = arguments.real("obs_std", config.obs_std, minimum=0.0, strict_minimum=True)
    object.__setattr__(config, "obs_std", obs_std)
    if hasattr(config, "learn_obs_std"):
        arguments.boolean("learn_obs_std", config.learn_obs_std)


@dataclass(frozen=True)
class ImageOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for VAEs and autoencoders of images.

    Attributes:
        beta: weight of the KL term (1 gives the ELBO).
        binarize: ``None``, ``"dynamic"`` (a fresh Bernoulli draw of every batch; validation
            data is then drawn once, with the run's generator) or ``"threshold"``.
        kl_warmup_epochs: epochs over which the KL weight ramps from 0 to ``beta`` (0: none),
            updated every step (:func:`vae_lib.training.kl_weight`).
        free_bits: KL floor per latent dimension, in nats (0: none; a VAE only):
            :func:`vae_lib.training.free_bits_kl`.
    """

    beta: float = 1.0
    binarize: str | None = None
    kl_warmup_epochs: float = 0.0
    free_bits: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_kl_options(self)
        check_binarize(self.binarize)


class ImageModel(BinarizedImages):
    """What VAEs and autoencoders of images share: the data (a tensor of images, binarized per
    batch if asked) and options (:class:`ImageOptions`) of :func:`vae_lib.fit`, the shape
    checks, the decoder's reshaping and the likelihood p(x|z). Subclasses set ``config`` and
    implement :meth:`_decode_flat` (``(N, D) -> (N, *input_shape)`` or ``(N, P)``) and
    :meth:`loss`."""

    Options = ImageOptions

    @property
    def likelihood(self) -> str:
        return self.config.likelihood

    def _check_x(self, x: torch.Tensor) -> None:
        self._check_input("x", x, leading="some")

    def _check_values(self, name: str, x: torch.Tensor, binarize: str | None) -> None:
        if binarize is not None or self.likelihood == "bernoulli":
            check_unit_interval(name, x, "for binarization or a Bernoulli likelihood")
        else:  # real-valued data: one NaN would make every loss NaN
            check_finite(name, x)

    # -- the decoder and the likelihood -----------------------------------------------------
    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output: ``z (..., D) -> (..., *input_shape)``.

        Logits of p(x|z) for the Bernoulli likelihood (``torch.sigmoid`` gives pixel
        probabilities), the mean of p(x|z) for the Gaussian one.
        """
        self._check_z(z, leading="any")
        return self._decode(z)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decode_flat(z.reshape(-1, self.latent_dim))
        return out.reshape(*z.shape[:-1], *self.input_shape)

    def _log_px(self, x_flat: torch.Tensor, out_flat: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, summed over the last dimension of ``x_flat (..., P)`` and of the
        decoder output ``out_flat (..., P)`` (values unchecked)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x_flat, out_flat)
        return gaussian_log_likelihood(x_flat, out_flat, self._obs_logvar)

    def _mean_of(self, decoder_output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(decoder_output) if self.likelihood == "bernoulli" else decoder_output


class VAEBase(ImageModel, StandardNormalPrior):
    """Everything a VAE does once it has an encoder network and a decoder network.

    Subclasses set ``self.config`` (with ``input_shape``, ``latent_dim``, ``likelihood``,
    ``obs_std``, ``learn_obs_std``), call :meth:`_init_likelihood`, and implement
    :meth:`_encode_flat` (``(N, *input_shape) -> (N, 2 * D)``) and :meth:`_decode_flat`
    (``(N, D) -> (N, *input_shape)``).
    """

    def _init_likelihood(self) -> None:
        log_var = torch.tensor(2.0 * math.log(self.config.obs_std))
        if self.config.learn_obs_std:
            self._obs_logvar = nn.Parameter(log_var)
        else:
            self.register_buffer("_obs_logvar", log_var)

    curves = ("elbo", "reconstruction", "kl")

    @property
    def obs_logvar(self) -> torch.Tensor | None:
        """log sigma^2 of the Gaussian likelihood (a scalar tensor); None for Bernoulli."""
        return self._obs_logvar if self.likelihood == "gaussian" else None

    # -- the two networks -------------------------------------------------------------------
    def _encode_flat(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): ``x (B, *input_shape) -> (mu, logvar)``, each ``(B, D)``."""
        self._check_x(x)
        return self._encode(x)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = x.shape[: x.dim() - len(self.input_shape)]
        h = self._encode_flat(x.reshape(-1, *self.input_shape))
        mu, logvar = h.chunk(2, dim=-1)
        return mu.reshape(*batch, self.latent_dim), logvar.reshape(*batch, self.latent_dim)

    # -- densities --------------------------------------------------------------------------
    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, summed over pixels.

        Args:
            x: ``(B, *input_shape)`` observations.
            z: ``(..., D)`` latent codes whose batch shape broadcasts with ``(B,)``: ``(B, D)``
                pairs each x with one z, ``(S, B, D)`` gives S codes per x, and ``(S, 1, D)``
                scores every one of S codes against every x.

        Returns:
            ``(...)`` (the broadcast batch shape) log-likelihoods.
        """
        self._check_x(x)
        out = self.decode(z).flatten(start_dim=z.dim() - 1)
        return self._log_px(x.flatten(start_dim=x.dim() - len(self.input_shape)), out)

    # -- the latent-variable protocol of vae_lib.iwae_bound ------------------------------------
    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x), each ``(B, D)`` (what :meth:`encode` gives, unchecked)."""
        return self._encode(x)

    # -- the objective ----------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> VAEOutput:
        """One-sample ELBO of each example in ``x (B, *input_shape)``; see :class:`VAEOutput`.

        Like :meth:`encode`, it takes any number of leading batch dimensions: ``x`` of shape
        ``(B1, B2, *input_shape)`` gives ``(B1, B2)`` ELBOs, one per example. (:func:`vae_lib.fit`
        and :func:`vae_lib.evaluate` take data sets with one batch dimension.)
        """
        beta = arguments.real("beta", beta, minimum=0.0)
        arguments.generator("generator", generator, self.device)
        self._check_x(x)
        if self.likelihood == "bernoulli":
            check_unit_interval("x", x, "for a Bernoulli likelihood")
        else:
            check_finite("x", x, "for a Gaussian likelihood")
        return self._forward(x, beta, generator)

    def _forward(self, x: torch.Tensor, beta: float, generator) -> VAEOutput:
        mu, logvar = self._encode(x)
        z = reparameterize(mu, logvar, generator=generator)
        out = self._decode(z)
        event = len(self.input_shape)
        parts = _elbo(
            x.flatten(start_dim=x.dim() - event),
            out.flatten(start_dim=out.dim() - event),
            mu,
            logvar,
            self.likelihood,
            beta,
            self.obs_logvar,
        )
        return VAEOutput(*parts, z=z, mu=mu, logvar=logvar, decoder_output=out)

    def loss(self, batch: torch.Tensor, run: Run):
        """Minus the beta-ELBO of a minibatch ``(B, *input_shape)``, with the KL weight of the
        run's warm-up at this step and its free bits; the parts are the ELBO (beta = 1), its
        reconstruction and KL, ``(B,)`` in nats."""
        o = run.options
        weight = kl_weight(o.beta, o.kl_warmup_epochs, run.step, run.n_batches)
        out = self._forward(batch, weight, run.generator)
        rec, kl = out.reconstruction, out.kl
        if o.free_bits > 0:
            loss = -(rec.mean() - weight * free_bits_kl(out.mu, out.logvar, o.free_bits))
        else:
            loss = -out.elbo.mean()
        return loss, {"elbo": rec - kl, "reconstruction": rec, "kl": kl}

    # -- using a trained model --------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, n: int, *, mean: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Generate: z ~ N(0, I), then x from p(x|z). No encoder is involved.

        Args:
            n: number of samples (>= 1).
            mean: return the mean of p(x|z) (pixel probabilities for Bernoulli), the usual way
                to show samples; ``False`` draws x ~ p(x|z) as well.
            generator: optional ``torch.Generator`` on the model's device.

        Returns:
            ``(n, *input_shape)`` tensor on the model's device.
        """
        n = arguments.positive_int("n", n)
        mean = arguments.boolean("mean", mean)
        arguments.generator("generator", generator, self.device)
        z = torch.randn(n, self.latent_dim, device=self.device, generator=generator)
        m = self._mean_of(self.decode(z))
        if mean:
            return m
        if self.likelihood == "bernoulli":
            return torch.bernoulli(m, generator=generator)
        std = torch.exp(0.5 * self._obs_logvar)
        return m + std * torch.randn(m.shape, device=m.device, generator=generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z) at z = mean of q(z|x): ``(B, *input_shape) -> (B, *input_shape)``."""
        mu, _ = self.encode(x)
        return self._mean_of(self.decode(mu))


@dataclass(frozen=True)
class MLPConfig:
    """The settings that an MLP :class:`VAE` and :class:`vae_lib.Autoencoder` share (784-400-20
    by default, the book's reference model), checked when made (a ValueError names the first
    bad field; the sizes are stored as ints and int tuples).

    Attributes:
        input_shape: shape of one observation, e.g. ``(1, 28, 28)`` for MNIST or ``(2,)``.
        hidden_dims: widths of the hidden layers of the encoder; the decoder mirrors them.
        latent_dim: D, the dimension of z.
        likelihood: ``"bernoulli"`` (binary pixels in [0, 1]) or ``"gaussian"`` (real-valued
            data).
        obs_std: standard deviation sigma of the Gaussian likelihood N(f(z), sigma^2 I);
            unused for Bernoulli.
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    obs_std: float = 1.0
    activation: str = "relu"

    def __post_init__(self) -> None:
        shape = arguments.positive_ints("input_shape", self.input_shape)
        hidden = arguments.positive_ints("hidden_dims", self.hidden_dims, allow_empty=True)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "hidden_dims", hidden)
        object.__setattr__(
            self, "latent_dim", arguments.positive_int("latent_dim", self.latent_dim)
        )
        arguments.one_of("activation", self.activation, tuple(ACTIVATIONS))
        _check_likelihood(self)


@dataclass(frozen=True)
class VAEConfig(MLPConfig):
    """Settings of an MLP :class:`VAE`: those of :class:`MLPConfig` and

    Attributes:
        learn_obs_std: learn sigma, the Gaussian likelihood's standard deviation, as a
            parameter (``obs_std`` is then its starting value) instead of keeping it fixed.
    """

    learn_obs_std: bool = False


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of the given widths with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class VAE(VAEBase):
    """A VAE whose encoder and decoder are multilayer perceptrons.

    Encoder: x -> hidden_dims -> (mu, logvar). Decoder: z -> reversed(hidden_dims) -> P outputs.

    Example::

        model = VAE(VAEConfig(hidden_dims=(400,), latent_dim=20)).to(default_device())
        out = model(x)                     # named parts: out.elbo, out.reconstruction, out.kl
        loss = -out.elbo.mean()
    """

    Config = VAEConfig

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        n_in = self.input_size
        self.encoder = mlp([n_in, *c.hidden_dims, 2 * c.latent_dim], c.activation)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden_dims), n_in], c.activation)
        self._init_likelihood()

    def _encode_flat(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(start_dim=1))

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(-1, *self.input_shape)
