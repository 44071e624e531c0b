"""The evidence lower bound (ELBO) and its two named parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from . import arguments
from .distributions import (
    _bernoulli_log_likelihood,
    _gaussian_kl,
    _gaussian_log_likelihood,
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_likelihood,
)

LIKELIHOODS = ("bernoulli", "gaussian")


class ELBO(NamedTuple):
    """One-sample ELBO estimate and its parts, each of shape ``(B,)``, in nats per example.

    * ``reconstruction`` = log p(x | z) with z ~ q(z | x) (the "distortion" is its negative);
    * ``kl`` = KL(q(z | x) || p(z)) in closed form (the "rate");
    * ``elbo`` = reconstruction - beta * kl. With ``beta = 1`` this is the ELBO, a lower bound
      on log p(x); other values give the beta-weighted objective of beta-VAE.
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def _elbo_parts(reconstruction: torch.Tensor, kl: torch.Tensor, beta: float) -> ELBO:
    """The :class:`ELBO` of its two parts: ``elbo = reconstruction - beta * kl``."""
    return ELBO(elbo=reconstruction - beta * kl, reconstruction=reconstruction, kl=kl)


@dataclass
class LatentOutput:
    """What one forward pass of a latent-variable model (a VAE, conditional or sequence VAE)
    computes, first the fields of an :class:`ELBO` (so ``Output(*elbo_parts, z=...)`` makes
    one); per-example tensors are ``(B,)`` and in nats. Each model's subclass adds its own.

    Attributes:
        elbo: reconstruction - beta * kl, the per-example training objective (maximised).
        reconstruction: log p(x | z) at one z ~ q(z | x).
        kl: KL(q(z | x) || p(z)), closed form.
        z: ``(B, D)`` the sampled codes.
        mu, logvar: ``(B, D)`` parameters of q(z | x).
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def elbo(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    likelihood: str = "bernoulli",
    beta: float = 1.0,
    obs_logvar: torch.Tensor | float | None = None,
) -> ELBO:
    """ELBO(x) = E_q[log p(x|z)] - beta * KL(q(z|x) || N(0, I)), one z per example.

    Args:
        x: ``(B, P)`` flattened observations (in [0, 1] for the Bernoulli likelihood).
        decoder_output: ``(B, P)`` decoder output at z ~ q(z|x): logits for ``"bernoulli"``,
            the mean for ``"gaussian"``.
        mu, logvar: ``(B, D)`` parameters of q(z|x).
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        beta: weight of the KL term (``beta >= 0``).
        obs_logvar: log-variance of the Gaussian likelihood (required for ``"gaussian"``).

    Returns:
        :class:`ELBO` with per-example ``elbo``, ``reconstruction`` and ``kl`` in nats.
    """
    beta = arguments.real("beta", beta, minimum=0.0)
    if likelihood == "bernoulli":
        reconstruction = bernoulli_log_likelihood(x, decoder_output)
    elif likelihood == "gaussian":
        if obs_logvar is None:
            raise ValueError("the gaussian likelihood needs obs_logvar, the log-variance of p(x|z)")
        reconstruction = gaussian_log_likelihood(x, decoder_output, obs_logvar)
    else:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return _elbo_parts(reconstruction, gaussian_kl(mu, logvar), beta)


def _elbo(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    beta: float,
    obs_logvar: torch.Tensor | None,
) -> ELBO:
    """:func:`elbo` without its checks: what a model's training step computes."""
    if likelihood == "bernoulli":
        reconstruction = _bernoulli_log_likelihood(x, decoder_output)
    else:
        reconstruction = _gaussian_log_likelihood(x, decoder_output, obs_logvar)
    return _elbo_parts(reconstruction, _gaussian_kl(mu, logvar), beta)
