"""The denoising autoencoder (Vincent et al., 2008): reconstruct the clean x from a corrupted copy.

A plain :class:`vae_lib.Autoencoder` with enough capacity can learn something close to the
identity map. The denoising autoencoder makes that useless: during training the encoder sees a
corrupted copy x~ of each input, and the decoder is scored on how well it reconstructs the
*clean* x, i.e. the objective is log p(x | z = f(x~)). To do well the model has to learn which
images are plausible, so that it can fill in what the noise destroyed.

Two corruptions are provided:

* ``"masking"`` (the one of Vincent et al., 2008): every pixel is independently set to 0 with
  probability ``noise_level``; the others are left unchanged.
* ``"gaussian"``: x~ = x + eps with eps ~ N(0, noise_level^2 I), independently per pixel. The
  result is **not** clamped to [0, 1]: the encoder is an MLP and takes any real input, clamping
  would bias the noise (its mean would no longer be 0 near black or white pixels), and it would
  be wrong for real-valued data under the Gaussian likelihood. Only the clean x is ever scored,
  so the [0, 1] check of the Bernoulli likelihood still applies to x itself.

Corruption happens only in training mode (``model.train()``). In evaluation mode
:meth:`DenoisingAutoencoder.corrupt` is the identity, so :func:`vae_lib.evaluate` (and the
validation numbers that :func:`vae_lib.fit` records, which it computes in evaluation mode) score
reconstructions of clean inputs, and :meth:`~vae_lib.Autoencoder.encode` and
:meth:`~vae_lib.Autoencoder.reconstruct` never corrupt. To see the model denoise, corrupt the
inputs yourself and call ``model.reconstruct(noisy)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .autoencoder import Autoencoder, AutoencoderConfig

CORRUPTIONS = ("masking", "gaussian")


@dataclass(frozen=True)
class DenoisingAutoencoderConfig(AutoencoderConfig):
    """Settings of a :class:`DenoisingAutoencoder`: those of :class:`vae_lib.AutoencoderConfig`
    plus the corruption.

    Attributes:
        corruption: ``"masking"`` (each pixel set to 0 with probability ``noise_level``) or
            ``"gaussian"`` (additive N(0, noise_level^2) noise per pixel, not clamped).
        noise_level: the masking probability, in [0, 1) (0 gives a plain autoencoder), or the
            standard deviation of the Gaussian noise, > 0.
    """

    corruption: str = "masking"
    noise_level: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {self.corruption!r}")
        object.__setattr__(self, "noise_level", float(self.noise_level))
        if self.corruption == "masking" and not 0 <= self.noise_level < 1:
            raise ValueError(
                f"noise_level is the masking probability and must be in [0, 1), "
                f"got {self.noise_level}"
            )
        if self.corruption == "gaussian" and not (
            self.noise_level > 0 and math.isfinite(self.noise_level)
        ):
            raise ValueError(
                f"noise_level is the standard deviation of the Gaussian noise and must be a "
                f"finite number > 0, got {self.noise_level}"
            )


class DenoisingAutoencoder(Autoencoder):
    """An :class:`vae_lib.Autoencoder` trained to undo a corruption of its input.

    The networks, :meth:`encode`, :meth:`decode`, :meth:`reconstruct` and the output of
    :meth:`forward` are those of the autoencoder; only :meth:`corrupt` differs, so in training
    mode :meth:`forward` computes z = encoder(corrupt(x)) and scores the reconstruction against
    the clean x.

    Example::

        cfg = DenoisingAutoencoderConfig(latent_dim=20, corruption="masking", noise_level=0.3)
        model = DenoisingAutoencoder(cfg).to(default_device())
        fit(model, train_x, epochs=10, binarize="dynamic")   # corrupts every training batch
        model.reconstruct(noisy_x)                           # eval mode: denoises noisy_x
    """

    Config = DenoisingAutoencoderConfig
    config: DenoisingAutoencoderConfig

    def __init__(self, config: DenoisingAutoencoderConfig | None = None) -> None:
        if config is not None and not isinstance(config, DenoisingAutoencoderConfig):
            raise TypeError(
                "DenoisingAutoencoder needs a DenoisingAutoencoderConfig (it says how to corrupt "
                f"the input), got {type(config).__name__}"
            )
        super().__init__(config)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A corrupted copy of ``x`` in training mode; ``x`` itself in evaluation mode.

        Args:
            x: ``(B, *input_shape)`` inputs.
            generator: optional ``torch.Generator`` on ``x``'s device that the noise is drawn
                from (the global generator if None); the same seed gives the same corruption.

        Returns:
            A tensor like ``x``. For ``"masking"``: ``x * (u >= noise_level)`` with
            ``u = torch.rand(x.shape)``; for ``"gaussian"``: ``x + noise_level * torch.randn``
            (not clamped).
        """
        if not self.training:
            return x
        c = self.config
        if c.corruption == "masking":
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return x * (u >= c.noise_level).to(x.dtype)
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + c.noise_level * eps
