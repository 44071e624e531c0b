"""Measurements of a trained VAE: where its KL goes, how many latent units it uses, and its
rate and distortion. All values are averages per example, in nats.

* :func:`kl_per_dimension`: the average KL(q(z_d|x) || N(0, 1)) of each latent dimension d;
  the D values add up to the average KL term of the ELBO.
* :func:`active_units`: Burda et al.'s (2015) count of the units whose posterior mean varies
  with x; the others have collapsed to the prior ("posterior collapse").
* :func:`rate_distortion`: the rate R = E_x KL(q(z|x) || p(z)) and the distortion
  D = -E_x E_q[log p(x|z)], so that the ELBO is -(D + R) (Alemi et al., 2018).

The functions need ``encode(x) -> (mu, logvar)`` (and, for the rate and distortion,
``log_px_given_z``): :class:`vae_lib.VAE`, :class:`vae_lib.ConvVAE` and
:class:`vae_lib.LinearGaussian` qualify. They run without gradients and in evaluation mode
(restoring the model's mode afterwards), in chunks of ``batch_size`` observations, moving each
chunk to the model's device.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from . import arguments
from .distributions import gaussian_kl, reparameterize
from .estimators import DEFAULT_MAX_ELEMENTS, _placement
from .latent import _check_batch_size, _check_data, _evaluating, encode_mean


class ActiveUnits(NamedTuple):
    """Result of :func:`active_units`; unpacks as ``count, activity = active_units(model, x)``.

    Attributes:
        count: number of latent dimensions whose activity exceeds the threshold.
        activity: ``(D,)`` variance over the data of each dimension of the posterior mean.
    """

    count: int
    activity: torch.Tensor


class RateDistortion(NamedTuple):
    """Result of :func:`rate_distortion`, in nats per example.

    Attributes:
        rate: R = average KL(q(z|x) || p(z)), exact (closed form) for the given encoder.
        distortion: D = average -E_q[log p(x|z)], a Monte Carlo estimate.
        elbo: -(D + R), the average ELBO (Monte Carlo, as the distortion).
    """

    rate: float
    distortion: float
    elbo: float


def _encode_gaussian(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if callable(getattr(model, "log_prior", None)) or callable(
        getattr(model, "posterior_sample", None)
    ):
        raise ValueError(
            f"{type(model).__name__} has a learned prior or a flow posterior: its KL term is "
            "not the closed-form KL(q(z|x) || N(0, I)) of a diagonal Gaussian that this "
            "function computes (vae_lib.gaps.aggregate_posterior_kl estimates its rate)"
        )
    encoded = model.encode(x)
    if not (isinstance(encoded, tuple) and len(encoded) == 2):
        raise ValueError(
            f"{type(model).__name__}.encode must return (mu, logvar) of a Gaussian q(z|x); "
            "a deterministic autoencoder has no q(z|x), hence no KL, rate or distortion"
        )
    return encoded


@torch.no_grad()
def kl_per_dimension(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Average over ``x`` of KL(q(z_d|x) || N(0, 1)) for each latent dimension d.

    q(z|x) is a diagonal Gaussian and the prior is N(0, I), so the KL splits into a sum over
    dimensions, 0.5 * (sigma_d^2 + mu_d^2 - 1 - log sigma_d^2) each. Dimensions with (nearly)
    zero KL carry no information about x: their posterior is the prior.

    Args:
        model: a VAE (``encode(x) -> (mu, logvar)``).
        x: ``(N, *input_shape)`` observations.
        batch_size: observations encoded at once.

    Returns:
        ``(D,)`` nats per example, on the model's device; it sums to the average KL term.
    """
    _check_data(x, model)
    batch_size = _check_batch_size(batch_size)
    device, dtype = _placement(model, x)
    total = None
    with _evaluating(model):
        for xb in x.split(batch_size):
            mu, logvar = _encode_gaussian(model, xb.to(device=device, dtype=dtype))
            # a one-dimensional event per coordinate: the KL of each dimension on its own
            per_dim = gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1))
            # each chunk summed on the device, the chunks in float64 on the CPU (no MPS float64)
            chunk = per_dim.reshape(-1, per_dim.shape[-1]).sum(0).to("cpu", torch.float64)
            total = chunk if total is None else total + chunk
    return (total / x.shape[0]).to(device, dtype)


@torch.no_grad()
def active_units(
    model: nn.Module, x: torch.Tensor, *, threshold: float = 1e-2, batch_size: int = 1000
) -> ActiveUnits:
    """Count the active latent units (Burda, Grosse and Salakhutdinov, 2015).

    Unit u is active when A_u = Cov_x(E_{q(z|x)}[z_u]) > ``threshold``: its posterior mean
    moves as x changes. An inactive unit gives (nearly) the same mean for every x, so the
    decoder cannot read anything from it; in a VAE such a unit has usually collapsed to the
    prior. The variance is the population variance over the N observations (divided by N).

    Args:
        model: a VAE (the posterior mean mu(x)); an :class:`vae_lib.Autoencoder` works too (its
            codes z), but the default threshold assumes codes on the prior's scale, N(0, 1).
        x: ``(N, *input_shape)`` observations, e.g. a test set.
        threshold: activity above which a unit counts as active (Burda et al. use 10^-2).
        batch_size: observations encoded at once.

    Returns:
        :class:`ActiveUnits` ``(count, activity)``, ``activity`` of shape ``(D,)`` on the
        model's device.
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    mu = encode_mean(model, x, batch_size=batch_size)
    activity = mu.to("cpu", torch.float64).var(0, correction=0).to(mu.device, mu.dtype)
    return ActiveUnits(count=int((activity > threshold).sum()), activity=activity)


@torch.no_grad()
def rate_distortion(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
    n_samples: int = 1,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> RateDistortion:
    """Rate and distortion of a VAE on ``x``, in nats per example.

    * rate R = (1/N) sum_n KL(q(z|x_n) || p(z)), in closed form;
    * distortion D = -(1/N) sum_n E_{q(z|x_n)}[log p(x_n|z)], estimated with ``n_samples``
      reparameterized draws z ~ q(z|x_n) per example;
    * the ELBO is -(D + R). Training with weight beta on the KL trades one for the other:
      large beta gives low rate and high distortion.

    With ``n_samples=1``, the whole of ``x`` in one chunk and the same generator state, the
    draws are the ones ``model(x, generator=generator)`` makes.

    Args:
        model: a VAE-like model with ``encode(x) -> (mu, logvar)`` and ``log_px_given_z``.
        x: ``(N, *input_shape)`` observations (binarized already, for a Bernoulli decoder).
        batch_size: observations encoded at once.
        generator: optional ``torch.Generator`` on the model's device.
        n_samples: draws of z per example, >= 1 (more draws, less noise in D).
        max_elements: bound on decoder outputs held at once (draws are chunked to fit).

    Returns:
        :class:`RateDistortion` ``(rate, distortion, elbo)`` as floats.
    """
    _check_data(x, model)
    batch_size = _check_batch_size(batch_size)
    n_samples = arguments.positive_int("n_samples", n_samples)
    device, dtype = _placement(model, x)
    pixels = math.prod(x.shape[1:])
    # sums in float64 on the CPU (an Apple GPU has no float64); each chunk's on the device
    rate = torch.zeros((), dtype=torch.float64)
    distortion = torch.zeros((), dtype=torch.float64)
    with _evaluating(model):
        for xb in x.split(batch_size):
            xb = xb.to(device=device, dtype=dtype)
            mu, logvar = _encode_gaussian(model, xb)
            rate += gaussian_kl(mu, logvar).sum().to("cpu", torch.float64)
            s_chunk = max(1, min(n_samples, max_elements // max(1, xb.shape[0] * pixels)))
            done = 0
            while done < n_samples:
                c = min(s_chunk, n_samples - done)
                z = reparameterize(mu, logvar, generator=generator, n_samples=c)  # (c, b, D)
                distortion -= model.log_px_given_z(xb, z).sum().to("cpu", torch.float64) / n_samples
                done += c
    r, d = rate.item() / x.shape[0], distortion.item() / x.shape[0]
    return RateDistortion(rate=r, distortion=d, elbo=-(d + r))
