"""A VAE with a learned prior, the VampPrior (Tomczak & Welling, 2018): the MLP
:class:`vae_lib.VAE`'s sibling (chapter 9).

The ELBO's KL term pulls every q(z | x) towards p(z); averaged over the data it is smallest when
p(z) is the *aggregate posterior* q(z) = (1/N) sum_n q(z | x_n). The VampPrior replaces N(0, I)
by a mixture of the encoder's posteriors at K learned *pseudo-inputs* u_1..u_K:

    p(z) = (1/K) sum_k q(z | u_k),

a small, trainable stand-in for that average. Its log-density has no closed-form KL with
q(z | x), so the ELBO's KL term is the one-sample estimate log q(z | x) - log p(z).
:func:`vae_lib.fit` trains it, :func:`vae_lib.iwae_bound` scores it (through
:meth:`VampPriorVAE.log_prior`), and :meth:`VampPriorVAE.sample` draws z from the mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import arguments
from .distributions import LOG_2PI, diagonal_gaussian_log_prob, reparameterize
from .vae import VAE, ImageOptions, VAEConfig, VAEOutput


@dataclass(frozen=True)
class VampPriorConfig(VAEConfig):
    """Settings of a :class:`VampPriorVAE`: those of :class:`vae_lib.VAEConfig` and

    Attributes:
        pseudo_inputs: K, the number of pseudo-inputs (mixture components of the prior).
    """

    pseudo_inputs: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        value = arguments.positive_int("pseudo_inputs", self.pseudo_inputs)
        object.__setattr__(self, "pseudo_inputs", value)
        if self.likelihood != "bernoulli":
            raise ValueError(
                "a VampPriorVAE's pseudo-inputs are images with pixels in [0, 1]: it needs "
                f"likelihood='bernoulli', got {self.likelihood!r}"
            )


@dataclass(frozen=True)
class VampImageOptions(ImageOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`VampPriorVAE`: those of a VAE of images,
    without free bits (the KL from a mixture prior has no per-dimension closed form)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.free_bits:
            raise ValueError(
                "free_bits must be 0 for a VampPriorVAE: the KL from its mixture prior has no "
                f"per-dimension closed form, got free_bits={self.free_bits}"
            )


class VampPriorVAE(VAE):
    """:class:`vae_lib.VAE` (the same encoder and decoder) with the VampPrior
    p(z) = (1/K) sum_k q(z | u_k): K pseudo-inputs u_k = sigmoid(w_k), images of the data's
    shape with pixels in (0, 1), learned with the rest by the ELBO.

    Example::

        model = VampPriorVAE(VampPriorConfig(hidden_dims=(400, 400), latent_dim=32))
        history = fit(model, train_x, epochs=10, binarize="dynamic", kl_warmup_epochs=2)
        model.log_prior(z)                 # (S, B) for z (S, B, D), nats
        x = model.sample(16)               # z from the mixture, then the decoder's mean
    """

    Config = VampPriorConfig
    Options = VampImageOptions

    def __init__(self, config: VampPriorConfig | None = None) -> None:
        config = VampPriorConfig() if config is None else config
        if not isinstance(config, VampPriorConfig):
            raise ValueError(f"config must be a VampPriorConfig, got {type(config).__name__}")
        super().__init__(config)
        k = config.pseudo_inputs
        # Grey noise around 0.5: sigmoid(0.1 * N(0, 1)) (the seed of fit's run decides it).
        self.pseudo_logits = nn.Parameter(0.1 * torch.randn(k, *self.input_shape))

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        """The K pseudo-inputs u_k: ``(K, *input_shape)``, pixels in (0, 1)."""
        return torch.sigmoid(self.pseudo_logits)

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the prior's K components q(z | u_k): each ``(K, D)``."""
        return self._encode(self.pseudo_inputs)

    def _log_prior(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.prior_components()
        if z.device.type != "cpu":  # no float64 off the CPU (Apple's MPS has none)
            log_k = diagonal_gaussian_log_prob(z.unsqueeze(-2), mu, logvar)  # (..., K)
            return torch.logsumexp(log_k, dim=-1) - math.log(mu.shape[0])
        # On the CPU, log N(z; mu_k, sigma_k^2) for every z and k by two matrix products: the
        # squared distance sum_d (z_d - mu_kd)^2 / sigma_kd^2 expanded, in float64 (the
        # expanded terms are large where sigma_kd is small), 12 times faster than the
        # (..., K, D) tensor and closer to the exact value
        shape = z.shape[:-1]
        z64 = z.reshape(-1, z.shape[-1]).double()
        mu64, logvar64 = mu.double(), logvar.double()
        precision = torch.exp(-logvar64)  # (K, D)
        squared = (
            (z64 * z64) @ precision.T
            - 2.0 * z64 @ (mu64 * precision).T
            + (mu64 * mu64 * precision).sum(-1)
        )  # (N, K)
        log_k = -0.5 * (z.shape[-1] * LOG_2PI + logvar64.sum(-1) + squared)
        log_p = torch.logsumexp(log_k, dim=-1) - math.log(mu.shape[0])
        return log_p.to(z.dtype).reshape(shape)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = log (1/K) sum_k N(z; mu_k, sigma_k^2): ``(..., D) -> (...)`` in nats."""
        z = self._check_z(z, leading="any")
        return self._log_prior(z)

    def _forward(self, x: torch.Tensor, beta: float, generator) -> VAEOutput:
        mu, logvar = self._encode(x)
        z = reparameterize(mu, logvar, generator=generator)
        out = self._decode(z)
        event = len(self.input_shape)
        rec = self._log_px(x.flatten(start_dim=x.dim() - event), out.flatten(start_dim=z.dim() - 1))
        kl = diagonal_gaussian_log_prob(z, mu, logvar) - self._log_prior(z)
        return VAEOutput(rec - beta * kl, rec, kl, z=z, mu=mu, logvar=logvar, decoder_output=out)

    @torch.no_grad()
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes z ~ p(z): a component k uniformly, then z ~ q(z | u_k); ``(n, D)``."""
        n = arguments.positive_int("n", n)
        arguments.generator("generator", generator, self.device)
        mu, logvar = self.prior_components()
        k = torch.randint(mu.shape[0], (n,), device=self.device, generator=generator)
        return reparameterize(mu[k], logvar[k], generator=generator)

    @torch.no_grad()
    def sample(
        self, n: int, *, mean: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Generate: z ~ p(z) (the VampPrior), then x from p(x|z); ``(n, *input_shape)``.

        Args:
            n: number of samples (>= 1).
            mean: return the mean of p(x|z) (pixel probabilities); ``False`` draws x ~ p(x|z).
            generator: optional ``torch.Generator`` on the model's device.
        """
        mean = arguments.boolean("mean", mean)
        m = self._mean_of(self.decode(self.prior_sample(n, generator)))
        return m if mean else torch.bernoulli(m, generator=generator)
