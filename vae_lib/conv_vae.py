"""A convolutional VAE for 28x28 (or any multiple-of-4) single- or multi-channel images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import arguments
from .vae import VAEBase, _check_likelihood


@dataclass(frozen=True)
class ConvVAEConfig:
    """Settings of a :class:`ConvVAE`.

    Attributes:
        input_shape: ``(C, H, W)`` with H and W divisible by 4 (two stride-2 convolutions).
        channels: output channels of the two encoder convolutions; the decoder mirrors them.
        hidden_dim: width of the fully connected layer between the convolutions and z.
        latent_dim: D, the dimension of z.
        likelihood, obs_std, learn_obs_std: as in :class:`vae_lib.vae.VAEConfig`.
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    channels: tuple[int, int] = (32, 64)
    hidden_dim: int = 256
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    obs_std: float = 1.0
    learn_obs_std: bool = False

    def __post_init__(self) -> None:
        shape = arguments.positive_ints("input_shape", self.input_shape)
        channels = arguments.positive_ints("channels", self.channels)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape!r}")
        _, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"H and W must be positive multiples of 4, got {self.input_shape!r}")
        if len(channels) != 2:
            raise ValueError(f"channels must be two ints >= 1, got {self.channels!r}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "channels", channels)
        for name in ("hidden_dim", "latent_dim"):
            object.__setattr__(self, name, arguments.positive_int(name, getattr(self, name)))
        _check_likelihood(self)


class ConvVAE(VAEBase):
    """A VAE with a convolutional encoder and a transposed-convolution decoder.

    Encoder: (C, H, W) -conv4x4/2-> (c1, H/2, W/2) -conv4x4/2-> (c2, H/4, W/4) -> hidden_dim
    -> (mu, logvar). The decoder runs the same path backwards. Same interface as
    :class:`vae_lib.vae.VAE`.
    """

    Config = ConvVAEConfig

    def __init__(self, config: ConvVAEConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        n_ch, h, w = c.input_shape
        c1, c2 = c.channels
        self._feature_shape = (c2, h // 4, w // 4)
        n_features = c2 * (h // 4) * (w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(n_ch, c1, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(n_features, c.hidden_dim),
            nn.ReLU(),
            nn.Linear(c.hidden_dim, 2 * c.latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(c.latent_dim, c.hidden_dim),
            nn.ReLU(),
            nn.Linear(c.hidden_dim, n_features),
            nn.ReLU(),
            nn.Unflatten(1, self._feature_shape),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, n_ch, 4, stride=2, padding=1),
        )
        self._init_likelihood()

    def _encode_flat(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
