"""A VAE whose approximate posterior is a Gaussian followed by an inverse autoregressive flow
(Kingma et al., 2016), the MLP :class:`vae_lib.VAE`'s sibling (chapter 9).

The encoder gives (mu, log sigma^2) and a context vector h; z_0 = mu + sigma * eps, then K
IAF steps (:func:`vae_lib.flows.iaf_flow`, conditioned on h) give z_K, whose density is, by
the change of variables,

    log q(z_K | x) = log N(z_0; mu, sigma^2) - sum_k log |det dz_k / dz_{k-1}|.

Decoder, likelihood and prior N(0, I) are the VAE's. :func:`vae_lib.fit` trains it and
:func:`vae_lib.iwae_bound` scores it (through :meth:`FlowVAE.posterior_sample`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import arguments
from .distributions import (
    diagonal_gaussian_log_prob,
    reparameterize,
    standard_normal_log_prob,
)
from .flows import iaf_flow
from .training import Run, kl_weight
from .vae import ImageOptions, VAEBase, VAEConfig, VAEOutput, mlp


@dataclass(frozen=True)
class FlowVAEConfig(VAEConfig):
    """Settings of a :class:`FlowVAE`: those of :class:`vae_lib.VAEConfig` (the encoder's and
    decoder's MLPs, the code, the likelihood) and

    Attributes:
        flow_steps: K, the number of IAF steps (0: the posterior is the VAE's Gaussian).
        flow_hidden_dims: the hidden widths of each step's MADE.
        context_dim: size of the context h the encoder gives the flow (0: none).
        sigma_bias: initial bias of each step's s (sigma starts near sigmoid(sigma_bias)).
    """

    flow_steps: int = 2
    flow_hidden_dims: tuple[int, ...] = (64, 64)
    context_dim: int = 16
    sigma_bias: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        set_ = object.__setattr__
        set_(self, "flow_steps", arguments.integer("flow_steps", self.flow_steps, minimum=0))
        set_(
            self,
            "flow_hidden_dims",
            arguments.positive_ints("flow_hidden_dims", self.flow_hidden_dims),
        )
        set_(self, "context_dim", arguments.integer("context_dim", self.context_dim, minimum=0))
        set_(self, "sigma_bias", arguments.real("sigma_bias", self.sigma_bias))


@dataclass(frozen=True)
class FlowImageOptions(ImageOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`FlowVAE`: those of a VAE of images, without
    free bits (its KL per dimension has no closed form under a flow)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.free_bits:
            raise ValueError(
                "free_bits must be 0 for a FlowVAE: the KL of a flow posterior has no per-"
                f"dimension closed form, got free_bits={self.free_bits}"
            )


@dataclass
class FlowVAEOutput(VAEOutput):
    """One forward pass of a :class:`FlowVAE` (see :class:`vae_lib.vae.VAEOutput`): ``z`` is
    z_K, ``mu`` and ``logvar`` are those of the Gaussian q_0, and ``kl`` is the one-sample
    estimate log q(z_K | x) - log p(z_K) (with no flow steps, the VAE's closed form).

    Attributes:
        z0: ``(B, D)`` the Gaussian draw the flow starts from.
        log_q: ``(B,)`` log q(z_K | x).
    """

    z0: torch.Tensor
    log_q: torch.Tensor


class FlowVAE(VAEBase):
    """A VAE with an IAF posterior: the MLP encoder gives (mu, logvar, h), ``flow_steps`` IAF
    steps conditioned on h transform z_0 ~ N(mu, sigma^2) into z_K; the MLP decoder and the
    prior N(0, I) are :class:`vae_lib.VAE`'s.

    :meth:`encode` and :meth:`posterior_params` give the Gaussian q_0's (mu, logvar), not
    q(z | x) itself; :meth:`posterior_sample` draws from q(z | x) with log q, which is what
    :func:`vae_lib.iwae_bound` uses. With ``flow_steps=0`` and ``context_dim=0`` the model has
    exactly a :class:`vae_lib.VAE`'s parameters and computes what it computes.

    Example::

        model = FlowVAE(FlowVAEConfig(hidden_dims=(400, 400), latent_dim=32, flow_steps=4))
        history = fit(model, train_x, epochs=10, binarize="dynamic", kl_warmup_epochs=2)
        z, log_q = model.posterior_sample(x, 10)     # (10, B, D), (10, B)
    """

    Config = FlowVAEConfig
    Options = FlowImageOptions

    def __init__(self, config: FlowVAEConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        if not isinstance(c, FlowVAEConfig):
            raise ValueError(f"config must be a FlowVAEConfig, got {type(c).__name__}")
        n_in = self.input_size
        d = c.latent_dim
        self.encoder = mlp([n_in, *c.hidden_dims, 2 * d + c.context_dim], c.activation)
        self.decoder = mlp([d, *reversed(c.hidden_dims), n_in], c.activation)
        self.flow = iaf_flow(
            d, c.flow_steps, c.flow_hidden_dims, c.context_dim, c.activation, c.sigma_bias
        )
        self._init_likelihood()

    # -- the networks -------------------------------------------------------------------------
    def _encode_flat(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(start_dim=1))

    def _decode_flat(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(-1, *self.input_shape)

    def _encode_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu, logvar, h)`` of ``x (..., *input_shape)``: ``(..., D)`` twice and
        ``(..., context_dim)`` (unchecked)."""
        batch = x.shape[: x.dim() - len(self.input_shape)]
        out = self._encode_flat(x.reshape(-1, *self.input_shape))
        d = self.latent_dim
        mu, logvar, h = out.split([d, d, self.config.context_dim], dim=-1)
        return mu.reshape(*batch, d), logvar.reshape(*batch, d), h.reshape(*batch, -1)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar, _ = self._encode_all(x)
        return mu, logvar

    def _context(self, h: torch.Tensor) -> torch.Tensor | None:
        return h if self.config.context_dim else None

    # -- the posterior ------------------------------------------------------------------------
    def _posterior(
        self, x: torch.Tensor, n: int | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z_0, z_K, log q(z_K | x), mu, logvar)`` for ``n`` draws per example
        (``(n, B, D)`` and ``(n, B)``; ``n=None``: one, ``(B, D)`` and ``(B,)``)."""
        mu, logvar, h = self._encode_all(x)
        z0 = reparameterize(mu, logvar, generator=generator, n_samples=n)
        z, log_det = self.flow._flow(z0, self._context(h))
        return z0, z, diagonal_gaussian_log_prob(z0, mu, logvar) - log_det, mu, logvar

    def transform(self, x: torch.Tensor, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow of ``x``'s posterior applied to given base codes: ``z0 (..., B, D) ->
        (z_K (..., B, D), sum of log-dets (..., B))`` for ``x (B, *input_shape)``."""
        self._check_x(x)
        z0 = self._check_z(z0, leading="any")
        _, _, h = self._encode_all(x)
        return self.flow(z0, self._context(h))

    def posterior_sample(
        self, x: torch.Tensor, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws z ~ q(z | x) per example with their log-density: ``x (B, *input_shape)
        -> (z (n, B, D), log q(z | x) (n, B))`` in nats (the protocol of
        :func:`vae_lib.iwae_bound` for a posterior that is not a diagonal Gaussian)."""
        self._check_input("x", x)
        n = arguments.positive_int("n", n)
        arguments.generator("generator", generator, self.device)
        _, z, log_q, _, _ = self._posterior(x, n, generator)
        return z, log_q

    # -- the objective ------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor, beta: float, generator) -> FlowVAEOutput:
        if not len(self.flow):  # the VAE's estimator, closed-form KL included
            out = super()._forward(x, beta, generator)
            log_q = diagonal_gaussian_log_prob(out.z, out.mu, out.logvar)
            return FlowVAEOutput(**vars(out), z0=out.z, log_q=log_q)
        z0, z, log_q, mu, logvar = self._posterior(x, None, generator)
        out = self._decode(z)
        event = len(self.input_shape)
        rec = self._log_px(x.flatten(start_dim=x.dim() - event), out.flatten(start_dim=z.dim() - 1))
        kl = log_q - standard_normal_log_prob(z)
        return FlowVAEOutput(
            rec - beta * kl,
            rec,
            kl,
            z=z,
            mu=mu,
            logvar=logvar,
            decoder_output=out,
            z0=z0,
            log_q=log_q,
        )

    def loss(self, batch: torch.Tensor, run: Run):
        """Minus the ELBO of a minibatch ``(B, *input_shape)`` with the KL term weighted by the
        run's warm-up at this step; the parts are the one-sample ELBO (beta = 1), its
        reconstruction and KL estimate, ``(B,)`` in nats."""
        o = run.options
        weight = kl_weight(o.beta, o.kl_warmup_epochs, run.step, run.n_batches)
        out = self._forward(batch, weight, run.generator)
        rec, kl = out.reconstruction, out.kl
        return -out.elbo.mean(), {"elbo": rec - kl, "reconstruction": rec, "kl": kl}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z) at z = the flow applied to the mean of q_0: ``(B, *input_shape) ->
        (B, *input_shape)``."""
        self._check_x(x)
        mu, _, h = self._encode_all(x)
        z, _ = self.flow._flow(mu, self._context(h))
        return self._mean_of(self._decode(z))
