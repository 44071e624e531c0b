"""Log-densities, KL divergences and the reparameterization trick, in nats.

Conventions used throughout the book:

* Observations and their decoder outputs are *flattened*: shape ``(..., P)`` with ``P`` the
  number of pixels (784 for MNIST) or coordinates. Every log-likelihood sums over that last
  dimension and returns shape ``(...)``, one number per example.
* Latent Gaussians are diagonal and given by their mean ``mu`` and log-variance ``logvar``,
  both of shape ``(..., D)``. KL divergences sum over ``D`` and return ``(...)``.
* All logarithms are natural, so every value is in nats.
"""

from __future__ import annotations

import math

import torch

from . import arguments
from .checks import check_finite, check_unit_interval
from .elementwise import softplus

LOG_2PI = math.log(2.0 * math.pi)


def _check_same_last_dim(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.dim() == 0 or b.dim() == 0:
        raise ValueError(f"{name_a} and {name_b} need at least one dimension, the event dimension")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} has {a.shape[-1]} values in its last dimension and {name_b} has "
            f"{b.shape[-1]}; both must be flattened to (..., P) with the same P"
        )
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} do not broadcast"
        ) from err


def _check_floating(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) of independent Bernoulli pixels, summed over the last dimension.

    The observations come first and the distribution's parameters after them, as in
    :func:`gaussian_log_likelihood` (``x, mean, logvar``).

    Args:
        x: ``(..., P)`` observations in [0, 1] (binary, or grey levels read as probabilities,
            in which case this is the negative binary cross-entropy). Broadcasts with ``logits``.
        logits: ``(..., P)`` decoder outputs, log-odds of each pixel being 1.

    Returns:
        ``(...)`` log-likelihood in nats. Computed from the logits as
        ``sum(x * logits - softplus(logits))``, which never takes the log of 0 (the same value
        as ``-binary_cross_entropy_with_logits``, faster on the CPU: see
        :func:`vae_lib.elementwise.softplus`).

    Raises:
        ValueError: if ``x`` leaves [0, 1] (a check skipped inside
        :func:`vae_lib.checks.skip_value_checks`, where a training loop has checked its data).
    """
    _check_floating("x", x)
    _check_floating("logits", logits)
    _check_same_last_dim("x", x, "logits", logits)
    check_unit_interval("x", x, "for a Bernoulli likelihood")
    return _bernoulli_log_likelihood(x, logits)


def _bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """:func:`bernoulli_log_likelihood` without its checks (for training steps)."""
    x = x.to(logits.dtype)
    if x.shape == logits.shape:
        return (x * logits - softplus(logits)).sum(-1)
    # Broadcasting, e.g. a (S, 1, P) stack of decoder outputs against a (B, P) batch of images:
    # the x * logits term is a contraction over P, which einsum turns into one matrix product
    # instead of materialising an (S, B, P) array.
    return torch.einsum("...p,...p->...", x, logits) - softplus(logits).sum(-1)


def gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | float
) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dimension.

    Args:
        x: ``(..., P)`` observations.
        mean: ``(..., P)`` means, broadcastable with ``x``.
        logvar: log-variances, a float or a tensor broadcastable with ``(..., P)``.

    Returns:
        ``(...)`` log-density in nats.
    """
    _check_floating("x", x)
    _check_floating("mean", mean)
    _check_same_last_dim("x", x, "mean", mean)
    if isinstance(logvar, torch.Tensor):
        _check_floating("logvar", logvar)
        try:
            torch.broadcast_shapes(logvar.shape, torch.broadcast_shapes(x.shape, mean.shape))
        except RuntimeError:
            raise ValueError(
                f"logvar {tuple(logvar.shape)} does not broadcast with x {tuple(x.shape)} and "
                f"mean {tuple(mean.shape)}"
            ) from None
    else:
        logvar = arguments.real("logvar", logvar)
    check_finite("x", x, "for a Gaussian likelihood")
    return _gaussian_log_likelihood(x, mean, logvar)


def _gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | float
) -> torch.Tensor:
    """:func:`gaussian_log_likelihood` without its checks (for training steps)."""
    logvar_t = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device)
    per_dim = -0.5 * (LOG_2PI + logvar_t + (x - mean) ** 2 * torch.exp(-logvar_t))
    return per_dim.expand(torch.broadcast_shapes(per_dim.shape, x.shape, mean.shape)).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) of the prior p(z), summed over the last dimension: ``(..., D) -> (...)``."""
    _check_floating("z", z)
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def diagonal_gaussian_log_prob(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) for latent codes: ``(..., D) -> (...)`` in nats."""
    return gaussian_log_likelihood(z, mu, logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in closed form, per example.

    With sigma^2 = exp(logvar), the divergence is

        0.5 * sum_d (sigma_d^2 + mu_d^2 - 1 - log sigma_d^2),

    i.e. 0.5 * (tr Sigma + mu^T mu - D - log det Sigma). (Graham Taylor's lecture slides on VAEs
    print "+ log det Sigma"; the sign is minus, which is what makes the KL zero at mu=0, Sigma=I.)

    Args:
        mu: ``(..., D)`` means of q(z|x).
        logvar: ``(..., D)`` log-variances of q(z|x).

    Returns:
        ``(...)`` KL divergence in nats, >= 0.
    """
    _check_floating("mu", mu)
    _check_floating("logvar", logvar)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must match")
    return _gaussian_kl(mu, logvar)


def _gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """:func:`gaussian_kl` without its checks (for training steps)."""
    return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1.0 - logvar).sum(-1)


def gaussian_kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` KL(N(mu_d, exp(logvar_d)) || N(0, 1)) of each latent dimension, in nats
    (the terms :func:`gaussian_kl` sums; unchecked, for the training losses)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar)


def diagonal_gaussian_kl(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p))), per example.

    Per dimension: 0.5 * (logvar_p - logvar_q + (var_q + (mu_q - mu_p)^2) / var_p - 1),
    summed over the last dimension. All four arguments broadcast to ``(..., D)``;
    the result is ``(...)`` in nats.
    """
    for name, t in (("mu_q", mu_q), ("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
        _check_floating(name, t)
    try:
        torch.broadcast_shapes(mu_q.shape, logvar_q.shape, mu_p.shape, logvar_p.shape)
    except RuntimeError as err:
        raise ValueError("the means and log-variances of q and p do not broadcast") from err
    per_dim = 0.5 * (
        logvar_p
        - logvar_q
        + (torch.exp(logvar_q) + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p)
        - 1.0
    )
    return per_dim.sum(-1)


def reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    generator: torch.Generator | None = None,
    n_samples: int | None = None,
) -> torch.Tensor:
    """Draw z ~ N(mu, diag(exp(logvar))) as z = mu + sigma * eps, eps ~ N(0, I).

    The randomness sits in eps, which does not depend on (mu, logvar), so gradients flow into
    both through an ordinary differentiable expression. Note the standard deviation sigma, not the
    variance: Seonglae Cho's notes on VAEs write mu + sigma^2 * eps, which has the wrong spread
    (chapter 4).

    Args:
        mu: ``(..., D)`` means.
        logvar: ``(..., D)`` log-variances, same shape as ``mu``.
        generator: optional ``torch.Generator`` on ``mu``'s device, for reproducible draws.
        n_samples: if given, draw that many samples per example: result ``(n_samples, ..., D)``.

    Returns:
        ``(..., D)`` samples (or ``(n_samples, ..., D)``), differentiable in mu and logvar.
    """
    _check_floating("mu", mu)
    _check_floating("logvar", logvar)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must match")
    arguments.generator("generator", generator, mu.device)
    shape = mu.shape
    if n_samples is not None:
        shape = (arguments.positive_int("n_samples", n_samples), *mu.shape)
    eps = torch.randn(shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps


def log_mean_exp(log_values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log( mean( exp(log_values) ) ) along ``dim``, computed stably with logsumexp."""
    _check_floating("log_values", log_values)
    dim = arguments.integer("dim", dim)
    if not -log_values.dim() <= dim < log_values.dim():
        raise ValueError(
            f"dim={dim} is not a dimension of log_values, of shape {tuple(log_values.shape)}"
        )
    n = log_values.shape[dim]
    if n < 1:
        raise ValueError("log_mean_exp needs at least one value along dim")
    return torch.logsumexp(log_values, dim=dim) - math.log(n)


def _check_probabilities(name: str, p: torch.Tensor) -> None:
    _check_floating(name, p)
    if p.dim() == 0:
        raise ValueError(f"{name} needs at least one dimension, the outcomes")
    if p.numel() == 0:
        return
    if not bool((p >= 0).all()):  # also catches NaN
        raise ValueError(f"{name} must be non-negative")
    total = p.sum(-1)
    if not torch.allclose(total, torch.ones_like(total), atol=1e-6, rtol=0):
        raise ValueError(f"{name} must sum to 1 over its last dimension")


def discrete_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy H(p) = -sum_k p_k log p_k of a discrete distribution, in nats.

    Args:
        p: ``(..., K)`` probabilities of K outcomes, non-negative and summing to 1 over the last
            dimension. Outcomes with p_k = 0 contribute 0 (the limit of p log p).

    Returns:
        ``(...)`` entropy in nats, between 0 and log K.
    """
    _check_probabilities("p", p)
    return -torch.special.xlogy(p, p).sum(-1)


def discrete_cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Cross entropy H(p, q) = -sum_k p_k log q_k, in nats.

    The average surprise, -log q, of outcomes that are in fact drawn from p.

    Args:
        p: ``(..., K)`` probabilities of the distribution the outcomes come from.
        q: ``(..., K)`` probabilities of the model, broadcastable with ``p``.

    Returns:
        ``(...)`` cross entropy in nats, ``>= discrete_entropy(p)``; ``inf`` if q gives
        probability 0 to an outcome that p can produce.
    """
    _check_probabilities("p", p)
    _check_probabilities("q", q)
    _check_same_last_dim("p", p, "q", q)
    return -torch.special.xlogy(p, q).sum(-1)


def discrete_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_k p_k log(p_k / q_k) = H(p, q) - H(p), in nats.

    Args:
        p, q: ``(..., K)`` probabilities, broadcastable (see :func:`discrete_cross_entropy`).

    Returns:
        ``(...)`` divergence in nats, >= 0 (Gibbs' inequality), 0 only when p = q; ``inf`` when
        q is 0 where p is not.
    """
    _check_probabilities("p", p)
    _check_probabilities("q", q)
    _check_same_last_dim("p", p, "q", q)
    # p log p - p log q, with 0 log 0 = 0 and p log 0 = -inf for p > 0
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def _check_covariance(name: str, cov: torch.Tensor) -> None:
    _check_floating(name, cov)
    if cov.dim() < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must have shape (..., D, D), got {tuple(cov.shape)}")


def gaussian_entropy(cov: torch.Tensor) -> torch.Tensor:
    """Differential entropy of N(mu, cov): 0.5 * log det(2 pi e cov), in nats.

    It does not depend on the mean. Unlike a discrete entropy it can be negative: a Gaussian
    narrower than 1 / sqrt(2 pi e) ~ 0.24 in one dimension has negative entropy.

    Args:
        cov: ``(..., D, D)`` symmetric positive-definite covariance matrices.

    Returns:
        ``(...)`` entropy in nats.
    """
    _check_covariance("cov", cov)
    dim = cov.shape[-1]
    chol = torch.linalg.cholesky(cov)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (dim * (1.0 + LOG_2PI) + log_det)


def gaussian_kl_full(
    mu_q: torch.Tensor, cov_q: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, cov_q) || N(mu_p, cov_p)) between full-covariance Gaussians, in nats.

    With k = D dimensions,

        0.5 * ( tr(cov_p^{-1} cov_q) + (mu_p - mu_q)^T cov_p^{-1} (mu_p - mu_q) - k
                + log det cov_p - log det cov_q ).

    Computed with Cholesky factors (no explicit inverse). With ``mu_p = 0`` and ``cov_p = I`` it
    reduces to 0.5 * (tr cov_q + mu_q^T mu_q - k - log det cov_q), :func:`gaussian_kl` for a
    diagonal ``cov_q``.

    Args:
        mu_q: ``(..., D)`` mean of q.
        cov_q: ``(..., D, D)`` covariance of q, symmetric positive definite.
        mu_p: ``(..., D)`` mean of p.
        cov_p: ``(..., D, D)`` covariance of p, symmetric positive definite.
        The batch dimensions ``...`` of all four broadcast.

    Returns:
        ``(...)`` divergence in nats, >= 0.
    """
    for name, t in (("mu_q", mu_q), ("mu_p", mu_p)):
        _check_floating(name, t)
    _check_covariance("cov_q", cov_q)
    _check_covariance("cov_p", cov_p)
    dim = mu_q.shape[-1]
    if not (mu_p.shape[-1] == cov_q.shape[-1] == cov_p.shape[-1] == dim):
        raise ValueError(
            f"dimensions disagree: mu_q {tuple(mu_q.shape)}, cov_q {tuple(cov_q.shape)}, "
            f"mu_p {tuple(mu_p.shape)}, cov_p {tuple(cov_p.shape)}"
        )
    chol_q = torch.linalg.cholesky(cov_q)
    chol_p = torch.linalg.cholesky(cov_p)
    batch = torch.broadcast_shapes(
        mu_q.shape[:-1], mu_p.shape[:-1], cov_q.shape[:-2], cov_p.shape[:-2]
    )
    chol_p = chol_p.expand(*batch, dim, dim)
    # tr(cov_p^{-1} cov_q) = || L_p^{-1} L_q ||_F^2
    solved = torch.linalg.solve_triangular(chol_p, chol_q.expand(*batch, dim, dim), upper=False)
    trace = solved.pow(2).sum((-2, -1))
    # (mu_p - mu_q)^T cov_p^{-1} (mu_p - mu_q) = || L_p^{-1} (mu_p - mu_q) ||^2
    diff = (mu_p - mu_q).expand(*batch, dim).unsqueeze(-1)
    mahalanobis = torch.linalg.solve_triangular(chol_p, diff, upper=False).pow(2).sum((-2, -1))
    log_det_p = 2.0 * torch.log(torch.diagonal(chol_p, dim1=-2, dim2=-1)).sum(-1)
    log_det_q = 2.0 * torch.log(torch.diagonal(chol_q, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + mahalanobis - dim + log_det_p - log_det_q)
