"""Monte Carlo estimators of log p(x), per example, in nats.

Both estimators work with any model that has ``latent_dim`` and ``log_px_given_z(x, z)``
(``x (B, ...)``, ``z (S, B or 1, D) -> (S, B)``) and a standard normal prior p(z); the
importance-sampled one also needs ``encode(x) -> (mu, logvar)``. :class:`vae_lib.VAE`,
:class:`vae_lib.ConvVAE` and :class:`vae_lib.LinearGaussian` all qualify.

Both are chunked: at most about ``max_elements`` decoder outputs exist at once, so memory stays
bounded however many samples are asked for (10^6 prior samples, or k = 5000 per test image).

:func:`prior_log_likelihoods` keeps the per-draw terms log p(x | z_n) of the naive estimator, and
:func:`running_log_mean_exp` turns them into the naive estimate for every prefix length N.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol

import torch

from . import arguments
from .distributions import diagonal_gaussian_log_prob, reparameterize, standard_normal_log_prob

DEFAULT_MAX_ELEMENTS = 2**23


class LatentVariableModel(Protocol):
    latent_dim: int

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


def _check_count(name: str, value: int) -> int:
    return arguments.positive_int(name, value)


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a floating-point tensor of shape (B, ...)")
    if x.dim() < 2:
        raise ValueError(f"x must have a batch dimension, shape (B, ...); got {tuple(x.shape)}")


def _placement(model: object, x: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the model's first parameter or buffer (else of x)."""
    for attr in ("parameters", "buffers"):
        tensors = getattr(model, attr, None)
        if tensors is not None:
            for t in tensors():
                if t.is_floating_point():
                    return t.device, t.dtype
    return x.device, x.dtype


def _prior_chunks(
    model: LatentVariableModel,
    x: torch.Tensor,
    n_samples: int,
    generator: torch.Generator | None,
    max_elements: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(z, log p(x | z))`` for N prior draws in chunks: ``(c, D)`` and ``(c, B)``.

    Each chunk's decoder output is ``(c, 1, P)``, scored against all B examples at once, so
    about ``max_elements`` numbers are held however large N is.
    """
    n = _check_count("n_samples", n_samples)
    max_elements = _check_count("max_elements", max_elements)
    _check_batch(x)
    if callable(getattr(model, "log_prior", None)):
        raise ValueError(
            f"{type(model).__name__} has a learned prior; the naive estimator draws z from "
            "N(0, I) and would estimate the likelihood of another model"
        )
    device, dtype = _placement(model, x)
    arguments.generator("generator", generator, device)
    x = x.to(device=device, dtype=dtype)
    batch, pixels = x.shape[0], math.prod(x.shape[1:])
    chunk = max(1, min(n, max_elements // max(1, pixels + batch)))
    done = 0
    while done < n:
        c = min(chunk, n - done)
        z = torch.randn(c, 1, model.latent_dim, device=device, dtype=dtype, generator=generator)
        yield z[:, 0], model.log_px_given_z(x, z)
        done += c


@torch.no_grad()
def naive_log_px(
    model: LatentVariableModel,
    x: torch.Tensor,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> torch.Tensor:
    """Naive Monte Carlo: log p(x) ~= log (1/N) sum_n p(x | z_n) with z_n ~ p(z) = N(0, I).

    Unbiased for p(x) itself, but for most prior draws p(x|z) is astronomically small, so with
    any affordable N the log of the average is usually far below log p(x). The same N prior
    draws are scored against every example in the batch.

    Args:
        model: decoder side of a latent-variable model (``latent_dim``, ``log_px_given_z``).
        x: ``(B, ...)`` observations, on any device (moved to the model's).
        n_samples: N >= 1 prior samples (10^6 is fine: work is chunked).
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on numbers held at once (chunk size times (P + B)).

    Returns:
        ``(B,)`` estimates of log p(x) in nats.
    """
    total = None
    for _, log_lik in _prior_chunks(model, x, n_samples, generator, max_elements):
        chunk_total = torch.logsumexp(log_lik, dim=0)
        total = chunk_total if total is None else torch.logaddexp(total, chunk_total)
    return total - math.log(int(n_samples))


class PosteriorModel(Protocol):
    """What :func:`iwae_bound` needs of a latent-variable model (every VAE of the library,
    conditional and sequence VAEs included, and :class:`vae_lib.LinearGaussian`). A *batch* is
    whatever the family scores: images ``x``, ``(x, c, mask)`` for a conditional VAE,
    ``(tokens, lengths)`` for a sequence VAE; its tensors have the examples along dim 0.

    * ``latent_dim``: D (0 for a model without a code, whose bound is its exact log p(x));
    * ``posterior_params(batch) -> (mu, logvar)``, each ``(B, D)``: the approximate posterior
      q(z | batch);
    * ``prior_params(batch) -> (mu, logvar) | None``: p(z | batch), ``None`` for N(0, I);
    * ``log_likelihood(batch, z) -> (S, B)`` for ``z (S, B, D)``: log p(x | z[, c]) in nats;
    * ``iwae_cost``: numbers held per (example, sample) pair, for chunking;
    * ``scoring_batch(batch)``: the batch checked and moved to the model's device;
    * optionally ``posterior_sample(batch, n, generator) -> (z (n, B, D), log_q (n, B))``: n
      draws from q(z | batch) with their log-density, for a posterior that is not a diagonal
      Gaussian (a flow, :class:`vae_lib.flow_vae.FlowVAE`); a model that has it is sampled
      through it, and ``posterior_params`` is not used;
    * optionally ``log_prior(z) -> (S, B)`` for ``z (S, B, D)``: log p(z) of a learned prior
      that is not a Gaussian (:class:`vae_lib.vamp_prior.VampPriorVAE`); a model that has it
      is scored through it, and ``prior_params`` is not used.
    """

    latent_dim: int
    iwae_cost: int

    def posterior_params(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]: ...

    def prior_params(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor] | None: ...

    def log_likelihood(self, batch: Any, z: torch.Tensor | None) -> torch.Tensor: ...

    def scoring_batch(self, batch: Any) -> Any: ...


class StandardNormalPrior:
    """The :class:`PosteriorModel` methods that a model of observations ``x (B, ...)`` with the
    prior N(0, I) and a checked ``log_px_given_z(x, z)`` shares (a VAE,
    :class:`vae_lib.LinearGaussian`); the model checks ``x`` with its ``_check_x(x)`` and
    has ``input_size``, the number of values of one observation."""

    @property
    def iwae_cost(self) -> int:
        """Numbers held per (example, sample) pair: the decoder's outputs, one per value."""
        return self.input_size

    def scoring_batch(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, ...)`` checked and moved to the model's device and dtype."""
        _check_batch(x)
        device, dtype = _placement(self, x)
        x = x.to(device=device, dtype=dtype)
        self._check_x(x)
        return x

    def prior_params(self, batch: Any) -> None:
        """``None``: the prior is N(0, I)."""
        return None

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z), ``(S, B)`` for ``z (S, B, D)`` (the model's ``log_px_given_z``)."""
        return self.log_px_given_z(x, z)


def _rows(batch: Any) -> int:
    return int((batch[0] if isinstance(batch, tuple) else batch).shape[0])


def _batch_slice(batch: Any, start: int, stop: int) -> Any:
    if isinstance(batch, tuple):
        return tuple(None if t is None else t[start:stop] for t in batch)
    return batch[start:stop]


@torch.no_grad()
def iwae_bound(
    model: PosteriorModel,
    batch: Any,
    k: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> torch.Tensor:
    """Importance-weighted bound L_k = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)], z_i ~ q(z|x).

    L_1 is the ELBO; L_k never decreases with k and tends to log p(x) as k grows
    (Burda et al., 2015). With k = 5000 it is the standard way to report a VAE's test
    log-likelihood (its negative is the "NLL" in papers). One function for every
    latent-variable model of the library (:class:`PosteriorModel`): for a conditional VAE it
    bounds log p(x | c) with the conditional prior p(z | c); for a model without a code
    (``latent_dim == 0``, a language model) it is the exact log p(x).

    Args:
        model: a latent-variable model (a VAE, ConvVAE, LinearGaussian, ConditionalVAE,
            SequenceVAE, or a FlowVAE, sampled through its ``posterior_sample``).
        batch: ``(B, ...)`` observations, or the family's tuple (``(x, c)`` or ``(x, c, mask)``
            for a conditional VAE, ``(tokens, lengths)`` for a sequence VAE); moved to the
            model's device and checked as the model's own methods check it.
        k: importance samples per example, >= 1.
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on the numbers held at once (chunks of examples and samples).

    Returns:
        ``(B,)`` one draw of the bound per example, in nats.
    """
    k = _check_count("k", k)
    max_elements = _check_count("max_elements", max_elements)
    sampler = getattr(model, "posterior_sample", None)
    log_prior_of = getattr(model, "log_prior", None)
    if not callable(sampler) and not callable(getattr(model, "posterior_params", None)):
        raise ValueError(
            f"iwae_bound needs a latent-variable model with an approximate posterior q(z|x) "
            f"(a VAE); {type(model).__name__} has none (a plain autoencoder has no posterior "
            "and no likelihood bound)"
        )
    device, dtype = _placement(model, batch[0] if isinstance(batch, tuple) else batch)
    arguments.generator("generator", generator, device)
    batch = model.scoring_batch(batch)
    n = _rows(batch)
    if n == 0:
        return torch.empty(0, device=device, dtype=dtype)
    if not model.latent_dim:
        return model.log_likelihood(batch, None)
    cost = max(1, model.iwae_cost)
    x_chunk = max(1, min(n, max_elements // cost))
    results = []
    for start in range(0, n, x_chunk):
        part = _batch_slice(batch, start, start + x_chunk)
        b = _rows(part)
        if callable(sampler):  # q(z | x) is not a diagonal Gaussian: its own draws and log q
            mu = logvar = None
        else:
            mu, logvar = model.posterior_params(part)
        prior = None if callable(log_prior_of) else model.prior_params(part)
        s_chunk = max(1, min(k, max_elements // (b * cost)))
        total = torch.full((b,), -math.inf, device=device, dtype=dtype if mu is None else mu.dtype)
        done = 0
        while done < k:
            c = min(s_chunk, k - done)
            if mu is None:
                z, log_q = sampler(part, c, generator)  # (c, b, D), (c, b)
            else:
                z = reparameterize(mu, logvar, generator=generator, n_samples=c)  # (c, b, D)
            if callable(log_prior_of):
                log_prior = log_prior_of(z)
            elif prior is None:
                log_prior = standard_normal_log_prob(z)
            else:
                log_prior = diagonal_gaussian_log_prob(z, *prior)
            log_w = model.log_likelihood(part, z) + log_prior
            log_w = log_w - (log_q if mu is None else diagonal_gaussian_log_prob(z, mu, logvar))
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
            done += c
        results.append(total - math.log(k))
    return torch.cat(results)


def effective_sample_size(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Kish's effective sample size (sum w)^2 / sum w^2 of importance weights given as logs.

    Equals N when all N weights are equal and 1 when a single weight dominates. Computed from
    log-weights, so weights like exp(-500) are fine.

    Args:
        log_weights: log w, any shape; the weights run along ``dim``.

    Returns:
        the ESS, with ``dim`` reduced away.
    """
    if not isinstance(log_weights, torch.Tensor) or not log_weights.is_floating_point():
        raise ValueError("log_weights must be a floating-point tensor")
    if log_weights.dim() == 0 or log_weights.shape[dim] < 1:
        raise ValueError("log_weights needs at least one weight along dim")
    if torch.isnan(log_weights).any():
        raise ValueError("log_weights holds NaN")
    if (log_weights == -math.inf).all(dim=dim).any():
        raise ValueError("every weight is zero (log w = -inf) along dim: the ESS is undefined")
    return torch.exp(
        2 * torch.logsumexp(log_weights, dim=dim) - torch.logsumexp(2 * log_weights, dim=dim)
    )


@torch.no_grad()
def prior_log_likelihoods(
    model: LatentVariableModel,
    x: torch.Tensor,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    return_z: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """log p(x | z_n) for N prior draws z_n ~ N(0, I), each scored against every example.

    The ingredients of :func:`naive_log_px`, kept instead of summed: their log-mean-exp is the
    naive estimate, their histogram shows how few draws matter, and prefixes of them give the
    estimate for every smaller N at no extra cost (:func:`running_log_mean_exp`). With the same
    generator state and ``max_elements`` the draws are the ones :func:`naive_log_px` makes.

    Args:
        model: decoder side of a latent-variable model (``latent_dim``, ``log_px_given_z``).
        x: ``(B, ...)`` observations (moved to the model's device).
        n_samples: N >= 1 prior draws; the result holds N * B numbers (10^6 x 5 is 20 MB).
        generator: optional ``torch.Generator`` on the model's device.
        max_elements: bound on decoder outputs held at once.
        return_z: also return the draws themselves.

    Returns:
        ``(N, B)`` log-likelihoods in nats, and the ``(N, D)`` draws if ``return_z``.
    """
    chunks = list(_prior_chunks(model, x, n_samples, generator, max_elements))
    log_lik = torch.cat([ll for _, ll in chunks])
    if return_z:
        return log_lik, torch.cat([z for z, _ in chunks])
    return log_lik


def running_log_mean_exp(
    log_values: torch.Tensor, counts: list[int] | tuple[int, ...] | torch.Tensor
) -> torch.Tensor:
    """log of the mean of exp(log_values[:n]) along dim 0, for each n in ``counts``.

    Applied to :func:`prior_log_likelihoods`, row i is the naive estimate of log p(x) from the
    first ``counts[i]`` draws: the estimate as a function of N, from one pass over the samples.

    Args:
        log_values: ``(N, ...)`` log-values, e.g. log p(x | z_n).
        counts: prefix lengths, each between 1 and N.

    Returns:
        ``(len(counts), ...)`` tensor of log-mean-exps.
    """
    if not isinstance(log_values, torch.Tensor) or not log_values.is_floating_point():
        raise ValueError("log_values must be a floating-point tensor")
    if log_values.dim() == 0 or log_values.shape[0] < 1:
        raise ValueError("log_values needs at least one value along dim 0")
    counts = [_check_count("counts", c) for c in torch.as_tensor(counts).reshape(-1).tolist()]
    if not counts:
        raise ValueError("counts must not be empty")
    if max(counts) > log_values.shape[0]:
        raise ValueError(f"counts go up to {max(counts)}, but only {log_values.shape[0]} values")
    cumulative = torch.logcumsumexp(log_values, dim=0)
    index = torch.tensor([c - 1 for c in counts], device=log_values.device)
    logn = torch.log(torch.tensor(counts, dtype=log_values.dtype, device=log_values.device))
    return cumulative[index] - logn.reshape(-1, *([1] * (log_values.dim() - 1)))
