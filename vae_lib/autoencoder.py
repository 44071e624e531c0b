"""A plain (deterministic) autoencoder: the model the VAE is usually contrasted with.

An encoder maps x to one code z = f(x), a decoder maps z back to the parameters of p(x|z), and
training maximises the reconstruction log-likelihood log p(x | z = f(x)) alone. There is no
posterior q(z|x), no prior p(z) and no KL term, so nothing ties the codes to a known region of
latent space: the model reconstructs, but it cannot generate (there is no distribution to draw
z from).

:class:`Autoencoder` has the interface of :class:`vae_lib.VAE` where that interface makes sense,
so :func:`vae_lib.fit`, :func:`vae_lib.evaluate_elbo`, :func:`vae_lib.plot_history` and
:func:`vae_lib.plot_latent_manifold` work on it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NoReturn

import torch
from torch import nn

from .distributions import bernoulli_log_likelihood, gaussian_log_likelihood
from .vae import VAEBase, _normalise_mlp_config, mlp


@dataclass
class AutoencoderOutput:
    """What one forward pass of an :class:`Autoencoder` computes; ``(B,)`` tensors in nats.

    Attributes:
        elbo: equal to ``reconstruction``. An autoencoder has no KL term: its training objective
            is the reconstruction log-likelihood alone. The field is called ``elbo`` only so
            that :func:`vae_lib.fit` and :class:`vae_lib.History` work unchanged; it is **not**
            a lower bound on log p(x) (the autoencoder defines no p(x) at all).
        reconstruction: log p(x | z = encoder(x)), summed over pixels (for the Bernoulli
            likelihood: minus the binary cross-entropy).
        kl: zeros; there is no posterior or prior to compare.
        z: ``(B, D)`` the deterministic codes.
        decoder_output: ``(B, *input_shape)`` logits (Bernoulli) or means (Gaussian) at z.
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    decoder_output: torch.Tensor


@dataclass(frozen=True)
class AutoencoderConfig:
    """Settings of an MLP :class:`Autoencoder` (784-400-D by default, as the reference VAE).

    Attributes:
        input_shape: shape of one observation, e.g. ``(1, 28, 28)`` for MNIST or ``(2,)``.
        hidden_dims: widths of the hidden layers of the encoder; the decoder mirrors them.
        latent_dim: D, the dimension of the code z.
        likelihood: ``"bernoulli"`` (binary cross-entropy on pixels in [0, 1]) or
            ``"gaussian"`` (N(f(z), obs_std^2 I): squared error, scaled and shifted).
        obs_std: fixed standard deviation of the Gaussian likelihood; unused for Bernoulli.
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    obs_std: float = 1.0
    activation: str = "relu"

    def __post_init__(self) -> None:
        _normalise_mlp_config(self)


class Autoencoder(nn.Module):
    """A deterministic autoencoder with MLP encoder and decoder.

    Encoder: x -> hidden_dims -> z (D numbers, no variance). Decoder: z -> reversed(hidden_dims)
    -> P outputs, the logits (Bernoulli) or means (Gaussian) of p(x|z).

    Differences from :class:`vae_lib.VAE`:

    * :meth:`encode` returns the code z itself, ``(B, D)``, not a pair ``(mu, logvar)``.
    * :meth:`forward` is deterministic (``generator`` is ignored) and its ``kl`` is zero, so
      ``beta`` has no effect; both arguments exist only for :func:`vae_lib.fit`.
    * :meth:`sample` raises: without a prior there is nothing to sample z from.

    Subclasses (a denoising autoencoder, say) can override :meth:`corrupt`, which
    :meth:`forward` applies to the input before encoding; the reconstruction is always scored
    against the clean x.

    Example::

        model = Autoencoder(AutoencoderConfig(latent_dim=2)).to(default_device())
        history = fit(model, train_x, epochs=10, binarize="dynamic")
        z = model.encode(test_x)           # (N, 2) codes, for a scatter plot
    """

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else AutoencoderConfig()
        c = self.config
        n_in = math.prod(c.input_shape)
        self.encoder = mlp([n_in, *c.hidden_dims, c.latent_dim], c.activation)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden_dims), n_in], c.activation)
        self.register_buffer("_obs_logvar", torch.tensor(2.0 * math.log(c.obs_std)))

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

    # the same input checks (and error messages) as the VAE's
    dtype = VAEBase.dtype
    _check_x = VAEBase._check_x
    _check_z = VAEBase._check_z

    # -- the two networks -------------------------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The input the encoder sees during :meth:`forward`; the identity here.

        A hook for subclasses: a denoising autoencoder returns a noisy copy of ``x`` (drawing
        its noise from ``generator``), and may check ``self.training`` to corrupt only while
        training. :meth:`encode` and :meth:`reconstruct` never corrupt.
        """
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code: ``x (B, *input_shape) -> z (B, D)``.

        Unlike :meth:`vae_lib.VAE.encode`, which returns the pair ``(mu, logvar)`` of q(z|x),
        this returns z itself: the autoencoder's encoder is a function, not a distribution.
        """
        self._check_x(x)
        batch = x.shape[: x.dim() - len(self.input_shape)]
        z = self.encoder(x.reshape(-1, math.prod(self.input_shape)))
        return z.reshape(*batch, self.latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output: ``z (..., D) -> (..., *input_shape)``.

        Logits of p(x|z) for the Bernoulli likelihood (``torch.sigmoid`` gives pixel
        probabilities), the mean of p(x|z) for the Gaussian one.
        """
        self._check_z(z)
        out = self.decoder(z.reshape(-1, self.latent_dim))
        return out.reshape(*z.shape[:-1], *self.input_shape)

    # -- the objective ----------------------------------------------------------------------
    def _log_likelihood(self, x: torch.Tensor, decoder_output: torch.Tensor) -> torch.Tensor:
        x_flat = x.flatten(start_dim=1)
        out_flat = decoder_output.flatten(start_dim=1)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x_flat, out_flat)
        return gaussian_log_likelihood(x_flat, out_flat, self._obs_logvar)

    def forward(
        self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> AutoencoderOutput:
        """Reconstruction log-likelihood of each example in ``x (B, *input_shape)``, in nats.

        Computes z = encoder(corrupt(x)) and log p(x | z), scored against the clean ``x``.
        ``beta`` is accepted for :func:`vae_lib.fit` and has no effect (the KL term is zero);
        ``generator`` is passed to :meth:`corrupt` and is otherwise unused.

        Returns:
            :class:`AutoencoderOutput`; ``elbo`` equals ``reconstruction`` (not a bound).
        """
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self._check_x(x)
        if x.dim() != len(self.input_shape) + 1:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; forward takes one batch dimension, "
                f"(B, {', '.join(map(str, self.input_shape))})"
            )
        z = self.encode(self.corrupt(x, generator=generator))
        out = self.decode(z)
        reconstruction = self._log_likelihood(x, out)
        return AutoencoderOutput(
            elbo=reconstruction,
            reconstruction=reconstruction,
            kl=torch.zeros_like(reconstruction),
            z=z,
            decoder_output=out,
        )

    # -- using a trained model --------------------------------------------------------------
    def _mean_of(self, decoder_output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(decoder_output) if self.likelihood == "bernoulli" else decoder_output

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z) at z = encode(x): ``(B, *input_shape) -> (B, *input_shape)``.

        Pixel probabilities for the Bernoulli likelihood. The input is not corrupted.
        """
        return self._mean_of(self.decode(self.encode(x)))

    def sample(self, *args: object, **kwargs: object) -> NoReturn:
        """Not available: an autoencoder has no prior p(z), so there is nothing to sample."""
        raise NotImplementedError(
            "an Autoencoder has no prior p(z) and so cannot sample; decode codes you choose "
            "yourself with model.decode(z) (e.g. codes of real images, or points between them), "
            "and note that z ~ N(0, I) need not lie anywhere near the codes it was trained on"
        )
