"""A plain (deterministic) autoencoder: the model the VAE is usually contrasted with.

An encoder maps x to one code z = f(x), a decoder maps z back to the parameters of p(x|z), and
training maximises the reconstruction log-likelihood log p(x | z = f(x)) alone. There is no
posterior q(z|x), no prior p(z) and no KL term, so nothing ties the codes to a known region of
latent space: the model reconstructs, but it cannot generate (there is no distribution to draw
z from).

:class:`Autoencoder` has the interface of :class:`vae_lib.VAE` where that interface makes sense,
so :func:`vae_lib.fit`, :func:`vae_lib.evaluate`, :func:`vae_lib.plot_history` and
:func:`vae_lib.plot_latent_manifold` work on it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NoReturn

import torch

from . import arguments
from .training import Run
from .vae import ImageModel, MLPConfig, mlp


@dataclass
class AutoencoderOutput:
    """What one forward pass of an :class:`Autoencoder` computes.

    An autoencoder has no KL term and no bound on log p(x) (it defines no p(x) at all): its
    training objective is the reconstruction log-likelihood alone.

    Attributes:
        reconstruction: ``(B,)`` log p(x | z = encoder(x)) in nats, summed over pixels (for the
            Bernoulli likelihood: minus the binary cross-entropy).
        z: ``(B, D)`` the deterministic codes.
        decoder_output: ``(B, *input_shape)`` logits (Bernoulli) or means (Gaussian) at z.
    """

    reconstruction: torch.Tensor
    z: torch.Tensor
    decoder_output: torch.Tensor


@dataclass(frozen=True)
class AutoencoderConfig(MLPConfig):
    """Settings of an MLP :class:`Autoencoder`, those of :class:`vae_lib.vae.MLPConfig`
    (784-400-D by default, as the reference VAE): D is the dimension of the code z; the
    Bernoulli likelihood is a binary cross-entropy on pixels in [0, 1], the Gaussian one
    N(f(z), obs_std^2 I), a squared error scaled and shifted, with a fixed ``obs_std``."""


class Autoencoder(ImageModel):
    """A deterministic autoencoder with MLP encoder and decoder.

    Encoder: x -> hidden_dims -> z (D numbers, no variance). Decoder: z -> reversed(hidden_dims)
    -> P outputs, the logits (Bernoulli) or means (Gaussian) of p(x|z).

    Differences from :class:`vae_lib.VAE`:

    * :meth:`encode` returns the code z itself, ``(B, D)``, not a pair ``(mu, logvar)``.
    * :meth:`forward` gives the reconstruction log-likelihood alone (no KL, no ELBO, no
      ``beta``), deterministically: ``generator`` only feeds :meth:`corrupt`. Its history
      from :func:`vae_lib.fit` has ``train_reconstruction`` / ``val_reconstruction`` only,
      and ``free_bits`` (a floor on a KL term) is refused.
    * :meth:`sample` raises: without a prior there is nothing to sample z from.

    Subclasses (a denoising autoencoder, say) can override :meth:`corrupt`, which
    :meth:`forward` applies to the input before encoding; the reconstruction is always scored
    against the clean x.

    Example::

        model = Autoencoder(AutoencoderConfig(latent_dim=2)).to(default_device())
        history = fit(model, train_x, epochs=10, binarize="dynamic")
        z = model.encode(test_x)           # (N, 2) codes, for a scatter plot
    """

    Config = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        n_in = self.input_size
        self.encoder = mlp([n_in, *c.hidden_dims, c.latent_dim], c.activation)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden_dims), n_in], c.activation)
        self.register_buffer("_obs_logvar", torch.tensor(2.0 * math.log(c.obs_std)))

    curves = ("reconstruction",)

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
        return self._encode(x)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[: x.dim() - len(self.input_shape)]
        z = self.encoder(x.reshape(-1, self.input_size))
        return z.reshape(*batch, self.latent_dim)

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    # -- the objective ----------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> AutoencoderOutput:
        """Reconstruction log-likelihood of each example in ``x (B, *input_shape)``, in nats.

        Computes z = encoder(corrupt(x)) and log p(x | z), scored against the clean ``x``.
        ``generator`` (optional, on the model's device) is passed to :meth:`corrupt` and is
        otherwise unused.
        """
        arguments.generator("generator", generator, self.device)
        self._check_x(x)
        if x.dim() != len(self.input_shape) + 1:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; forward takes one batch dimension, "
                f"(B, {', '.join(map(str, self.input_shape))})"
            )
        return self._forward(x, generator)

    def _forward(self, x: torch.Tensor, generator) -> AutoencoderOutput:
        z = self._encode(self.corrupt(x, generator=generator))
        out = self._decode(z)
        reconstruction = self._log_px(x.flatten(start_dim=1), out.flatten(start_dim=1))
        return AutoencoderOutput(reconstruction=reconstruction, z=z, decoder_output=out)

    def training_data(self, data, run: Run, *, name: str) -> torch.Tensor:
        if run.options.free_bits > 0:
            raise ValueError("free_bits is a floor on a KL term, which an autoencoder has not")
        return super().training_data(data, run, name=name)

    def loss(self, batch: torch.Tensor, run: Run):
        """Minus the mean reconstruction log-likelihood of a minibatch; the part is the
        reconstruction, ``(B,)`` in nats (``beta`` and the warm-up have nothing to weigh)."""
        rec = self._forward(batch, run.generator).reconstruction
        return -rec.mean(), {"reconstruction": rec}

    # -- using a trained model --------------------------------------------------------------
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
