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
from .distributions import bernoulli_log_likelihood, gaussian_log_likelihood, reparameterize
from .elementwise import ELU, Softplus
from .losses import LIKELIHOODS, elbo

#: Hidden-layer nonlinearities by name. ELU and softplus are :mod:`vae_lib.elementwise`'s
#: layers: the same functions as ``nn.ELU`` and ``nn.Softplus``, several times faster on a CPU.
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": ELU, "softplus": Softplus}


@dataclass
class VAEOutput:
    """What one forward pass computes; per-example tensors are ``(B,)`` and in nats.

    Attributes:
        elbo: reconstruction - beta * kl, the per-example training objective (maximised).
        reconstruction: log p(x|z) at one z ~ q(z|x).
        kl: KL(q(z|x) || p(z)), closed form.
        z: ``(B, D)`` the sampled latent codes.
        mu, logvar: ``(B, D)`` parameters of q(z|x).
        decoder_output: ``(B, *input_shape)`` logits (Bernoulli) or means (Gaussian) at z.
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    decoder_output: torch.Tensor


def _check_likelihood(config) -> None:
    """Check (and store as plain Python values) a config's likelihood fields."""
    arguments.one_of("likelihood", config.likelihood, LIKELIHOODS)
    obs_std = arguments.real("obs_std", config.obs_std, minimum=0.0, strict_minimum=True)
    object.__setattr__(config, "obs_std", obs_std)
    if hasattr(config, "learn_obs_std"):
        arguments.boolean("learn_obs_std", config.learn_obs_std)


class VAEBase(nn.Module):
    """Everything a VAE does once it has an encoder network and a decoder network.

    Subclasses set ``self.config`` (with ``input_shape``, ``latent_dim``, ``likelihood``,
    ``obs_std``, ``learn_obs_std``), call :meth:`_init_likelihood`, and implement
    :meth:`_encode_flat` (``(N, *input_shape) -> (N, 2 * D)``) and :meth:`_decode_flat`
    (``(N, D) -> (N, *input_shape)``).
    """

    config: object

    def _init_likelihood(self) -> None:
        log_var = torch.tensor(2.0 * math.log(self.config.obs_std))
        if self.config.learn_obs_std:
            self._obs_logvar = nn.Parameter(log_var)
        else:
            self.register_buffer("_obs_logvar", log_var)

    # -- shapes -----------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def likelihood(self) -> str:
        return self.config.likelihood

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def obs_logvar(self) -> torch.Tensor | None:
        """log sigma^2 of the Gaussian likelihood (a scalar tensor); None for Bernoulli."""
        return self._obs_logvar if self.likelihood == "gaussian" else None

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type the model computes in (that of its parameters)."""
        return next(self.parameters()).dtype

    def _check_x(self, x: torch.Tensor) -> None:
        expected = f"(B, {', '.join(map(str, self.input_shape))})"
        arguments.float_tensor("x", x, shape=expected, dtype=self.dtype)
        n = len(self.input_shape)
        if x.dim() < n + 1 or tuple(x.shape[-n:]) != self.input_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected {expected}")

    def _check_z(self, z: torch.Tensor) -> None:
        arguments.float_tensor("z", z, shape="(..., latent_dim)", dtype=self.dtype)
        if z.dim() < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"z has shape {tuple(z.shape)}; expected (..., latent_dim={self.latent_dim})"
            )

    # -- the two networks -------------------------------------------------------------------
    def _encode_flat(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): ``x (B, *input_shape) -> (mu, logvar)``, each ``(B, D)``."""
        self._check_x(x)
        batch = x.shape[: x.dim() - len(self.input_shape)]
        h = self._encode_flat(x.reshape(-1, *self.input_shape))
        mu, logvar = h.chunk(2, dim=-1)
        return mu.reshape(*batch, self.latent_dim), logvar.reshape(*batch, self.latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output: ``z (..., D) -> (..., *input_shape)``.

        Logits of p(x|z) for the Bernoulli likelihood (``torch.sigmoid`` gives pixel
        probabilities), the mean of p(x|z) for the Gaussian one.
        """
        self._check_z(z)
        out = self._decode_flat(z.reshape(-1, self.latent_dim))
        return out.reshape(*z.shape[:-1], *self.input_shape)

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
        x_flat = x.flatten(start_dim=x.dim() - len(self.input_shape))
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x_flat, out)
        return gaussian_log_likelihood(x_flat, out, self._obs_logvar)

    # -- the objective ----------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> VAEOutput:
        """One-sample ELBO of each example in ``x (B, *input_shape)``; see :class:`VAEOutput`.

        Like :meth:`encode`, it takes any number of leading batch dimensions: ``x`` of shape
        ``(B1, B2, *input_shape)`` gives ``(B1, B2)`` ELBOs, one per example. (:func:`vae_lib.fit`
        and :func:`vae_lib.evaluate_elbo` take data sets with one batch dimension.)
        """
        beta = arguments.real("beta", beta, minimum=0.0)
        arguments.generator("generator", generator, self.device)
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator=generator)
        out = self.decode(z)
        event = len(self.input_shape)
        parts = elbo(
            x.flatten(start_dim=x.dim() - event),
            out.flatten(start_dim=out.dim() - event),
            mu,
            logvar,
            likelihood=self.likelihood,
            beta=beta,
            obs_logvar=self.obs_logvar,
        )
        return VAEOutput(
            elbo=parts.elbo,
            reconstruction=parts.reconstruction,
            kl=parts.kl,
            z=z,
            mu=mu,
            logvar=logvar,
            decoder_output=out,
        )

    # -- using a trained model --------------------------------------------------------------
    def _mean_of(self, decoder_output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(decoder_output) if self.likelihood == "bernoulli" else decoder_output

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


def _normalise_mlp_config(config) -> None:
    """Validate (and store as ints and int tuples) the fields an MLP encoder/decoder config
    shares; a ValueError names the first bad field."""
    shape = arguments.positive_ints("input_shape", config.input_shape)
    hidden = arguments.positive_ints("hidden_dims", config.hidden_dims, allow_empty=True)
    object.__setattr__(config, "input_shape", shape)
    object.__setattr__(config, "hidden_dims", hidden)
    object.__setattr__(
        config, "latent_dim", arguments.positive_int("latent_dim", config.latent_dim)
    )
    arguments.one_of("activation", config.activation, tuple(ACTIVATIONS))
    _check_likelihood(config)


@dataclass(frozen=True)
class VAEConfig:
    """Settings of an MLP :class:`VAE` (the book's reference model is the default, 784-400-20).

    Attributes:
        input_shape: shape of one observation, e.g. ``(1, 28, 28)`` for MNIST or ``(2,)``.
        hidden_dims: widths of the hidden layers of the encoder; the decoder mirrors them.
        latent_dim: D, the dimension of z.
        likelihood: ``"bernoulli"`` (binary pixels) or ``"gaussian"`` (real-valued data).
        obs_std: standard deviation sigma of the Gaussian likelihood N(f(z), sigma^2 I)
            (its starting value if ``learn_obs_std``); unused for Bernoulli.
        learn_obs_std: learn sigma as a parameter instead of keeping it fixed.
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    obs_std: float = 1.0
    learn_obs_std: bool = False
    activation: str = "relu"

    def __post_init__(self) -> None:
        _normalise_mlp_config(self)


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

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else VAEConfig()
        c = self.config
        n_in = math.prod(c.input_shape)
        self.encoder = mlp([n_in, *c.hidden_dims, 2 * c.latent_dim], c.activation)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden_dims), n_in], c.activation)
        self._init_likelihood()

    def _encode_flat(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(start_dim=1))

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(-1, *self.input_shape)
